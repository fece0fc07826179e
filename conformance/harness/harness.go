// Package harness says what the conformance suite needs from a target — a
// deployment to run scenarios against — and what each kind of target can do.
// The sim target (package sim) runs everything in-process; the external
// target (package external) is a deployment someone else runs; the kind
// target brings up a cluster.
package harness

import (
	"context"
	"errors"
	"io/fs"
	"time"

	"github.com/gatecheck/gatecheck/internal/apigeeapi"
)

// ErrUnsupported is returned (wrapped) when a target cannot do what was asked.
var ErrUnsupported = errors.New("not supported by this target")

// Component is a part of the deployment a scenario can stop and start.
type Component string

// Components.
const (
	ComponentApigee Component = "apigee" // the Apigee runtime (ext_proc) of the gateway's APIMExtensionPolicy
	ComponentPicker Component = "picker" // the endpoint picker of the default pool
)

// Capabilities say what a target can do beyond sending traffic.
type Capabilities struct {
	// Provision: developers, apps, keys and products can be created through
	// the management API.
	Provision bool
	// Clock: time can be moved forward (free in the simulation).
	Clock bool
	// Components: the Apigee runtime and the picker can be stopped and started.
	Components bool
	// Topology: a scenario can bring its own manifests and policies.
	Topology bool
	// Traces: decision traces can be looked up by id.
	Traces bool
	// Ollama: the model servers are real Ollama servers (issue 7), so
	// answers are real model output and token counts Ollama's own.
	Ollama bool
}

// Target is a deployment the suite runs against.
type Target interface {
	// Name is sim, kind or external.
	Name() string
	// GatewayURL is the gateway's base URL.
	GatewayURL() string
	// Capabilities say what else the target can do.
	Capabilities() Capabilities
	// Management is a client for the target's management API, authenticated
	// as an admin; nil when the target cannot provision.
	Management() *apigeeapi.Client
	// Keys are pre-provisioned API keys by name (for a target whose
	// provisioning the suite cannot drive); "default" is used when a
	// scenario names none.
	Keys() map[string]string
	// Models are the model names the deployment serves, first the default.
	Models() []string
	// AdvanceClock moves the target's time forward.
	AdvanceClock(ctx context.Context, d time.Duration) error
	// Stop and Start a component.
	Stop(ctx context.Context, c Component) error
	Start(ctx context.Context, c Component) error
	// Trace returns the decision trace with this id, as JSON.
	Trace(ctx context.Context, id string) ([]byte, error)
	// WithTopology starts a new target of the same kind whose topology is
	// the default one plus (and, for equal paths, instead of) the files in
	// overlay: manifests and policies/<APIMExtensionPolicy>/{request,response}/*.xml.
	// The caller closes it.
	WithTopology(ctx context.Context, overlay fs.FS) (Target, error)
	// Close releases what the target holds.
	Close() error
}
