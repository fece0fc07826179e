package manifests

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Bounds from the CRDs and from what the simulation can run.
const (
	maxReplicas       = 64 // the simulation starts every replica as a process-local server
	maxSelectorLabels = 64 // InferencePool spec.selector.matchLabels
	maxTargetPorts    = 8  // InferencePool spec.targetPorts
	maxWeight         = 1000000
)

// API groups and kinds that references name.
const (
	gatewayGroup   = "gateway.networking.k8s.io"
	inferenceGroup = "inference.networking.k8s.io"
)

// Compile resolves and validates objects into a Snapshot. Defaults are filled
// in, every reference is resolved, and every problem is reported: the error
// joins one *FieldError per problem (errors.Join), ordered by file and
// document. On error the Snapshot is nil. policies become Snapshot.Policies
// as given.
func Compile(objs []Object, policies map[string][]byte) (*Snapshot, error) {
	c := &compiler{
		snap: &Snapshot{
			Pools:          map[Ref]*Pool{},
			Services:       map[Ref]*Service{},
			Objectives:     map[string]*Objective{},
			GatewayClasses: map[string]string{},
			Policies:       policies,
		},
		seen:           map[string]Object{},
		productSources: map[Ref][]string{},
		deployments:    map[*Workload]*appsv1.Deployment{},
	}
	c.index(objs)
	for _, o := range c.classes {
		gc := o.Value.(*gatewayv1.GatewayClass)
		c.snap.GatewayClasses[o.Name] = string(gc.Spec.ControllerName)
	}
	for _, o := range c.deploys {
		c.compileDeployment(o)
	}
	for _, o := range c.services {
		c.compileService(o)
	}
	for _, o := range c.pools {
		c.compilePool(o)
	}
	for _, o := range c.objectives {
		c.compileObjective(o)
	}
	for _, o := range c.gateways {
		c.compileGateway(o)
	}
	for _, o := range c.routes {
		c.compileRoute(o)
	}
	c.compileAPIM()
	for _, gw := range c.snap.Gateways {
		sortRules(gw.Rules, c.routeOrder)
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	return c.snap, nil
}

// compiler holds the state of one Compile call.
type compiler struct {
	snap *Snapshot
	errs []positionedError

	// Objects by kind, in input order.
	classes, gateways, routes, pools, objectives, deploys, services []Object
	apimPolicies, apimProducts, apimOpSets                          []Object
	// productSources are the APIMExtensionPolicies enforcing each product.
	productSources map[Ref][]string
	seen           map[string]Object // by "Kind namespace/name"

	gatewayByRef map[Ref]*Gateway
	gatewayObj   map[Ref]*gatewayv1.Gateway
	deployments  map[*Workload]*appsv1.Deployment
	// routeOrder ranks routes for precedence ties: oldest first, then namespace/name.
	routeOrder map[Ref]int
}

type positionedError struct {
	file string
	doc  int
	err  *FieldError
}

// errorf records a problem with field of object o.
func (c *compiler) errorf(o Object, field, format string, args ...any) {
	c.errs = append(c.errs, positionedError{
		file: o.File, doc: o.Doc,
		err: &FieldError{File: o.File, Object: o.String(), Field: field, Msg: fmt.Sprintf(format, args...)},
	})
}

// err joins the recorded errors ordered by file and document; errors about one
// object keep the order they were found in.
func (c *compiler) err() error {
	slices.SortStableFunc(c.errs, func(a, b positionedError) int {
		return cmp.Or(cmp.Compare(a.file, b.file), cmp.Compare(a.doc, b.doc))
	})
	errs := make([]error, len(c.errs))
	for i, e := range c.errs {
		errs[i] = e.err
	}
	return errors.Join(errs...)
}

// index sorts objects by kind and reports duplicates.
func (c *compiler) index(objs []Object) {
	for _, o := range objs {
		if o.Namespace == "" && o.Kind != "GatewayClass" {
			o.Namespace = defaultNamespace
		}
		var list *[]Object
		switch o.Value.(type) {
		case *gatewayv1.GatewayClass:
			list = &c.classes
		case *gatewayv1.Gateway:
			list = &c.gateways
		case *gatewayv1.HTTPRoute:
			list = &c.routes
		case *InferencePool:
			list = &c.pools
		case *InferenceObjective:
			list = &c.objectives
		case *appsv1.Deployment:
			list = &c.deploys
		case *corev1.Service:
			list = &c.services
		case *APIMExtensionPolicy:
			list = &c.apimPolicies
		case *APIProduct:
			list = &c.apimProducts
		case *APIOperationSet:
			list = &c.apimOpSets
		default:
			c.errorf(o, "", "unsupported object type %T", o.Value)
			continue
		}
		key := o.String()
		if first, dup := c.seen[key]; dup {
			c.errorf(o, "", "defined twice (also in %s document %d)", first.File, first.Doc+1)
			continue
		}
		c.seen[key] = o
		*list = append(*list, o)
	}
}

func refOf(o Object) Ref { return Ref{Namespace: o.Namespace, Name: o.Name} }

// compileDeployment turns an apps/v1 Deployment into a Workload. A broken
// Deployment is still listed, so that Services and pools that select it do
// not report it missing as well.
func (c *compiler) compileDeployment(o Object) {
	d := o.Value.(*appsv1.Deployment)
	w := &Workload{Ref: refOf(o), Replicas: 1, PodLabels: maps.Clone(d.Spec.Template.Labels)}
	if w.PodLabels == nil {
		w.PodLabels = map[string]string{}
	}
	c.snap.Workloads = append(c.snap.Workloads, w)
	c.deployments[w] = d
	if d.Spec.Replicas != nil {
		w.Replicas = int(*d.Spec.Replicas)
		if w.Replicas < 0 || w.Replicas > maxReplicas {
			c.errorf(o, "spec.replicas", "must be between 0 and %d, got %d", maxReplicas, w.Replicas)
		}
	}
	if d.Spec.Selector == nil {
		c.errorf(o, "spec.selector", "must be set")
	} else if sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err != nil {
		c.errorf(o, "spec.selector", "invalid selector: %v", err)
	} else if sel.Empty() || !sel.Matches(labelSet(w.PodLabels)) {
		c.errorf(o, "spec.selector", "does not match the pod template labels %s", formatLabels(w.PodLabels))
	}
	containers := d.Spec.Template.Spec.Containers
	if len(containers) == 0 {
		c.errorf(o, "spec.template.spec.containers", "must have at least one container")
		return
	}
	for i, ctr := range containers {
		for j, p := range ctr.Ports {
			if !validPort(p.ContainerPort) {
				c.errorf(o, fmt.Sprintf("spec.template.spec.containers[%d].ports[%d].containerPort", i, j),
					"must be between 1 and 65535, got %d", p.ContainerPort)
			}
		}
	}
	first := containers[0]
	if first.Image == "" {
		c.errorf(o, "spec.template.spec.containers[0].image", "must be set")
	}
	w.Image = first.Image
	w.Command = slices.Clone(first.Command)
	w.Args = slices.Clone(first.Args)
	for _, p := range first.Ports {
		w.Ports = append(w.Ports, p.ContainerPort)
	}
}

// workloadsMatching returns the Workloads in namespace whose pod labels carry
// every label of selector, in file order. An empty selector matches nothing,
// as for a Service.
func (c *compiler) workloadsMatching(namespace string, selector map[string]string) []*Workload {
	if len(selector) == 0 {
		return nil
	}
	var out []*Workload
	for _, w := range c.snap.Workloads {
		if w.Ref.Namespace != namespace {
			continue
		}
		if labelSet(selector).AsSelector().Matches(labelSet(w.PodLabels)) {
			out = append(out, w)
		}
	}
	return out
}

// compileService turns a v1 Service into a Service with its ports and workloads.
func (c *compiler) compileService(o Object) {
	s := o.Value.(*corev1.Service)
	svc := &Service{Ref: refOf(o), Selector: maps.Clone(s.Spec.Selector)}
	svc.Workloads = c.workloadsMatching(svc.Ref.Namespace, svc.Selector)
	names := map[string]bool{}
	for i, p := range s.Spec.Ports {
		field := fmt.Sprintf("spec.ports[%d]", i)
		if !validPort(p.Port) {
			c.errorf(o, field+".port", "must be between 1 and 65535, got %d", p.Port)
			continue
		}
		if p.Name == "" && len(s.Spec.Ports) > 1 {
			c.errorf(o, field+".name", "must be set when a Service has more than one port")
		}
		if p.Name != "" && names[p.Name] {
			c.errorf(o, field+".name", "duplicate port name %q", p.Name)
		}
		names[p.Name] = true
		sp := ServicePort{Name: p.Name, Port: p.Port, TargetPort: p.Port}
		switch {
		case p.TargetPort.Type == intstr.String:
			n, found := c.namedContainerPort(svc.Workloads, p.TargetPort.StrVal)
			if !found {
				c.errorf(o, field+".targetPort", "no container port named %q in the Deployments the selector matches", p.TargetPort.StrVal)
				continue
			}
			sp.TargetPort = n
		case p.TargetPort.IntVal != 0:
			if !validPort(p.TargetPort.IntVal) {
				c.errorf(o, field+".targetPort", "must be between 1 and 65535, got %d", p.TargetPort.IntVal)
				continue
			}
			sp.TargetPort = p.TargetPort.IntVal
		}
		svc.Ports = append(svc.Ports, sp)
	}
	c.snap.Services[svc.Ref] = svc
}

// namedContainerPort resolves a named targetPort against the containers of the
// first workload that declares it.
func (c *compiler) namedContainerPort(ws []*Workload, name string) (int32, bool) {
	for _, w := range ws {
		for _, ctr := range c.deployments[w].Spec.Template.Spec.Containers {
			for _, p := range ctr.Ports {
				if p.Name == name {
					return p.ContainerPort, true
				}
			}
		}
	}
	return 0, false
}

// servicePort reports whether the Service ref exists and has port.
func (c *compiler) servicePort(ref Ref, port int32) (found, hasPort bool) {
	svc, ok := c.snap.Services[ref]
	if !ok {
		return false, false
	}
	for _, p := range svc.Ports {
		if p.Port == port {
			return true, true
		}
	}
	return true, false
}

// compilePool turns an InferencePool into a Pool.
func (c *compiler) compilePool(o Object) {
	p := o.Value.(*InferencePool)
	pool := &Pool{Ref: refOf(o), Selector: maps.Clone(p.Spec.Selector.MatchLabels), AppProtocol: p.Spec.AppProtocol}
	ok := true
	if n := len(pool.Selector); n < 1 || n > maxSelectorLabels {
		c.errorf(o, "spec.selector.matchLabels", "must have 1 to %d labels, got %d", maxSelectorLabels, n)
		ok = false
	}
	if n := len(p.Spec.TargetPorts); n < 1 || n > maxTargetPorts {
		c.errorf(o, "spec.targetPorts", "must have 1 to %d ports, got %d", maxTargetPorts, n)
		ok = false
	}
	for i, tp := range p.Spec.TargetPorts {
		field := fmt.Sprintf("spec.targetPorts[%d].number", i)
		switch {
		case !validPort(tp.Number):
			c.errorf(o, field, "must be between 1 and 65535, got %d", tp.Number)
			ok = false
		case slices.Contains(pool.TargetPorts, tp.Number):
			c.errorf(o, field, "duplicate port %d", tp.Number)
			ok = false
		default:
			pool.TargetPorts = append(pool.TargetPorts, tp.Number)
		}
	}
	switch pool.AppProtocol {
	case "":
		pool.AppProtocol = "http"
	case "http", "kubernetes.io/h2c":
	default:
		c.errorf(o, "spec.appProtocol", "must be http or kubernetes.io/h2c, got %q", pool.AppProtocol)
		ok = false
	}
	if ref := p.Spec.EndpointPickerRef; ref != nil {
		var pickerOK bool
		pool.Picker, pickerOK = c.pickerRef(o, ref)
		ok = ok && pickerOK
	}
	if len(pool.Selector) > 0 {
		pool.Workloads = c.workloadsMatching(pool.Ref.Namespace, pool.Selector)
		if len(pool.Workloads) == 0 {
			c.errorf(o, "spec.selector.matchLabels", "no Deployment matches selector %s", formatLabels(pool.Selector))
			ok = false
		}
	}
	if ok {
		c.snap.Pools[pool.Ref] = pool
	}
}

// pickerRef resolves an endpointPickerRef; ok is false if it could not.
func (c *compiler) pickerRef(o Object, ref *EndpointPickerRef) (pr *PickerRef, ok bool) {
	const f = "spec.endpointPickerRef"
	ok = true
	bad := func(field, format string, args ...any) {
		c.errorf(o, field, format, args...)
		ok = false
	}
	pr = &PickerRef{Service: Ref{Namespace: o.Namespace, Name: ref.Name}, FailureMode: FailureMode(ref.FailureMode)}
	switch pr.FailureMode {
	case "":
		pr.FailureMode = FailClose
	case FailClose, FailOpen:
	default:
		bad(f+".failureMode", "must be FailOpen or FailClose, got %q", ref.FailureMode)
	}
	if ref.Group != nil && *ref.Group != "" {
		bad(f+".group", "group %q is not supported (only the core group, for a Service)", *ref.Group)
		return pr, ok
	}
	if ref.Kind != "" && ref.Kind != "Service" {
		bad(f+".kind", "kind %s is not supported (only Service)", ref.Kind)
		return pr, ok
	}
	if ref.Name == "" {
		bad(f+".name", "must be set")
		return pr, ok
	}
	if ref.Port == nil {
		bad(f+".port", "must be set when kind is Service")
		return pr, ok
	}
	pr.Port = ref.Port.Number
	switch found, hasPort := c.servicePort(pr.Service, pr.Port); {
	case !found:
		bad(f+".name", "Service %s not found", pr.Service)
	case !hasPort:
		bad(f+".port.number", "Service %s has no port %d", pr.Service, pr.Port)
	}
	return pr, ok
}

// compileObjective turns an InferenceObjective into an Objective.
func (c *compiler) compileObjective(o Object) {
	obj := o.Value.(*InferenceObjective)
	ob := &Objective{Ref: refOf(o), Pool: Ref{Namespace: o.Namespace, Name: obj.Spec.PoolRef.Name}}
	if obj.Spec.Priority != nil {
		ob.Priority = *obj.Spec.Priority
	}
	pr := obj.Spec.PoolRef
	switch {
	case pr.Group != "" && pr.Group != inferenceGroup:
		c.errorf(o, "spec.poolRef.group", "must be %s, got %q", inferenceGroup, pr.Group)
		return
	case pr.Kind != "" && pr.Kind != "InferencePool":
		c.errorf(o, "spec.poolRef.kind", "must be InferencePool, got %q", pr.Kind)
		return
	case pr.Name == "":
		c.errorf(o, "spec.poolRef.name", "must be set")
		return
	}
	if _, ok := c.snap.Pools[ob.Pool]; !ok && !c.declared("InferencePool", ob.Pool) {
		c.errorf(o, "spec.poolRef.name", "InferencePool %s not found", ob.Pool)
		return
	}
	if other, dup := c.snap.Objectives[o.Name]; dup {
		c.errorf(o, "metadata.name", "InferenceObjective %s has the same name; requests name objectives by name alone", other.Ref)
		return
	}
	c.snap.Objectives[o.Name] = ob
}

// declared reports whether an object of kind exists, compiled or not, so a
// reference to a broken object is not also reported as missing.
func (c *compiler) declared(kind string, ref Ref) bool {
	_, ok := c.seen[objectName(kind, ref.Namespace, ref.Name)]
	return ok
}

// compileGateway turns a Gateway into a Gateway with its listeners; routes are
// attached later.
func (c *compiler) compileGateway(o Object) {
	g := o.Value.(*gatewayv1.Gateway)
	gw := &Gateway{Ref: refOf(o), ClassName: string(g.Spec.GatewayClassName), Rules: []*RouteRule{}, Extensions: []*Extension{}}
	gw.Limits = c.compileLimits(o, g.Annotations)
	if gw.ClassName == "" {
		c.errorf(o, "spec.gatewayClassName", "must be set")
	}
	if len(g.Spec.Listeners) == 0 {
		c.errorf(o, "spec.listeners", "must have at least one listener")
	}
	names := map[string]bool{}
	for i, l := range g.Spec.Listeners {
		field := fmt.Sprintf("spec.listeners[%d]", i)
		ln := Listener{Name: string(l.Name), Port: l.Port, Protocol: string(l.Protocol)}
		if l.Hostname != nil {
			ln.Hostname = string(*l.Hostname)
		}
		switch {
		case ln.Name == "":
			c.errorf(o, field+".name", "must be set")
		case names[ln.Name]:
			c.errorf(o, field+".name", "duplicate listener name %q", ln.Name)
		}
		names[ln.Name] = true
		if !validPort(ln.Port) {
			c.errorf(o, field+".port", "must be between 1 and 65535, got %d", ln.Port)
		}
		if ln.Protocol != string(gatewayv1.HTTPProtocolType) {
			c.errorf(o, field+".protocol", "protocol %s is not supported by the simulation", ln.Protocol)
		}
		if ar := l.AllowedRoutes; ar != nil && ar.Namespaces != nil && ar.Namespaces.From != nil {
			switch *ar.Namespaces.From {
			case gatewayv1.NamespacesFromSame, gatewayv1.NamespacesFromAll, gatewayv1.NamespacesFromNone:
			default:
				c.errorf(o, field+".allowedRoutes.namespaces.from", "%s is not supported by the simulation (use Same, All or None)", *ar.Namespaces.From)
			}
		}
		gw.Listeners = append(gw.Listeners, ln)
	}
	if c.gatewayByRef == nil {
		c.gatewayByRef = map[Ref]*Gateway{}
		c.gatewayObj = map[Ref]*gatewayv1.Gateway{}
	}
	c.gatewayByRef[gw.Ref] = gw
	c.gatewayObj[gw.Ref] = g
	c.snap.Gateways = append(c.snap.Gateways, gw)
}

func validPort(p int32) bool { return p >= 1 && p <= 65535 }
