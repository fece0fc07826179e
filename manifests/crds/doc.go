// Package crds holds the CustomResourceDefinitions gatecheck installs on a
// cluster, embedded: the Gateway API standard-channel CRDs it uses
// (GatewayClass, Gateway, HTTPRoute, ReferenceGrant), copied byte for byte
// from sigs.k8s.io/gateway-api v1.6.3, and its own CRDs for the kinds whose
// Go modules are not available here: InferencePool and InferenceObjective of
// the Gateway API Inference Extension, and the Apigee Operator's
// APIMExtensionPolicy, APIProduct and APIOperationSet.
//
// The copies are checked against the module by a test; refresh them with
//
//	go test ./manifests/crds -run TestGatewayAPICopies -update
//
// The same tests validate every manifest gatecheck applies to kind (the
// default topology and the kind overlay) against these schemas offline, with
// the API server's own validation code.
package crds
