package controller

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatecheck/gatecheck/manifests"
)

// DefaultControllerName is the controllerName of gatecheck's GatewayClass.
const DefaultControllerName = "gatecheck.dev/gateway-controller"

// Topology is what the controller read from the API server: the objects it
// compiles, and the originals it writes status to.
type Topology struct {
	// Objects are fed to manifests.Compile, in a stable order: by kind (as
	// listed below), then namespace, then name. File is empty and Doc 0.
	Objects []manifests.Object

	Classes    []*gatewayv1.GatewayClass
	Gateways   []*gatewayv1.Gateway
	Routes     []*gatewayv1.HTTPRoute
	Pools      []*InferencePool
	Objectives []*InferenceObjective
	Policies   []*APIMExtensionPolicy
	Products   []*APIProduct
	OpSets     []*APIOperationSet
}

// Collect lists the topology a controller named controllerName serves:
//
//   - the GatewayClasses with that controllerName, and the Gateways of those
//     classes;
//   - the HTTPRoutes with a parentRef to one of those Gateways, with the
//     parentRefs to other Gateways left out (another controller answers for
//     them);
//   - every InferencePool, InferenceObjective and Apigee Operator object (the
//     controller plays the Inference Extension's and the operator's part);
//   - the Deployments and Services of the namespaces those objects are in
//     (model servers, pickers, runtimes), not the whole cluster's.
//
// The objects are the reader's; Collect does not change them.
func Collect(ctx context.Context, r client.Reader, controllerName string) (*Topology, error) {
	if controllerName == "" {
		controllerName = DefaultControllerName
	}
	t := &Topology{}
	var classes gatewayv1.GatewayClassList
	if err := r.List(ctx, &classes); err != nil {
		return nil, fmt.Errorf("list GatewayClasses: %w", err)
	}
	ours := map[string]bool{}
	for i := range classes.Items {
		gc := &classes.Items[i]
		if string(gc.Spec.ControllerName) == controllerName {
			ours[gc.Name] = true
			t.Classes = append(t.Classes, gc)
		}
	}
	var gateways gatewayv1.GatewayList
	if err := r.List(ctx, &gateways); err != nil {
		return nil, fmt.Errorf("list Gateways: %w", err)
	}
	ourGateways := map[manifests.Ref]bool{}
	for i := range gateways.Items {
		gw := &gateways.Items[i]
		if ours[string(gw.Spec.GatewayClassName)] {
			t.Gateways = append(t.Gateways, gw)
			ourGateways[manifests.Ref{Namespace: gw.Namespace, Name: gw.Name}] = true
		}
	}
	var routes gatewayv1.HTTPRouteList
	if err := r.List(ctx, &routes); err != nil {
		return nil, fmt.Errorf("list HTTPRoutes: %w", err)
	}
	for i := range routes.Items {
		rt := &routes.Items[i]
		if slices.ContainsFunc(rt.Spec.ParentRefs, func(p gatewayv1.ParentReference) bool { return ourGateways[parentGateway(rt.Namespace, p)] }) {
			t.Routes = append(t.Routes, rt)
		}
	}
	var pools InferencePoolList
	if err := r.List(ctx, &pools); err != nil {
		return nil, fmt.Errorf("list InferencePools: %w", err)
	}
	for i := range pools.Items {
		t.Pools = append(t.Pools, &pools.Items[i])
	}
	var objectives InferenceObjectiveList
	if err := r.List(ctx, &objectives); err != nil {
		return nil, fmt.Errorf("list InferenceObjectives: %w", err)
	}
	for i := range objectives.Items {
		t.Objectives = append(t.Objectives, &objectives.Items[i])
	}
	var policies APIMExtensionPolicyList
	if err := r.List(ctx, &policies); err != nil {
		return nil, fmt.Errorf("list APIMExtensionPolicies: %w", err)
	}
	for i := range policies.Items {
		t.Policies = append(t.Policies, &policies.Items[i])
	}
	var products APIProductList
	if err := r.List(ctx, &products); err != nil {
		return nil, fmt.Errorf("list APIProducts: %w", err)
	}
	for i := range products.Items {
		t.Products = append(t.Products, &products.Items[i])
	}
	var opsets APIOperationSetList
	if err := r.List(ctx, &opsets); err != nil {
		return nil, fmt.Errorf("list APIOperationSets: %w", err)
	}
	for i := range opsets.Items {
		t.OpSets = append(t.OpSets, &opsets.Items[i])
	}

	namespaces := map[string]bool{}
	add := func(apiVersion, kind, namespace, name string, v any) {
		t.Objects = append(t.Objects, manifests.Object{APIVersion: apiVersion, Kind: kind, Namespace: namespace, Name: name, Value: v})
		if namespace != "" {
			namespaces[namespace] = true
		}
	}
	sortObjects(t.Classes)
	for _, o := range t.Classes {
		add("gateway.networking.k8s.io/v1", "GatewayClass", "", o.Name, o)
	}
	sortObjects(t.Gateways)
	for _, o := range t.Gateways {
		add("gateway.networking.k8s.io/v1", "Gateway", o.Namespace, o.Name, o)
	}
	sortObjects(t.Routes)
	for _, o := range t.Routes {
		add("gateway.networking.k8s.io/v1", "HTTPRoute", o.Namespace, o.Name, ownParents(o, ourGateways))
	}
	sortObjects(t.Pools)
	for _, o := range t.Pools {
		add(InferenceGroupVersion.String(), "InferencePool", o.Namespace, o.Name, &o.InferencePool)
	}
	sortObjects(t.Objectives)
	for _, o := range t.Objectives {
		add(InferenceObjectiveGroupVersion.String(), "InferenceObjective", o.Namespace, o.Name, &o.InferenceObjective)
	}
	sortObjects(t.Policies)
	for _, o := range t.Policies {
		add(APIMGroupVersion.String(), "APIMExtensionPolicy", o.Namespace, o.Name, &o.APIMExtensionPolicy)
	}
	sortObjects(t.Products)
	for _, o := range t.Products {
		add(APIMGroupVersion.String(), "APIProduct", o.Namespace, o.Name, &o.APIProduct)
	}
	sortObjects(t.OpSets)
	for _, o := range t.OpSets {
		add(APIMGroupVersion.String(), "APIOperationSet", o.Namespace, o.Name, &o.APIOperationSet)
	}

	nsList := make([]string, 0, len(namespaces))
	for ns := range namespaces {
		nsList = append(nsList, ns)
	}
	slices.Sort(nsList)
	var deploys []*appsv1.Deployment
	var services []*corev1.Service
	for _, ns := range nsList {
		var dl appsv1.DeploymentList
		if err := r.List(ctx, &dl, client.InNamespace(ns)); err != nil {
			return nil, fmt.Errorf("list Deployments in %s: %w", ns, err)
		}
		for i := range dl.Items {
			deploys = append(deploys, &dl.Items[i])
		}
		var sl corev1.ServiceList
		if err := r.List(ctx, &sl, client.InNamespace(ns)); err != nil {
			return nil, fmt.Errorf("list Services in %s: %w", ns, err)
		}
		for i := range sl.Items {
			services = append(services, &sl.Items[i])
		}
	}
	sortObjects(deploys)
	for _, o := range deploys {
		add("apps/v1", "Deployment", o.Namespace, o.Name, o)
	}
	sortObjects(services)
	for _, o := range services {
		add("v1", "Service", o.Namespace, o.Name, o)
	}
	return t, nil
}

// parentGateway is the Gateway a parentRef of a route in namespace names, or
// the zero Ref when it names something else.
func parentGateway(namespace string, p gatewayv1.ParentReference) manifests.Ref {
	if p.Group != nil && string(*p.Group) != gatewayv1.GroupName {
		return manifests.Ref{}
	}
	if p.Kind != nil && string(*p.Kind) != "Gateway" {
		return manifests.Ref{}
	}
	if p.Namespace != nil && *p.Namespace != "" {
		namespace = string(*p.Namespace)
	}
	return manifests.Ref{Namespace: namespace, Name: string(p.Name)}
}

// ownParents is the route with only the parentRefs to our Gateways, a copy
// when any had to go.
func ownParents(rt *gatewayv1.HTTPRoute, ours map[manifests.Ref]bool) *gatewayv1.HTTPRoute {
	keep := func(p gatewayv1.ParentReference) bool { return ours[parentGateway(rt.Namespace, p)] }
	if !slices.ContainsFunc(rt.Spec.ParentRefs, func(p gatewayv1.ParentReference) bool { return !keep(p) }) {
		return rt
	}
	cp := rt.DeepCopy()
	cp.Spec.ParentRefs = slices.DeleteFunc(cp.Spec.ParentRefs, func(p gatewayv1.ParentReference) bool { return !keep(p) })
	return cp
}

// named is what sortObjects needs of an object.
type named interface {
	GetNamespace() string
	GetName() string
}

func sortObjects[T named](objs []T) {
	slices.SortFunc(objs, func(a, b T) int {
		return cmp.Or(cmp.Compare(a.GetNamespace(), b.GetNamespace()), cmp.Compare(a.GetName(), b.GetName()))
	})
}
