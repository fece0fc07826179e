package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatecheck/gatecheck/manifests"
)

// Condition types and reasons of the Inference Extension
// (reference/inference-gateway.md) and of the Apigee Operator's status.state.
const (
	PoolReasonAccepted             = "Accepted"
	PoolReasonNotSupportedByParent = "NotSupportedByParent"
	PoolReasonHTTPRouteNotAccepted = "HTTPRouteNotAccepted"
	PoolReasonResolvedRefs         = "ResolvedRefs"
	PoolReasonInvalidExtensionRef  = "InvalidExtensionRef"

	StateRunning            = "RUNNING"
	StateCreateUpdateFailed = "Create_Update_Failed"
)

const (
	condAccepted     = "Accepted"
	condProgrammed   = "Programmed"
	condResolvedRefs = "ResolvedRefs"
)

// statusInput is everything the status of the topology's objects depends on.
type statusInput struct {
	controller string
	topo       *Topology
	compiled   *Compiled
	// served is the snapshot in service: compiled.Snapshot, or the previous
	// one when this round's could not be built.
	served *manifests.Snapshot
	// syncErr is why products could not be synced into the runtime.
	syncErr error
	now     metav1.Time
}

// condition is a metav1.Condition for an object of generation gen.
func condition(typ string, ok bool, reason, msg string, gen int64, now metav1.Time) metav1.Condition {
	st := metav1.ConditionFalse
	if ok {
		st = metav1.ConditionTrue
	}
	if len(msg) > 32768 {
		msg = msg[:32768]
	}
	return metav1.Condition{Type: typ, Status: st, Reason: reason, Message: msg, ObservedGeneration: gen, LastTransitionTime: now}
}

// setConditions merges want into have: lastTransitionTime moves only when a
// condition's status changes.
func setConditions(have []metav1.Condition, want ...metav1.Condition) []metav1.Condition {
	out := slices.Clone(have)
	for _, c := range want {
		meta.SetStatusCondition(&out, c)
	}
	return out
}

// messages joins problems into one message.
func messages(probs []*manifests.FieldError) string {
	parts := make([]string, len(probs))
	for i, p := range probs {
		if p.Field != "" {
			parts[i] = p.Field + ": " + p.Msg
		} else {
			parts[i] = p.Msg
		}
	}
	return strings.Join(parts, "; ")
}

// split divides problems into those whose field starts with prefix and the rest.
func split(probs []*manifests.FieldError, prefix string) (in, out []*manifests.FieldError) {
	for _, p := range probs {
		if strings.HasPrefix(p.Field, prefix) {
			in = append(in, p)
		} else {
			out = append(out, p)
		}
	}
	return in, out
}

func (in *statusInput) problems(kind, namespace, name string) []*manifests.FieldError {
	return in.compiled.Problems[manifests.Object{Kind: kind, Namespace: namespace, Name: name}.String()]
}

func (in *statusInput) servedGateway(ref manifests.Ref) *manifests.Gateway {
	if in.served == nil {
		return nil
	}
	for _, gw := range in.served.Gateways {
		if gw.Ref == ref {
			return gw
		}
	}
	return nil
}

// statusWriter writes status through a client, only where it changed.
type statusWriter struct {
	c       client.Client
	in      *statusInput
	written int
	errs    []error
	// accepted says, per route (namespace/name), the Gateways that accept it.
	accepted map[string]map[manifests.Ref]bool
}

func (w *statusWriter) update(ctx context.Context, obj client.Object, changed bool) {
	if !changed {
		return
	}
	if err := w.c.Status().Update(ctx, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return // deleted meanwhile: nothing to report on
		}
		w.errs = append(w.errs, fmt.Errorf("status of %s %s/%s: %w", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetNamespace(), obj.GetName(), err))
		return
	}
	w.written++
}

// writeAll writes the status of every object of the topology.
func (w *statusWriter) writeAll(ctx context.Context) error {
	t := w.in.topo
	for _, gc := range t.Classes {
		w.gatewayClass(ctx, gc)
	}
	w.accepted = map[string]map[manifests.Ref]bool{}
	for _, rt := range t.Routes {
		w.accepted[routeKey(rt)] = w.route(ctx, rt)
	}
	for _, gw := range t.Gateways {
		w.gateway(ctx, gw)
	}
	for _, p := range t.Pools {
		w.pool(ctx, p)
	}
	for _, o := range t.Objectives {
		w.objective(ctx, o)
	}
	for _, p := range t.Policies {
		w.policy(ctx, p)
	}
	for _, p := range t.Products {
		w.apim(ctx, p, "APIProduct", &p.Status)
	}
	for _, s := range t.OpSets {
		w.apim(ctx, s, "APIOperationSet", &s.Status)
	}
	return errors.Join(w.errs...)
}

func routeKey(rt *gatewayv1.HTTPRoute) string { return rt.Namespace + "/" + rt.Name }

func (w *statusWriter) gatewayClass(ctx context.Context, gc *gatewayv1.GatewayClass) {
	before := gc.Status.DeepCopy()
	gc.Status.Conditions = setConditions(gc.Status.Conditions,
		condition(string(gatewayv1.GatewayClassConditionStatusAccepted), true, string(gatewayv1.GatewayClassReasonAccepted),
			"gatecheck serves Gateways of this class", gc.Generation, w.in.now))
	w.update(ctx, gc, !equality.Semantic.DeepEqual(before, &gc.Status))
}

// gateway: Accepted, Programmed and the listeners' status.
func (w *statusWriter) gateway(ctx context.Context, gw *gatewayv1.Gateway) {
	in := w.in
	ref := manifests.Ref{Namespace: gw.Namespace, Name: gw.Name}
	probs := in.problems("Gateway", gw.Namespace, gw.Name)
	served := in.servedGateway(ref)
	listenerProbs, otherProbs := split(probs, "spec.listeners")
	var accepted metav1.Condition
	switch {
	case len(probs) == 0:
		accepted = condition(condAccepted, true, string(gatewayv1.GatewayReasonAccepted), "Accepted by gatecheck", gw.Generation, in.now)
	case len(otherProbs) == 0:
		accepted = condition(condAccepted, false, string(gatewayv1.GatewayReasonListenersNotValid), messages(listenerProbs), gw.Generation, in.now)
	default:
		accepted = condition(condAccepted, false, string(gatewayv1.GatewayReasonInvalid), messages(probs), gw.Generation, in.now)
	}
	programmed := condition(condProgrammed, true, string(gatewayv1.GatewayReasonProgrammed), "Served by gatecheck's data plane", gw.Generation, in.now)
	if served == nil {
		msg := messages(probs)
		if msg == "" {
			msg = "not in the topology being served: " + errString(in.compiled.Err)
		}
		programmed = condition(condProgrammed, false, string(gatewayv1.GatewayReasonInvalid), msg, gw.Generation, in.now)
	}

	before := gw.Status.DeepCopy()
	gw.Status.Conditions = setConditions(gw.Status.Conditions, accepted, programmed)
	var listeners []gatewayv1.ListenerStatus
	for i, l := range gw.Spec.Listeners {
		var have []metav1.Condition
		for _, ls := range gw.Status.Listeners {
			if ls.Name == l.Name {
				have = ls.Conditions
			}
		}
		lp, _ := split(probs, fmt.Sprintf("spec.listeners[%d]", i))
		la := condition(condAccepted, true, string(gatewayv1.ListenerReasonAccepted), "", gw.Generation, in.now)
		if len(lp) > 0 {
			reason := gatewayv1.ListenerReasonUnsupportedValue
			if strings.HasSuffix(lp[0].Field, ".protocol") {
				reason = gatewayv1.ListenerReasonUnsupportedProtocol
			}
			la = condition(condAccepted, false, string(reason), messages(lp), gw.Generation, in.now)
		}
		lprog := condition(condProgrammed, served != nil && len(lp) == 0, string(gatewayv1.ListenerReasonProgrammed), "", gw.Generation, in.now)
		if served == nil || len(lp) > 0 {
			lprog.Reason = string(gatewayv1.ListenerReasonInvalid)
		}
		lres := condition(condResolvedRefs, true, string(gatewayv1.ListenerReasonResolvedRefs), "", gw.Generation, in.now)
		listeners = append(listeners, gatewayv1.ListenerStatus{
			Name:           l.Name,
			SupportedKinds: []gatewayv1.RouteGroupKind{{Group: ptr(gatewayv1.Group(gatewayv1.GroupName)), Kind: "HTTPRoute"}},
			AttachedRoutes: w.attachedRoutes(ref, l),
			Conditions:     setConditions(have, la, lprog, lres),
		})
	}
	gw.Status.Listeners = listeners
	w.update(ctx, gw, !equality.Semantic.DeepEqual(before, &gw.Status))
}

// attachedRoutes counts the routes Gateway ref accepts on listener l.
func (w *statusWriter) attachedRoutes(ref manifests.Ref, l gatewayv1.Listener) int32 {
	var n int32
	for _, rt := range w.in.topo.Routes {
		if !w.accepted[routeKey(rt)][ref] {
			continue
		}
		for _, p := range rt.Spec.ParentRefs {
			if parentGateway(rt.Namespace, p) != ref {
				continue
			}
			if p.SectionName != nil && *p.SectionName != l.Name {
				continue
			}
			if p.Port != nil && *p.Port != l.Port {
				continue
			}
			n++
			break
		}
	}
	return n
}

// route writes the route's parent statuses and returns, per Gateway, whether
// the route is accepted there.
func (w *statusWriter) route(ctx context.Context, rt *gatewayv1.HTTPRoute) map[manifests.Ref]bool {
	in := w.in
	key := manifests.Object{Kind: "HTTPRoute", Namespace: rt.Namespace, Name: rt.Name}.String()
	probs := in.compiled.Problems[key]
	dropped := in.compiled.Dropped[key]
	backendProbs, rest := split(probs, "spec.rules")
	var ruleProbs []*manifests.FieldError
	backendProbs, ruleProbs = splitBackend(backendProbs)
	rest = append(rest, ruleProbs...)
	ours := map[manifests.Ref]bool{}
	for _, gw := range in.topo.Gateways {
		ours[manifests.Ref{Namespace: gw.Namespace, Name: gw.Name}] = true
	}
	accepted := map[manifests.Ref]bool{}

	before := rt.Status.DeepCopy()
	var parents []gatewayv1.RouteParentStatus
	for _, ps := range rt.Status.Parents {
		if string(ps.ControllerName) != in.controller {
			parents = append(parents, ps) // another controller's
		}
	}
	k := 0 // index among the parentRefs Compile saw (ours only)
	for _, p := range rt.Spec.ParentRefs {
		gref := parentGateway(rt.Namespace, p)
		if !ours[gref] {
			continue
		}
		parentProbs, _ := split(rest, fmt.Sprintf("spec.parentRefs[%d]", k))
		k++
		var have []metav1.Condition
		for _, ps := range rt.Status.Parents {
			if string(ps.ControllerName) == in.controller && equality.Semantic.DeepEqual(ps.ParentRef, p) {
				have = ps.Conditions
			}
		}
		var acc metav1.Condition
		switch {
		case len(parentProbs) > 0:
			reason := gatewayv1.RouteReasonNoMatchingParent
			if strings.Contains(parentProbs[0].Msg, "allows HTTPRoutes") {
				reason = gatewayv1.RouteReasonNotAllowedByListeners
			}
			acc = condition(condAccepted, false, string(reason), messages(parentProbs), rt.Generation, in.now)
		case dropped:
			acc = condition(condAccepted, false, string(gatewayv1.RouteReasonUnsupportedValue), messages(rest), rt.Generation, in.now)
		case in.servedGateway(gref) == nil:
			acc = condition(condAccepted, false, string(gatewayv1.RouteReasonPending), "Gateway "+gref.String()+" is not programmed", rt.Generation, in.now)
		default:
			acc = condition(condAccepted, true, string(gatewayv1.RouteReasonAccepted), "Accepted by gatecheck", rt.Generation, in.now)
			accepted[gref] = true
		}
		res := condition(condResolvedRefs, true, string(gatewayv1.RouteReasonResolvedRefs), "", rt.Generation, in.now)
		if len(backendProbs) > 0 {
			res = condition(condResolvedRefs, false, string(backendReason(backendProbs[0])), messages(backendProbs), rt.Generation, in.now)
		}
		parents = append(parents, gatewayv1.RouteParentStatus{
			ParentRef:      p,
			ControllerName: gatewayv1.GatewayController(in.controller),
			Conditions:     setConditions(have, acc, res),
		})
	}
	rt.Status.Parents = parents
	w.update(ctx, rt, !equality.Semantic.DeepEqual(before, &rt.Status))
	return accepted
}

// splitBackend divides rule problems into backendRef problems and the rest.
func splitBackend(probs []*manifests.FieldError) (backend, rest []*manifests.FieldError) {
	for _, p := range probs {
		if backendRefField.MatchString(p.Field) {
			backend = append(backend, p)
		} else {
			rest = append(rest, p)
		}
	}
	return backend, rest
}

// backendReason is Gateway API's ResolvedRefs reason for a backendRef problem.
func backendReason(p *manifests.FieldError) gatewayv1.RouteConditionReason {
	switch {
	case strings.HasSuffix(p.Field, ".namespace"):
		return gatewayv1.RouteReasonRefNotPermitted
	case strings.HasSuffix(p.Field, ".kind"), strings.HasSuffix(p.Field, ".group"):
		return gatewayv1.RouteReasonInvalidKind
	default:
		return gatewayv1.RouteReasonBackendNotFound
	}
}

// pool writes an InferencePool's parents: one per Gateway that routes to it.
func (w *statusWriter) pool(ctx context.Context, p *InferencePool) {
	in := w.in
	probs := in.problems("InferencePool", p.Namespace, p.Name)
	pickerProbs, otherProbs := split(probs, "spec.endpointPickerRef")
	ours := map[manifests.Ref]bool{}
	for _, gw := range in.topo.Gateways {
		ours[manifests.Ref{Namespace: gw.Namespace, Name: gw.Name}] = true
	}
	// The Gateways whose routes name the pool, and whether one of those routes
	// is accepted there.
	var gateways []manifests.Ref
	viaAccepted := map[manifests.Ref]bool{}
	for _, rt := range in.topo.Routes {
		if !routesToPool(rt, p) {
			continue
		}
		for _, pr := range rt.Spec.ParentRefs {
			g := parentGateway(rt.Namespace, pr)
			if !ours[g] {
				continue
			}
			if !slices.Contains(gateways, g) {
				gateways = append(gateways, g)
			}
			if w.accepted[routeKey(rt)][g] {
				viaAccepted[g] = true
			}
		}
	}
	slices.SortFunc(gateways, func(a, b manifests.Ref) int { return strings.Compare(a.String(), b.String()) })

	before := deepCopy(&p.Status)
	var parents []manifests.InferencePoolParentStatus
	for _, ps := range p.Status.Parents {
		if ps.ControllerName != in.controller {
			parents = append(parents, ps)
		}
	}
	for _, g := range gateways {
		pref := manifests.ParentReference{Group: ptr(gatewayv1.GroupName), Kind: "Gateway", Name: g.Name, Namespace: g.Namespace}
		var have []metav1.Condition
		for _, ps := range p.Status.Parents {
			if ps.ControllerName == in.controller && ps.ParentRef.Name == g.Name && ps.ParentRef.Namespace == g.Namespace {
				have = ps.Conditions
			}
		}
		var acc metav1.Condition
		switch {
		case len(otherProbs) > 0:
			acc = condition(condAccepted, false, PoolReasonNotSupportedByParent, messages(otherProbs), p.Generation, in.now)
		case !viaAccepted[g]:
			acc = condition(condAccepted, false, PoolReasonHTTPRouteNotAccepted, "no HTTPRoute that names the pool is accepted by Gateway "+g.String(), p.Generation, in.now)
		default:
			acc = condition(condAccepted, true, PoolReasonAccepted, "Accepted by gatecheck", p.Generation, in.now)
		}
		res := condition(condResolvedRefs, true, PoolReasonResolvedRefs, "", p.Generation, in.now)
		if len(pickerProbs) > 0 {
			res = condition(condResolvedRefs, false, PoolReasonInvalidExtensionRef, messages(pickerProbs), p.Generation, in.now)
		}
		parents = append(parents, manifests.InferencePoolParentStatus{
			ParentRef:      pref,
			ControllerName: in.controller,
			Conditions:     setConditions(have, acc, res),
		})
	}
	p.Status.Parents = parents
	w.update(ctx, p, !equality.Semantic.DeepEqual(before, &p.Status))
}

// routesToPool reports whether a route has a backendRef to the pool.
func routesToPool(rt *gatewayv1.HTTPRoute, p *InferencePool) bool {
	for _, rule := range rt.Spec.Rules {
		for _, br := range rule.BackendRefs {
			ns := rt.Namespace
			if br.Namespace != nil {
				ns = string(*br.Namespace)
			}
			if br.Group != nil && string(*br.Group) == InferenceGroupVersion.Group &&
				br.Kind != nil && *br.Kind == "InferencePool" && string(br.Name) == p.Name && ns == p.Namespace {
				return true
			}
		}
	}
	return false
}

func (w *statusWriter) objective(ctx context.Context, o *InferenceObjective) {
	in := w.in
	probs := in.problems("InferenceObjective", o.Namespace, o.Name)
	c := condition(condAccepted, true, "Accepted", "Accepted by gatecheck", o.Generation, in.now)
	if len(probs) > 0 {
		c = condition(condAccepted, false, "Invalid", messages(probs), o.Generation, in.now)
	}
	before := deepCopy(&o.Status)
	o.Status.Conditions = setConditions(o.Status.Conditions, c)
	w.update(ctx, o, !equality.Semantic.DeepEqual(before, &o.Status))
}

// policy: RUNNING once the Gateway it targets serves it.
func (w *statusWriter) policy(ctx context.Context, p *APIMExtensionPolicy) {
	in := w.in
	probs := in.problems("APIMExtensionPolicy", p.Namespace, p.Name)
	msg := messages(probs)
	if msg == "" && !in.extensionServed(p.Namespace, p.Name) {
		msg = "the Gateway it targets is not being served"
	}
	w.setState(ctx, p, &p.Status, p.Generation, msg)
}

func (in *statusInput) extensionServed(namespace, name string) bool {
	if in.served == nil {
		return false
	}
	for _, gw := range in.served.Gateways {
		for _, ext := range gw.Extensions {
			if ext.Namespace == namespace && ext.Name == name {
				return true
			}
		}
	}
	return false
}

// apim: products and operation sets are RUNNING once compiled and synced.
func (w *statusWriter) apim(ctx context.Context, obj client.Object, kind string, st *manifests.APIMStatus) {
	in := w.in
	msg := messages(in.problems(kind, obj.GetNamespace(), obj.GetName()))
	if msg == "" && in.syncErr != nil {
		msg = "syncing into the Apigee runtime: " + in.syncErr.Error()
	}
	w.setState(ctx, obj, st, obj.GetGeneration(), msg)
}

// setState writes the operator's status: RUNNING when msg is empty,
// Create_Update_Failed with msg otherwise, and a Ready condition to match.
func (w *statusWriter) setState(ctx context.Context, obj client.Object, st *manifests.APIMStatus, gen int64, msg string) {
	before := *st
	before.Conditions = slices.Clone(st.Conditions)
	if msg == "" {
		st.State, st.ErrorMessage = StateRunning, ""
		st.Conditions = setConditions(st.Conditions, condition("Ready", true, "Running", "", gen, w.in.now))
	} else {
		if len(msg) > 32768 {
			msg = msg[:32768]
		}
		st.State, st.ErrorMessage = StateCreateUpdateFailed, msg
		st.Conditions = setConditions(st.Conditions, condition("Ready", false, "CreateUpdateFailed", msg, gen, w.in.now))
	}
	w.update(ctx, obj, !equality.Semantic.DeepEqual(&before, st))
}

func errString(err error) string {
	if err == nil {
		return "no problem reported"
	}
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}

func ptr[T any](v T) *T { return &v }

// now is the time conditions are stamped with, to the second (what the API
// server stores).
func now() metav1.Time { return metav1.NewTime(time.Now().Truncate(time.Second)) }
