// Package sim brings a topology up inside one process, on loopback ports: the
// fake model servers of every Deployment an InferencePool selects, one
// endpoint picker per pool, and the gateway data plane for every Gateway.
// It is the default target of the conformance suite and what
// `gatecheck sandbox up` runs. With Options.Ollama, real Ollama servers take
// the fake model servers' place (`sandbox up --models ollama`).
//
// Every component is a real server speaking its real protocol (HTTP for the
// gateway and the models, Envoy ext_proc over gRPC for the picker), so a test
// that passes here exercises the same wire formats a cluster would.
package sim
