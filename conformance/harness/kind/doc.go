// Package kind is the conformance target that runs the suite on a real
// Kubernetes cluster: kind (Kubernetes in Docker or Podman), driven with the
// kind Go library, so no kind binary is needed — only a container engine.
//
// New does, in order:
//
//  1. Checks that a container engine answers (Docker, Podman or nerdctl, as
//     kind detects them, honouring KIND_EXPERIMENTAL_PROVIDER), and stops at
//     once with ErrNoEngine when none does.
//  2. Builds the gatecheck image for the node's architecture without Docker
//     (package images), while kind creates the cluster: one node, the
//     configured node image, NodePort 30080 mapped to 127.0.0.1:8080 for the
//     gateway and 30081 to 127.0.0.1:8081 for the Apigee management API. An
//     existing cluster of the same name is reused (and then never deleted).
//  3. Loads the image archive into every node (nodeutils.LoadImageArchive).
//  4. Applies, with server-side apply: the CRDs (manifests/crds), the admin
//     token Secret, the kind overlay (manifests/kind: the in-cluster gateway
//     controller and its RBAC, the fake Apigee runtime, the picker's RBAC)
//     and the default topology (manifests/default) — with --models ollama,
//     Ollama in place of the fake model servers.
//  5. Waits by polling (e2e-framework's wait conditions, named timeouts in
//     Timeouts): CRDs established, Deployments available, the Gateway
//     Programmed by the controller, the gateway and the management API
//     answering on the host's loopback, and one chat completion through the
//     whole path with a freshly provisioned sandbox key.
//
// The Target then serves the suite: provisioning through the management API,
// time moved through the runtime's clock endpoint (only the Apigee runtime's
// clock moves: it is the only component whose behaviour depends on time),
// the Apigee runtime and the endpoint picker stopped and started by scaling
// their Deployments to 0 and back, and decision traces from the runtime.
// Scenarios that bring their own topology are skipped. CollectLogs writes
// every pod's logs and kind's node logs to a directory; Close deletes the
// cluster unless Options.Keep, or it was there before.
package kind
