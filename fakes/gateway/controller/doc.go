// Package controller runs gatecheck's gateway inside a Kubernetes cluster: a
// Gateway API controller (controllerName gatecheck.dev/gateway-controller)
// built on controller-runtime.
//
// It watches GatewayClasses, Gateways, HTTPRoutes, InferencePools,
// InferenceObjectives, the Apigee Operator's APIMExtensionPolicies,
// APIProducts and APIOperationSets, Services, Deployments and Pods. On every
// change it lists the topology, turns it into []manifests.Object and feeds it
// to manifests.Compile — the same function the simulation compiles files
// with — then swaps the data plane's snapshot, writes status, and syncs the
// products into the fake Apigee runtime through its management API, as the
// Apigee Operator does with Apigee.
//
// # A broken object does not take the others down
//
// Compile is all or nothing: any problem fails the whole topology. In a
// cluster one bad object must not stop the rest from being served, so
// [CompileServable] maps each problem to the object it names
// (manifests.FieldError.Object) and compiles again without it, until what is
// left compiles. A problem in an HTTPRoute's backendRef drops only that
// backendRef (a rule left with none answers 500, as Gateway API asks), and
// one in a parentRef only that parent (the route stays attached to the
// others); any other problem drops the object. Dropping an object can break the objects
// that refer to it; they are dropped in the next round, with their own
// problem. Every problem becomes a failing status condition on the object it
// names. A policy XML file with a problem (filed under an APIMExtensionPolicy
// the cluster does not have) is left out and logged. A problem that names
// neither an object nor a file cannot be isolated; then the previous snapshot
// stays in service.
//
// Policy XML is not stored in the cluster: the controller takes it from
// Options.Policies, which `gatecheck serve gateway --in-cluster` fills from
// its --manifests directory, or from the embedded default topology — the same
// files the fake Apigee runtime (`gatecheck serve apigee`) runs.
//
// # Status
//
// GatewayClass Accepted; Gateway Accepted and Programmed, with listener
// status; HTTPRoute parent Accepted and ResolvedRefs; InferencePool parent
// Accepted and ResolvedRefs with the Inference Extension's reasons
// (InvalidExtensionRef when the endpoint picker's Service is missing,
// HTTPRouteNotAccepted, NotSupportedByParent); InferenceObjective Accepted;
// and for the Apigee kinds the operator's status.state (RUNNING or
// Create_Update_Failed) with status.errorMessage.
//
// # Our own kinds as runtime.Objects
//
// controller-runtime needs every kind registered in a runtime.Scheme as a
// runtime.Object. InferencePool, InferenceObjective and the Apigee kinds are
// manifests' own types (their upstream Go modules are not available), which
// have no DeepCopy. This package wraps each in a struct embedding it, whose
// JSON is the same (an embedded struct's fields are inlined), and implements
// DeepCopyObject by a JSON round trip: exact for types that are decoded from
// JSON anyway, never out of date when a field is added, and fast enough for a
// topology's handful of objects. [AddToScheme] registers them.
//
// # Endpoints
//
// [Resolver] answers the data plane in a cluster: a Service is its cluster
// DNS name (name.namespace.svc.cluster.local:port), a pool's endpoints are
// the IPs of its ready Pods on each target port. [WatchPool] gives an
// endpoint picker the same endpoints as they change.
package controller
