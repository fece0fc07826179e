package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"testing/fstest"
	"time"

	"github.com/gatecheck/gatecheck/conformance/harness"
	"github.com/gatecheck/gatecheck/internal/apigeeapi"
	"github.com/gatecheck/gatecheck/manifests"
)

// Target is the simulation as a conformance target: everything can be done,
// time moves for free, components stop and start, and a scenario can bring
// its own topology.
type Target struct {
	env  *Env
	opts Options
}

var _ harness.Target = (*Target)(nil)

// NewTarget starts a simulation (with the sandbox app provisioned) and wraps
// it as a target.
func NewTarget(ctx context.Context, opts Options) (*Target, error) {
	opts.Provision = true
	env, err := Start(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &Target{env: env, opts: opts}, nil
}

// Env is the running simulation.
func (t *Target) Env() *Env { return t.env }

// Name is "sim".
func (t *Target) Name() string { return "sim" }

// GatewayURL is the first Gateway's base URL.
func (t *Target) GatewayURL() string { return t.env.GatewayURL() }

// Capabilities: all of them, Apigee's only when the topology has one, and
// Ollama when the models are real Ollama servers (Options.Ollama).
func (t *Target) Capabilities() harness.Capabilities {
	apigee := t.env.apigee != nil
	return harness.Capabilities{Provision: apigee, Clock: true, Components: true, Topology: true, Traces: apigee, Ollama: t.env.ollama != nil}
}

// Management is an admin client of the fake Apigee.
func (t *Target) Management() *apigeeapi.Client { return t.env.Management() }

// Keys has the sandbox app's key as "default".
func (t *Target) Keys() map[string]string {
	if k := t.env.APIKey(); k != "" {
		return map[string]string{"default": k}
	}
	return nil
}

// Models are the names the topology's model servers answer to.
func (t *Target) Models() []string { return t.env.Models() }

// AdvanceClock moves the simulation's clock.
func (t *Target) AdvanceClock(_ context.Context, d time.Duration) error {
	return t.env.advanceClock(d)
}

// Stop stops a component.
func (t *Target) Stop(_ context.Context, c harness.Component) error {
	switch c {
	case harness.ComponentApigee:
		return t.eachRuntime(t.env.StopRuntime)
	case harness.ComponentPicker:
		return t.eachPool(t.env.StopPicker)
	}
	return fmt.Errorf("component %q: %w", c, harness.ErrUnsupported)
}

// Start starts a stopped component and waits until it answers.
func (t *Target) Start(ctx context.Context, c harness.Component) error {
	switch c {
	case harness.ComponentApigee:
		return t.eachRuntime(t.env.StartRuntime)
	case harness.ComponentPicker:
		return t.eachPool(func(p manifests.Ref) error { return t.env.StartPicker(ctx, p) })
	}
	return fmt.Errorf("component %q: %w", c, harness.ErrUnsupported)
}

func (t *Target) eachRuntime(f func(string) error) error {
	exts := extensions(t.env.snap)
	if len(exts) == 0 {
		return fmt.Errorf("the topology has no APIMExtensionPolicy: %w", harness.ErrUnsupported)
	}
	for _, ext := range exts {
		if err := f(ext.Name); err != nil {
			return err
		}
	}
	return nil
}

func (t *Target) eachPool(f func(manifests.Ref) error) error {
	n := 0
	for _, ref := range sortedPools(t.env.snap) {
		if t.env.snap.Pools[ref].Picker == nil {
			continue
		}
		n++
		if err := f(ref); err != nil {
			return err
		}
	}
	if n == 0 {
		return fmt.Errorf("the topology has no endpoint picker: %w", harness.ErrUnsupported)
	}
	return nil
}

// Trace returns a decision trace as JSON.
func (t *Target) Trace(_ context.Context, id string) ([]byte, error) {
	tr := t.env.Traces()
	if tr == nil {
		return nil, fmt.Errorf("traces: %w", harness.ErrUnsupported)
	}
	got, ok := tr.Get(id)
	if !ok {
		return nil, fmt.Errorf("trace %s not found", id)
	}
	return json.MarshalIndent(got, "", "  ")
}

// WithTopology starts another simulation: the default topology with the
// overlay's files added or replacing those of the same path.
func (t *Target) WithTopology(ctx context.Context, overlay fs.FS) (harness.Target, error) {
	files := fstest.MapFS{}
	for _, fsys := range []fs.FS{manifests.Default(), overlay} {
		err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := fs.ReadFile(fsys, p)
			if err != nil {
				return err
			}
			files[p] = &fstest.MapFile{Data: b}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("topology: %w", err)
		}
	}
	objs, policies, err := manifests.Load(files, ".")
	if err != nil {
		return nil, fmt.Errorf("topology:\n%w", err)
	}
	snap, err := manifests.Compile(objs, policies)
	if err != nil {
		return nil, fmt.Errorf("topology:\n%w", err)
	}
	opts := t.opts
	opts.Snapshot, opts.GatewayAddr, opts.StateDir = snap, "", ""
	return NewTarget(ctx, opts)
}

// Close stops the simulation.
func (t *Target) Close() error {
	t.env.Close()
	return nil
}

// Models lists the model names the topology's model servers answer to:
// base models, served names and LoRA adapters, sorted. On Ollama it is the
// one Ollama model the environment serves.
func (e *Env) Models() []string {
	if e.ollama != nil {
		return []string{e.ollama.model}
	}
	return harness.ModelNames(e.snap)
}
