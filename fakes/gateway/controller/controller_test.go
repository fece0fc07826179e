package controller

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"reflect"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatecheck/gatecheck/fakes/apigee/mgmt"
	"github.com/gatecheck/gatecheck/fakes/apigee/state"
	"github.com/gatecheck/gatecheck/internal/apigeeapi"
	"github.com/gatecheck/gatecheck/manifests"
)

// defaultObjects are the default topology's objects, as client objects.
func defaultObjects(t *testing.T) []client.Object {
	t.Helper()
	objs, _, err := manifests.Load(manifests.Default(), ".")
	if err != nil {
		t.Fatal(err)
	}
	var out []client.Object
	for _, o := range objs {
		out = append(out, clientObject(t, o))
	}
	return out
}

// clientObject wraps a decoded manifest's value as a client object.
func clientObject(t *testing.T, o manifests.Object) client.Object {
	t.Helper()
	switch v := o.Value.(type) {
	case *manifests.InferencePool:
		return &InferencePool{*v}
	case *manifests.InferenceObjective:
		return &InferenceObjective{*v}
	case *manifests.APIMExtensionPolicy:
		return &APIMExtensionPolicy{*v}
	case *manifests.APIProduct:
		return &APIProduct{*v}
	case *manifests.APIOperationSet:
		return &APIOperationSet{*v}
	case client.Object:
		return v
	}
	t.Fatalf("%s: unexpected %T", o, o.Value)
	return nil
}

func newFakeClient(t *testing.T, objs ...client.Object) client.Client {
	t.Helper()
	s, err := NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	return fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).
		WithStatusSubresource(&gatewayv1.GatewayClass{}, &gatewayv1.Gateway{}, &gatewayv1.HTTPRoute{},
			&InferencePool{}, &InferenceObjective{}, &APIMExtensionPolicy{}, &APIProduct{}, &APIOperationSet{}).
		Build()
}

// recordingSyncer records the products it is given, or fails with err.
type recordingSyncer struct {
	got [][]apigeeapi.APIProduct
	err error
}

func (s *recordingSyncer) SyncProducts(_ context.Context, p []apigeeapi.APIProduct) error {
	s.got = append(s.got, p)
	return s.err
}

// TestSnapshotEqualsTheSimulation: the snapshot compiled from the API
// server's objects is the one the simulation compiles from the same files.
func TestSnapshotEqualsTheSimulation(t *testing.T) {
	t.Parallel()
	want, err := manifests.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	_, policies, err := manifests.Load(manifests.Default(), ".")
	if err != nil {
		t.Fatal(err)
	}
	var swapped *manifests.Snapshot
	r := NewReconciler(newFakeClient(t, defaultObjects(t)...), Options{Policies: policies, OnSnapshot: func(s *manifests.Snapshot) { swapped = s }})
	res, err := r.Sync(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Compiled.Problems) > 0 {
		t.Fatalf("problems in the default topology: %v", res.Compiled.Problems)
	}
	got := res.Compiled.Snapshot
	if got == nil || swapped != got || r.Served() != got {
		t.Fatalf("snapshot %p, swapped in %p, served %p: want the one compiled", got, swapped, r.Served())
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the snapshot differs from the simulation's:\n%s", snapshotDiff(got, want))
	}
}

// snapshotDiff names the Snapshot fields that differ.
func snapshotDiff(got, want *manifests.Snapshot) string {
	var b strings.Builder
	gv, wv := reflect.ValueOf(got).Elem(), reflect.ValueOf(want).Elem()
	for i := range gv.NumField() {
		if !reflect.DeepEqual(gv.Field(i).Interface(), wv.Field(i).Interface()) {
			fmt.Fprintf(&b, "%s:\n  got  %#v\n  want %#v\n", gv.Type().Field(i).Name, gv.Field(i).Interface(), wv.Field(i).Interface())
		}
	}
	return b.String()
}

// cond returns the condition of type typ, failing when there is none.
func cond(t *testing.T, what string, conds []metav1.Condition, typ string) metav1.Condition {
	t.Helper()
	c := meta.FindStatusCondition(conds, typ)
	if c == nil {
		t.Fatalf("%s has no %s condition (has %v)", what, typ, conds)
	}
	return *c
}

func wantCond(t *testing.T, what string, conds []metav1.Condition, typ string, status metav1.ConditionStatus, reason string, gen int64) metav1.Condition {
	t.Helper()
	c := cond(t, what, conds, typ)
	if c.Status != status || c.Reason != reason {
		t.Errorf("%s %s = %s/%s (%s), want %s/%s", what, typ, c.Status, c.Reason, c.Message, status, reason)
	}
	if c.ObservedGeneration != gen {
		t.Errorf("%s %s observedGeneration %d, want %d", what, typ, c.ObservedGeneration, gen)
	}
	if c.LastTransitionTime.IsZero() {
		t.Errorf("%s %s has no lastTransitionTime", what, typ)
	}
	return c
}

func get[T client.Object](t *testing.T, c client.Client, obj T, ns, name string) T {
	t.Helper()
	if err := c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, obj); err != nil {
		t.Fatal(err)
	}
	return obj
}

// TestStatusOfTheDefaultTopology: everything accepted, programmed, resolved
// and running.
func TestStatusOfTheDefaultTopology(t *testing.T) {
	t.Parallel()
	c := newFakeClient(t, defaultObjects(t)...)
	products := &recordingSyncer{}
	r := NewReconciler(c, Options{Products: products})
	if _, err := r.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}

	gc := get(t, c, &gatewayv1.GatewayClass{}, "", "gatecheck")
	wantCond(t, "GatewayClass", gc.Status.Conditions, "Accepted", metav1.ConditionTrue, "Accepted", gc.Generation)

	gw := get(t, c, &gatewayv1.Gateway{}, "default", "inference-gateway")
	wantCond(t, "Gateway", gw.Status.Conditions, "Accepted", metav1.ConditionTrue, "Accepted", gw.Generation)
	wantCond(t, "Gateway", gw.Status.Conditions, "Programmed", metav1.ConditionTrue, "Programmed", gw.Generation)
	if len(gw.Status.Listeners) != 1 || gw.Status.Listeners[0].AttachedRoutes != 1 {
		t.Errorf("listener status %+v: want one listener with one attached route", gw.Status.Listeners)
	} else {
		ls := gw.Status.Listeners[0]
		for _, typ := range []string{"Accepted", "Programmed", "ResolvedRefs"} {
			wantCond(t, "listener http", ls.Conditions, typ, metav1.ConditionTrue, typ, gw.Generation)
		}
	}

	rt := get(t, c, &gatewayv1.HTTPRoute{}, "default", "llm-route")
	if len(rt.Status.Parents) != 1 {
		t.Fatalf("HTTPRoute parents %+v: want one", rt.Status.Parents)
	}
	ps := rt.Status.Parents[0]
	if ps.ControllerName != DefaultControllerName || ps.ParentRef.Name != "inference-gateway" {
		t.Errorf("HTTPRoute parent %s by %s", ps.ParentRef.Name, ps.ControllerName)
	}
	wantCond(t, "HTTPRoute", ps.Conditions, "Accepted", metav1.ConditionTrue, "Accepted", rt.Generation)
	wantCond(t, "HTTPRoute", ps.Conditions, "ResolvedRefs", metav1.ConditionTrue, "ResolvedRefs", rt.Generation)

	pool := get(t, c, &InferencePool{}, "default", "vllm-pool")
	if len(pool.Status.Parents) != 1 {
		t.Fatalf("InferencePool parents %+v: want one", pool.Status.Parents)
	}
	pp := pool.Status.Parents[0]
	if pp.ParentRef.Name != "inference-gateway" || pp.ParentRef.Kind != "Gateway" || pp.ControllerName != DefaultControllerName {
		t.Errorf("InferencePool parent %+v by %s", pp.ParentRef, pp.ControllerName)
	}
	wantCond(t, "InferencePool", pp.Conditions, "Accepted", metav1.ConditionTrue, "Accepted", pool.Generation)
	wantCond(t, "InferencePool", pp.Conditions, "ResolvedRefs", metav1.ConditionTrue, "ResolvedRefs", pool.Generation)

	obj := get(t, c, &InferenceObjective{}, "default", "chat-default")
	wantCond(t, "InferenceObjective", obj.Status.Conditions, "Accepted", metav1.ConditionTrue, "Accepted", obj.Generation)

	pol := get(t, c, &APIMExtensionPolicy{}, "default", "inference-gateway-apim")
	if pol.Status.State != StateRunning || pol.Status.ErrorMessage != "" {
		t.Errorf("APIMExtensionPolicy state %q %q, want RUNNING", pol.Status.State, pol.Status.ErrorMessage)
	}
	prod := get(t, c, &APIProduct{}, "default", "gatecheck-sandbox")
	ops := get(t, c, &APIOperationSet{}, "default", "gatecheck-sandbox-ops")
	if prod.Status.State != StateRunning || ops.Status.State != StateRunning {
		t.Errorf("APIProduct %q, APIOperationSet %q: want RUNNING", prod.Status.State, ops.Status.State)
	}
	want, _ := manifests.LoadDefault()
	if len(products.got) != 1 || !reflect.DeepEqual(products.got[0], want.Products) {
		t.Errorf("products synced %+v, want %+v", products.got, want.Products)
	}
}

// TestSyncIsIdempotent: a second Sync with nothing changed writes nothing.
func TestSyncIsIdempotent(t *testing.T) {
	t.Parallel()
	r := NewReconciler(newFakeClient(t, defaultObjects(t)...), Options{})
	first, err := r.Sync(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if first.StatusWrites != 8 {
		t.Errorf("first sync wrote %d statuses, want 8 (every object with a status)", first.StatusWrites)
	}
	second, err := r.Sync(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if second.StatusWrites != 0 {
		t.Errorf("second sync wrote %d statuses, want 0", second.StatusWrites)
	}
}

// edit returns the default objects with f applied to each; f returns false
// to leave the object out.
func edit(t *testing.T, f func(client.Object) bool, extra ...client.Object) []client.Object {
	t.Helper()
	var out []client.Object
	for _, o := range defaultObjects(t) {
		if f(o) {
			out = append(out, o)
		}
	}
	return append(out, extra...)
}

func is(o client.Object, kind string, name string) bool {
	return reflect.TypeOf(o).Elem().Name() == kind && o.GetName() == name
}

// TestBrokenTopologies: a broken object gets a failing condition naming the
// problem, and the rest is still served.
func TestBrokenTopologies(t *testing.T) {
	t.Parallel()
	missingBackend := &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "svc-route", Namespace: "default", Generation: 3},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Name: "inference-gateway"}}},
			Rules: []gatewayv1.HTTPRouteRule{{
				Matches: []gatewayv1.HTTPRouteMatch{{Path: &gatewayv1.HTTPPathMatch{Type: ptr(gatewayv1.PathMatchPathPrefix), Value: ptr("/svc/")}}},
				BackendRefs: []gatewayv1.HTTPBackendRef{
					{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{Name: "vllm-sim", Port: ptr(gatewayv1.PortNumber(8000))}}},
					{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{Name: "missing", Port: ptr(gatewayv1.PortNumber(8000))}}},
				},
			}},
		},
	}
	for _, tc := range []struct {
		name  string
		objs  []client.Object
		check func(t *testing.T, c client.Client, res *Result)
	}{
		{
			name: "backend Service missing",
			objs: edit(t, func(client.Object) bool { return true }, missingBackend),
			check: func(t *testing.T, c client.Client, res *Result) {
				rt := get(t, c, &gatewayv1.HTTPRoute{}, "default", "svc-route")
				if len(rt.Status.Parents) != 1 {
					t.Fatalf("parents %+v", rt.Status.Parents)
				}
				ps := rt.Status.Parents[0]
				wantCond(t, "HTTPRoute svc-route", ps.Conditions, "Accepted", metav1.ConditionTrue, "Accepted", 3)
				rr := wantCond(t, "HTTPRoute svc-route", ps.Conditions, "ResolvedRefs", metav1.ConditionFalse, "BackendNotFound", 3)
				if !strings.Contains(rr.Message, "spec.rules[0].backendRefs[1].name: Service default/missing not found") {
					t.Errorf("ResolvedRefs message %q does not name the backendRef", rr.Message)
				}
				// Served without the missing backend: the rule keeps the other.
				var rules []*manifests.RouteRule
				for _, r := range res.Compiled.Snapshot.Gateways[0].Rules {
					if r.Route.Name == "svc-route" {
						rules = append(rules, r)
					}
				}
				if len(rules) != 1 || len(rules[0].Backends) != 1 || rules[0].Backends[0].Ref.Name != "vllm-sim" {
					t.Errorf("svc-route served as %+v, want its one rule with the vllm-sim backend only", rules)
				}
				other := get(t, c, &gatewayv1.HTTPRoute{}, "default", "llm-route")
				wantCond(t, "HTTPRoute llm-route", other.Status.Parents[0].Conditions, "ResolvedRefs", metav1.ConditionTrue, "ResolvedRefs", 0)
				gw := get(t, c, &gatewayv1.Gateway{}, "default", "inference-gateway")
				if gw.Status.Listeners[0].AttachedRoutes != 2 {
					t.Errorf("attached routes %d, want 2", gw.Status.Listeners[0].AttachedRoutes)
				}
			},
		},
		{
			name: "pool picker Service missing",
			objs: edit(t, func(o client.Object) bool { return !is(o, "Service", "vllm-pool-epp") }),
			check: func(t *testing.T, c client.Client, res *Result) {
				pool := get(t, c, &InferencePool{}, "default", "vllm-pool")
				if len(pool.Status.Parents) != 1 {
					t.Fatalf("parents %+v", pool.Status.Parents)
				}
				pc := pool.Status.Parents[0].Conditions
				wantCond(t, "InferencePool", pc, "Accepted", metav1.ConditionTrue, "Accepted", 0)
				rr := wantCond(t, "InferencePool", pc, "ResolvedRefs", metav1.ConditionFalse, "InvalidExtensionRef", 0)
				if !strings.Contains(rr.Message, "spec.endpointPickerRef.name: Service default/vllm-pool-epp not found") {
					t.Errorf("ResolvedRefs message %q", rr.Message)
				}
				if _, ok := res.Compiled.Snapshot.Pools[manifests.Ref{Namespace: "default", Name: "vllm-pool"}]; ok {
					t.Error("the pool is served without its picker")
				}
				gw := get(t, c, &gatewayv1.Gateway{}, "default", "inference-gateway")
				wantCond(t, "Gateway", gw.Status.Conditions, "Programmed", metav1.ConditionTrue, "Programmed", 0)
				pol := get(t, c, &APIMExtensionPolicy{}, "default", "inference-gateway-apim")
				if pol.Status.State != StateRunning {
					t.Errorf("the APIMExtensionPolicy is %s (%s): the broken pool must not take it down", pol.Status.State, pol.Status.ErrorMessage)
				}
			},
		},
		{
			name: "policy targets a missing Gateway",
			objs: edit(t, func(o client.Object) bool {
				if p, ok := o.(*APIMExtensionPolicy); ok {
					p.Spec.TargetRef.Name = "nope"
				}
				return true
			}),
			check: func(t *testing.T, c client.Client, res *Result) {
				pol := get(t, c, &APIMExtensionPolicy{}, "default", "inference-gateway-apim")
				if pol.Status.State != StateCreateUpdateFailed || !strings.Contains(pol.Status.ErrorMessage, "spec.targetRef.name: Gateway default/nope not found") {
					t.Errorf("state %q, errorMessage %q: want Create_Update_Failed naming the Gateway", pol.Status.State, pol.Status.ErrorMessage)
				}
				wantCond(t, "APIMExtensionPolicy", pol.Status.Conditions, "Ready", metav1.ConditionFalse, "CreateUpdateFailed", 0)
				gw := res.Compiled.Snapshot.Gateways[0]
				if len(gw.Extensions) != 0 || len(gw.Rules) == 0 {
					t.Errorf("gateway served with %d extensions and %d rules: want the routes, without Apigee", len(gw.Extensions), len(gw.Rules))
				}
			},
		},
		{
			name: "HTTPS listener",
			objs: edit(t, func(o client.Object) bool {
				if g, ok := o.(*gatewayv1.Gateway); ok {
					g.Generation = 2
					g.Spec.Listeners[0].Protocol = gatewayv1.HTTPSProtocolType
				}
				return true
			}),
			check: func(t *testing.T, c client.Client, res *Result) {
				gw := get(t, c, &gatewayv1.Gateway{}, "default", "inference-gateway")
				wantCond(t, "Gateway", gw.Status.Conditions, "Accepted", metav1.ConditionFalse, "ListenersNotValid", 2)
				wantCond(t, "Gateway", gw.Status.Conditions, "Programmed", metav1.ConditionFalse, "Invalid", 2)
				wantCond(t, "listener", gw.Status.Listeners[0].Conditions, "Accepted", metav1.ConditionFalse, "UnsupportedProtocol", 2)
				rt := get(t, c, &gatewayv1.HTTPRoute{}, "default", "llm-route")
				wantCond(t, "HTTPRoute", rt.Status.Parents[0].Conditions, "Accepted", metav1.ConditionFalse, "NoMatchingParent", 0)
				pool := get(t, c, &InferencePool{}, "default", "vllm-pool")
				wantCond(t, "InferencePool", pool.Status.Parents[0].Conditions, "Accepted", metav1.ConditionFalse, "HTTPRouteNotAccepted", 0)
				if len(res.Compiled.Snapshot.Gateways) != 0 {
					t.Errorf("%d gateways served", len(res.Compiled.Snapshot.Gateways))
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newFakeClient(t, tc.objs...)
			res, err := NewReconciler(c, Options{}).Sync(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if res.Compiled.Snapshot == nil {
				t.Fatalf("nothing served: %v", res.Compiled.Err)
			}
			tc.check(t, c, res)
		})
	}
}

// TestPolicyFileOfAMissingPolicy: policy XML filed under an
// APIMExtensionPolicy the cluster does not have is left out; the rest is
// served.
func TestPolicyFileOfAMissingPolicy(t *testing.T) {
	t.Parallel()
	c := newFakeClient(t, defaultObjects(t)...)
	r := NewReconciler(c, Options{Policies: map[string][]byte{"policies/gone/request/x.xml": []byte("<VerifyAPIKey/>")}})
	res, err := r.Sync(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Compiled.Snapshot == nil || res.Compiled.DroppedPolicies["policies/gone/request/x.xml"] == nil {
		t.Fatalf("snapshot %v, dropped %v", res.Compiled.Snapshot, res.Compiled.DroppedPolicies)
	}
	gw := get(t, c, &gatewayv1.Gateway{}, "default", "inference-gateway")
	wantCond(t, "Gateway", gw.Status.Conditions, "Programmed", metav1.ConditionTrue, "Programmed", 0)
}

// TestGatewayBrokenLaterIsWithdrawn: a Gateway that becomes invalid stops
// being served at the next sync; the snapshot without it is swapped in.
func TestGatewayBrokenLaterIsWithdrawn(t *testing.T) {
	t.Parallel()
	c := newFakeClient(t, defaultObjects(t)...)
	swaps := 0
	r := NewReconciler(c, Options{OnSnapshot: func(*manifests.Snapshot) { swaps++ }})
	if _, err := r.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Break the one Gateway: nothing is left to serve it.
	gw := get(t, c, &gatewayv1.Gateway{}, "default", "inference-gateway")
	gw.Spec.Listeners[0].Protocol = gatewayv1.HTTPSProtocolType
	if err := c.Update(context.Background(), gw); err != nil {
		t.Fatal(err)
	}
	bad, err := r.Sync(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if bad.Compiled.Snapshot == nil || len(bad.Compiled.Snapshot.Gateways) != 0 {
		t.Fatalf("compiled %+v", bad.Compiled.Snapshot)
	}
	if swaps != 2 || r.Served() != bad.Compiled.Snapshot {
		t.Errorf("%d swaps; served %p, want the new snapshot %p", swaps, r.Served(), bad.Compiled.Snapshot)
	}
	gw = get(t, c, &gatewayv1.Gateway{}, "default", "inference-gateway")
	wantCond(t, "Gateway", gw.Status.Conditions, "Programmed", metav1.ConditionFalse, "Invalid", gw.Generation)
}

// TestProductSyncFailure: products not synced are Create_Update_Failed with
// the reason, until a later sync succeeds.
func TestProductSyncFailure(t *testing.T) {
	t.Parallel()
	c := newFakeClient(t, defaultObjects(t)...)
	products := &recordingSyncer{err: errors.New("connection refused")}
	r := NewReconciler(c, Options{Products: products})
	if _, err := r.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	prod := get(t, c, &APIProduct{}, "default", "gatecheck-sandbox")
	if prod.Status.State != StateCreateUpdateFailed || !strings.Contains(prod.Status.ErrorMessage, "connection refused") {
		t.Errorf("APIProduct %q %q", prod.Status.State, prod.Status.ErrorMessage)
	}
	res, err := r.Reconcile(context.Background(), topologyKey)
	if err != nil || res.RequeueAfter == 0 {
		t.Errorf("Reconcile after a failed sync: %+v, %v: want a requeue", res, err)
	}
	products.err = nil
	if _, err := r.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	prod = get(t, c, &APIProduct{}, "default", "gatecheck-sandbox")
	if prod.Status.State != StateRunning {
		t.Errorf("APIProduct %q after a good sync", prod.Status.State)
	}
}

// TestManagementSyncer syncs into a real management API: create, update,
// and delete what the topology dropped.
func TestManagementSyncer(t *testing.T) {
	t.Parallel()
	store := state.NewMemory()
	api, err := mgmt.New(mgmt.Options{Store: store, AdminToken: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	cl := apigeeapi.NewClient(srv.URL, mgmt.DefaultOrg, "admin", srv.Client())
	s := &ManagementSyncer{Client: cl}
	ctx := context.Background()
	a := apigeeapi.APIProduct{Name: "a", DisplayName: "A", ApprovalType: "auto"}
	b := apigeeapi.APIProduct{Name: "b", DisplayName: "B", ApprovalType: "manual"}
	if err := s.SyncProducts(ctx, []apigeeapi.APIProduct{a, b}); err != nil {
		t.Fatal(err)
	}
	a.DisplayName = "A2"
	if err := s.SyncProducts(ctx, []apigeeapi.APIProduct{a}); err != nil {
		t.Fatal(err)
	}
	got, err := cl.ListProducts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "a" || got[0].DisplayName != "A2" {
		t.Errorf("products in the runtime: %+v, want only a, updated", got)
	}

	bad := &ManagementSyncer{Client: apigeeapi.NewClient(srv.URL, mgmt.DefaultOrg, "wrong", srv.Client())}
	if err := bad.SyncProducts(ctx, []apigeeapi.APIProduct{a}); err == nil || !strings.Contains(err.Error(), "product a") {
		t.Errorf("sync with a wrong token: %v, want an error naming the product", err)
	}
}

// TestCompileServableDropsOnlyTheBadParent: a route attached to two
// Gateways, one through a listener that does not exist, stays on the other.
func TestCompileServableDropsOnlyTheBadParent(t *testing.T) {
	t.Parallel()
	objs, _, err := manifests.Load(manifests.Default(), ".")
	if err != nil {
		t.Fatal(err)
	}
	second := &gatewayv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: "second", Namespace: "default"},
		Spec:       gatewayv1.GatewaySpec{GatewayClassName: "gatecheck", Listeners: []gatewayv1.Listener{{Name: "http", Protocol: gatewayv1.HTTPProtocolType, Port: 81}}},
	}
	objs = append(objs, manifests.Object{APIVersion: "gateway.networking.k8s.io/v1", Kind: "Gateway", Namespace: "default", Name: "second", Value: second})
	for i, o := range objs {
		if rt, ok := o.Value.(*gatewayv1.HTTPRoute); ok {
			rt = rt.DeepCopy()
			rt.Spec.ParentRefs = []gatewayv1.ParentReference{
				{Name: "second", SectionName: ptr(gatewayv1.SectionName("nope"))},
				{Name: "inference-gateway"},
			}
			objs[i].Value = rt
		}
	}
	c := CompileServable(objs, nil)
	if c.Snapshot == nil {
		t.Fatal(c.Err)
	}
	probs := c.Problems["HTTPRoute default/llm-route"]
	if len(probs) != 1 || probs[0].Field != "spec.parentRefs[0].sectionName" {
		t.Errorf("problems %v: want the first parentRef's sectionName", probs)
	}
	if c.Dropped["HTTPRoute default/llm-route"] {
		t.Error("the route was dropped")
	}
	for _, gw := range c.Snapshot.Gateways {
		if n := len(gw.Rules); (gw.Ref.Name == "second") != (n == 0) {
			t.Errorf("Gateway %s serves %d rules", gw.Ref, n)
		}
	}
}

// TestPoolEndpoints: ready Pods only, on every target port, in name order.
func TestPoolEndpoints(t *testing.T) {
	t.Parallel()
	pod := func(name, ip string, phase corev1.PodPhase, ready bool, labels map[string]string) *corev1.Pod {
		st := corev1.ConditionFalse
		if ready {
			st = corev1.ConditionTrue
		}
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: labels},
			Status:     corev1.PodStatus{Phase: phase, PodIP: ip, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}},
		}
	}
	sim := map[string]string{"app": "vllm-sim"}
	objs := append(defaultObjects(t),
		pod("vllm-sim-b", "10.0.0.2", corev1.PodRunning, true, sim),
		pod("vllm-sim-a", "10.0.0.1", corev1.PodRunning, true, sim),
		pod("vllm-sim-c", "10.0.0.3", corev1.PodRunning, false, sim),
		pod("vllm-sim-d", "", corev1.PodPending, false, sim),
		pod("other", "10.0.0.9", corev1.PodRunning, true, map[string]string{"app": "other"}),
	)
	r := &Resolver{Reader: newFakeClient(t, objs...)}
	got, err := r.PoolEndpoints(manifests.Ref{Namespace: "default", Name: "vllm-pool"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "10.0.0.1:8000,10.0.0.2:8000" {
		t.Errorf("endpoints %v", got)
	}
	if _, err := r.PoolEndpoints(manifests.Ref{Namespace: "default", Name: "nope"}); err == nil {
		t.Error("endpoints of a missing pool")
	}
	addrs, err := r.ServiceAddrs(manifests.Ref{Namespace: "default", Name: "vllm-pool-epp"}, 9002)
	if err != nil || len(addrs) != 1 || addrs[0] != "vllm-pool-epp.default.svc.cluster.local:9002" {
		t.Errorf("ServiceAddrs = %v, %v", addrs, err)
	}
}

// TestDeepCopyObject: copies are equal and independent.
func TestDeepCopyObject(t *testing.T) {
	t.Parallel()
	for _, o := range defaultObjects(t) {
		cp := o.DeepCopyObject()
		if !reflect.DeepEqual(cp, o) {
			t.Errorf("%T %s: copy differs:\n%#v\n%#v", o, o.GetName(), cp, o)
		}
		cp.(client.Object).SetLabels(map[string]string{"changed": "yes"})
		if o.GetLabels()["changed"] != "" {
			t.Errorf("%T %s: the copy shares its labels", o, o.GetName())
		}
	}
	l := &InferencePoolList{Items: []InferencePool{{}}}
	if cp := l.DeepCopyObject().(*InferencePoolList); len(cp.Items) != 1 {
		t.Errorf("list copy %+v", cp)
	}
}

// TestSetupWithManager wires the controller into a manager (no API server is
// contacted before Start).
func TestSetupWithManager(t *testing.T) {
	t.Parallel()
	s, err := NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	skip := true // controller names are process-global: -count=2 would meet this one again
	mgr, err := ctrl.NewManager(&rest.Config{Host: "http://127.0.0.1:1"}, ctrl.Options{
		Scheme:                 s,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             ctrlconfig.Controller{SkipNameValidation: &skip},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := NewReconciler(mgr.GetClient(), Options{}).SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
}

// TestSchemeDecodesAPIServerJSON: the API server's JSON for our kinds, and
// lists of them, decodes through the scheme's codecs (what the real client
// and cache use) into the wrapper types with every field.
func TestSchemeDecodesAPIServerJSON(t *testing.T) {
	t.Parallel()
	s, err := NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	dec := serializer.NewCodecFactory(s).UniversalDeserializer()
	obj, gvk, err := dec.Decode([]byte(`{"apiVersion":"inference.networking.k8s.io/v1","kind":"InferencePool",
		"metadata":{"name":"p","namespace":"ns","generation":4,"resourceVersion":"12"},
		"spec":{"selector":{"matchLabels":{"app":"m"}},"targetPorts":[{"number":8000}],"endpointPickerRef":{"name":"e","port":{"number":9002},"failureMode":"FailOpen"}},
		"status":{"parents":[{"parentRef":{"name":"gw"},"controllerName":"x","conditions":[{"type":"Accepted","status":"True","reason":"Accepted","message":"","lastTransitionTime":"2026-01-01T00:00:00Z"}]}]}}`), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, ok := obj.(*InferencePool)
	if !ok || gvk.Kind != "InferencePool" {
		t.Fatalf("decoded %T %v", obj, gvk)
	}
	if p.Name != "p" || p.Generation != 4 || p.Spec.TargetPorts[0].Number != 8000 || p.Spec.EndpointPickerRef.FailureMode != "FailOpen" ||
		len(p.Status.Parents) != 1 || p.Status.Parents[0].Conditions[0].Reason != "Accepted" {
		t.Errorf("decoded %+v", p)
	}
	list, _, err := dec.Decode([]byte(`{"apiVersion":"apim.googleapis.com/v1","kind":"APIProductList","metadata":{"resourceVersion":"3"},
		"items":[{"metadata":{"name":"a"},"spec":{"approvalType":"manual"},"status":{"state":"RUNNING"}}]}`), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	pl, ok := list.(*APIProductList)
	if !ok || len(pl.Items) != 1 || pl.Items[0].Name != "a" || pl.Items[0].Spec.ApprovalType != "manual" || pl.Items[0].Status.State != "RUNNING" {
		t.Errorf("decoded %T %+v", list, list)
	}
}
