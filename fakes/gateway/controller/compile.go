package controller

import (
	"errors"
	"regexp"
	"slices"
	"strconv"

	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatecheck/gatecheck/manifests"
)

// Compiled is the outcome of CompileServable.
type Compiled struct {
	// Snapshot is what can be served: the topology without the objects (and
	// backendRefs) that had problems. Nil when a problem could not be pinned
	// on an object (see Err).
	Snapshot *manifests.Snapshot
	// Problems are every problem found, by the object they name
	// (manifests.Object.String(): "Kind namespace/name"), in the order found.
	// Field paths are those of the object as stored.
	Problems map[string][]*manifests.FieldError
	// Dropped are the objects left out of Snapshot.
	Dropped map[string]bool
	// DroppedBackends are the backendRefs left out of each HTTPRoute, by
	// route and then rule index: indices into the stored route's rules and
	// each rule's backendRefs.
	DroppedBackends map[string]map[int][]int
	// DroppedParents are the parentRefs left out of each HTTPRoute: indices
	// into the route's parentRefs as Collect gave them to Compile.
	DroppedParents map[string][]int
	// DroppedPolicies are the policy XML files left out, with their problem
	// (for example a file filed under an APIMExtensionPolicy that is not in
	// the cluster).
	DroppedPolicies map[string]*manifests.FieldError
	// Err is the last compile error when Snapshot is nil.
	Err error
}

// backendRefField and parentRefField match the field paths of problems in
// an HTTPRoute's backendRefs and parentRefs.
var (
	backendRefField = regexp.MustCompile(`^spec\.rules\[(\d+)\]\.backendRefs\[(\d+)\]`)
	parentRefField  = regexp.MustCompile(`^spec\.parentRefs\[(\d+)\]`)
)

// CompileServable compiles objs with manifests.Compile and, while that fails,
// leaves out what the problems name and compiles again (see the package
// documentation). It stops when a round finds nothing more to leave out.
func CompileServable(objs []manifests.Object, policies map[string][]byte) *Compiled {
	if policies == nil {
		policies = map[string][]byte{}
	}
	c := &Compiled{
		Problems:        map[string][]*manifests.FieldError{},
		Dropped:         map[string]bool{},
		DroppedBackends: map[string]map[int][]int{},
		DroppedParents:  map[string][]int{},
		DroppedPolicies: map[string]*manifests.FieldError{},
	}
	for round := 0; round <= len(objs)+len(policies); round++ {
		in, kept := c.servable(objs)
		files := make(map[string][]byte, len(policies))
		for p, b := range policies {
			if c.DroppedPolicies[p] == nil {
				files[p] = b
			}
		}
		snap, err := manifests.Compile(in, files)
		if err == nil {
			c.Snapshot = snap
			return c
		}
		c.Err = err
		progress := false
		for _, fe := range fieldErrors(err) {
			if fe.Object == "" {
				if _, ok := policies[fe.File]; ok && c.DroppedPolicies[fe.File] == nil {
					c.DroppedPolicies[fe.File] = fe
					progress = true
				}
				continue // names neither an object nor a policy file: nothing to leave out
			}
			if k, ok := kept[fe.Object]; ok && !c.Dropped[fe.Object] {
				if trimmed, ok := c.trim(fe, k); ok {
					progress = progress || trimmed
					continue
				}
			}
			c.note(fe)
			if !c.Dropped[fe.Object] {
				c.Dropped[fe.Object] = true
				progress = true
			}
		}
		if !progress {
			return c
		}
	}
	return c
}

// trim handles a problem in one backendRef or parentRef of a route: it is
// recorded under the stored index and that reference is left out. ok is
// false for any other problem; trimmed says whether something new was left out.
func (c *Compiled) trim(fe *manifests.FieldError, k keptRefs) (trimmed, ok bool) {
	if m := backendRefField.FindStringSubmatch(fe.Field); m != nil {
		rule, _ := strconv.Atoi(m[1])
		ref, _ := strconv.Atoi(m[2])
		if rule >= len(k.backends) || ref >= len(k.backends[rule]) {
			return false, false
		}
		orig := k.backends[rule][ref]
		c.note(withField(fe, "spec.rules["+m[1]+"].backendRefs["+strconv.Itoa(orig)+"]"+fe.Field[len(m[0]):]))
		if slices.Contains(c.DroppedBackends[fe.Object][rule], orig) {
			return false, true
		}
		if c.DroppedBackends[fe.Object] == nil {
			c.DroppedBackends[fe.Object] = map[int][]int{}
		}
		c.DroppedBackends[fe.Object][rule] = append(c.DroppedBackends[fe.Object][rule], orig)
		return true, true
	}
	if m := parentRefField.FindStringSubmatch(fe.Field); m != nil {
		ref, _ := strconv.Atoi(m[1])
		if ref >= len(k.parents) {
			return false, false
		}
		orig := k.parents[ref]
		c.note(withField(fe, "spec.parentRefs["+strconv.Itoa(orig)+"]"+fe.Field[len(m[0]):]))
		if slices.Contains(c.DroppedParents[fe.Object], orig) {
			return false, true
		}
		c.DroppedParents[fe.Object] = append(c.DroppedParents[fe.Object], orig)
		return true, true
	}
	return false, false
}

// note records a problem once.
func (c *Compiled) note(fe *manifests.FieldError) {
	for _, have := range c.Problems[fe.Object] {
		if have.Field == fe.Field && have.Msg == fe.Msg {
			return
		}
	}
	c.Problems[fe.Object] = append(c.Problems[fe.Object], fe)
}

// keptRefs are, for a route given to Compile, the stored indices of the
// references still there: per rule for backendRefs, and for parentRefs.
type keptRefs struct {
	backends [][]int
	parents  []int
}

// servable is objs without the dropped objects and references, and for
// every route the indices kept, so that problems found in a trimmed copy can
// be named by the stored indices.
func (c *Compiled) servable(objs []manifests.Object) ([]manifests.Object, map[string]keptRefs) {
	out := make([]manifests.Object, 0, len(objs))
	kept := map[string]keptRefs{}
	for _, o := range objs {
		key := o.String()
		if c.Dropped[key] {
			continue
		}
		rt, isRoute := o.Value.(*gatewayv1.HTTPRoute)
		if !isRoute {
			out = append(out, o)
			continue
		}
		dropB, dropP := c.DroppedBackends[key], c.DroppedParents[key]
		k := keptRefs{backends: make([][]int, len(rt.Spec.Rules))}
		for ri, rule := range rt.Spec.Rules {
			for bi := range rule.BackendRefs {
				if !slices.Contains(dropB[ri], bi) {
					k.backends[ri] = append(k.backends[ri], bi)
				}
			}
		}
		for pi := range rt.Spec.ParentRefs {
			if !slices.Contains(dropP, pi) {
				k.parents = append(k.parents, pi)
			}
		}
		kept[key] = k
		if len(dropB) > 0 || len(dropP) > 0 {
			cp := rt.DeepCopy()
			for ri := range cp.Spec.Rules {
				var refs []gatewayv1.HTTPBackendRef
				for _, bi := range k.backends[ri] {
					refs = append(refs, rt.Spec.Rules[ri].BackendRefs[bi])
				}
				cp.Spec.Rules[ri].BackendRefs = refs
			}
			var parents []gatewayv1.ParentReference
			for _, pi := range k.parents {
				parents = append(parents, rt.Spec.ParentRefs[pi])
			}
			cp.Spec.ParentRefs = parents
			o.Value = cp
		}
		out = append(out, o)
	}
	return out, kept
}

// fieldErrors unpacks Compile's joined error.
func fieldErrors(err error) []*manifests.FieldError {
	var out []*manifests.FieldError
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var fe *manifests.FieldError
		if errors.As(err, &fe) {
			out = append(out, fe)
		}
	}
	walk(err)
	return out
}

func withField(fe *manifests.FieldError, field string) *manifests.FieldError {
	cp := *fe
	cp.Field = field
	return &cp
}
