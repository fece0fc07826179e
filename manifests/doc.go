// Package manifests loads a gatecheck topology from Kubernetes YAML and
// compiles it into a Snapshot, the immutable configuration the simulated data
// plane reads.
//
// A topology is ordinary Kubernetes YAML: Gateway API Gateways and HTTPRoutes
// (sigs.k8s.io/gateway-api v1), Gateway API Inference Extension InferencePools
// and InferenceObjectives (our own types, decoding the same YAML as GIE v1.6),
// and apps/v1 Deployments and v1 Services for model servers and endpoint
// pickers. The same files are applied to a cluster, so the simulation accepts
// only what a cluster would, and a little less: it refuses what it cannot
// simulate (for example an HTTPS listener) instead of ignoring it.
//
// Loading happens in two steps:
//
//   - [Load] and [Decode] read YAML strictly: an unknown or duplicate field is
//     an error naming the file, the object and the field path.
//   - [Compile] fills in defaults, resolves every reference and validates
//     every value, reporting all problems at once, each a [FieldError], joined
//     with errors.Join.
//
// [Default] is the embedded default topology (the files in manifests/default)
// and [LoadDefault] compiles it.
package manifests
