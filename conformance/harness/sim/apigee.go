package sim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/gatecheck/gatecheck/fakes/apigee"
	"github.com/gatecheck/gatecheck/fakes/apigee/mgmt"
	"github.com/gatecheck/gatecheck/fakes/apigee/policy"
	"github.com/gatecheck/gatecheck/fakes/apigee/state"
	"github.com/gatecheck/gatecheck/internal/apigeeapi"
	"github.com/gatecheck/gatecheck/manifests"
)

// The developer and app the sandbox provisions on its first start.
const (
	SandboxDeveloper = "sandbox@gatecheck.dev"
	SandboxApp       = "sandbox"
	// SandboxProduct is created when the topology defines no product: it
	// grants every operation, 1000 requests a minute.
	SandboxProduct = "gatecheck-sandbox"
	// StateFile is the name of the state file under Options.StateDir.
	StateFile = "state.db"
)

// apigeeStack is the fake Apigee of a simulation: one store, one management
// API, and one runtime (ext_proc server) per APIMExtensionPolicy.
type apigeeStack struct {
	store    state.Store
	traces   *apigee.Traces
	mgmt     *server
	mgmtURL  string
	admin    string
	org      string
	runtimes map[manifests.Ref]*runtimeProc // by the Service the gateway resolves

	key, secret string
}

type runtimeProc struct {
	ext     *manifests.Extension
	flow    *apigee.Flow
	addr    string
	rt      *apigee.Runtime
	done    chan struct{}
	stopped bool
}

func extensions(snap *manifests.Snapshot) []*manifests.Extension {
	var out []*manifests.Extension
	seen := map[manifests.Ref]bool{}
	for _, gw := range snap.Gateways {
		for _, ext := range gw.Extensions {
			if !seen[ext.Service] {
				seen[ext.Service] = true
				out = append(out, ext)
			}
		}
	}
	return out
}

func (e *Env) startApigee(ctx context.Context) error {
	exts := extensions(e.snap)
	if len(exts) == 0 {
		return nil
	}
	a := &apigeeStack{traces: apigee.NewTraces(e.opts.TraceRing), org: e.opts.Org, admin: e.opts.AdminToken, runtimes: map[manifests.Ref]*runtimeProc{}}
	e.apigee = a
	if a.org == "" {
		a.org = mgmt.DefaultOrg
	}
	if a.admin == "" {
		a.admin = randomToken()
	}
	if e.opts.StateDir != "" {
		if err := os.MkdirAll(e.opts.StateDir, 0o700); err != nil {
			return fmt.Errorf("--state-dir: %w", err)
		}
		st, err := state.OpenFile(filepath.Join(e.opts.StateDir, StateFile), state.WithClock(e.clock))
		if err != nil {
			return err
		}
		a.store = st
	} else {
		a.store = state.NewMemory(state.WithClock(e.clock))
	}
	if err := apigee.SyncProducts(ctx, a.store, e.snap.Products); err != nil {
		return err
	}

	api, err := mgmt.New(mgmt.Options{
		Store:          a.store,
		Org:            a.org,
		AdminToken:     a.admin,
		Clock:          e.clock,
		Logger:         e.log.With("component", "apigee-management"),
		OnClockAdvance: e.advanceClock,
		Emulator:       apigee.TracesHandler(a.traces, a.admin),
	})
	if err != nil {
		return fmt.Errorf("apigee management API: %w", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("apigee management API: %w", err)
	}
	a.mgmt = serve(lis, api.Handler())
	a.mgmtURL = "http://" + lis.Addr().String()

	env := policy.Env{Store: a.store, Clock: e.clock, Org: a.org, HTTPClient: &http.Client{Timeout: 5 * time.Second}}
	for _, ext := range exts {
		flow, err := apigee.BuildFlow(ext, env)
		if err != nil {
			return fmt.Errorf("APIMExtensionPolicy %s/%s: %w", ext.Namespace, ext.Name, err)
		}
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("apigee runtime: %w", err)
		}
		p := &runtimeProc{ext: ext, flow: flow, addr: lis.Addr().String()}
		a.runtimes[ext.Service] = p
		e.runRuntime(p, lis)
	}
	if e.opts.Provision {
		if err := e.provision(ctx); err != nil {
			return fmt.Errorf("provisioning the sandbox app: %w", err)
		}
	}
	return nil
}

func (e *Env) runRuntime(p *runtimeProc, lis net.Listener) {
	p.rt = apigee.New(apigee.Options{
		Flow:   p.flow,
		Clock:  e.clock,
		Logger: e.log.With("component", "apigee-runtime", "policy", p.ext.Name),
		Traces: e.apigee.traces,
	})
	p.done = make(chan struct{})
	p.stopped = false
	go func(rt *apigee.Runtime, done chan struct{}) {
		defer close(done)
		if err := rt.Serve(lis); err != nil {
			e.log.Error("apigee runtime stopped", "policy", p.ext.Name, "err", err)
		}
	}(p.rt, p.done)
	e.log.Info("apigee runtime up", "policy", p.ext.Name, "addr", p.addr)
}

func (e *Env) advanceClock(d time.Duration) error {
	c, ok := e.clock.(interface{ Advance(time.Duration) })
	if !ok {
		return errors.New("this environment's clock cannot be advanced")
	}
	c.Advance(d)
	return nil
}

func randomToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// provision makes sure the sandbox developer and app exist, through the
// management API as a user would, and remembers the app's key. With a state
// directory the second start finds them and reuses the key.
func (e *Env) provision(ctx context.Context) error {
	a := e.apigee
	c := e.Management()
	app, err := c.GetApp(ctx, SandboxDeveloper, SandboxApp)
	var apiErr *apigeeapi.APIError
	switch {
	case err == nil:
	case errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusNotFound:
		products, err := e.sandboxProducts(ctx)
		if err != nil {
			return err
		}
		if _, err := c.GetDeveloper(ctx, SandboxDeveloper); err != nil {
			if _, err := c.CreateDeveloper(ctx, apigeeapi.Developer{Email: SandboxDeveloper, FirstName: "Sandbox", LastName: "Developer", UserName: "sandbox"}); err != nil {
				return err
			}
		}
		app, err = c.CreateApp(ctx, SandboxDeveloper, apigeeapi.DeveloperApp{Name: SandboxApp, APIProducts: products})
		if err != nil {
			return err
		}
	default:
		return err
	}
	if len(app.Credentials) == 0 {
		return fmt.Errorf("app %s of %s has no credentials", SandboxApp, SandboxDeveloper)
	}
	a.key, a.secret = app.Credentials[0].ConsumerKey, app.Credentials[0].ConsumerSecret
	return nil
}

// sandboxProducts are the products the sandbox app gets: every product of the
// topology, or a generous catch-all product when it defines none.
func (e *Env) sandboxProducts(ctx context.Context) ([]string, error) {
	var names []string
	for _, p := range e.snap.Products {
		names = append(names, p.Name)
	}
	if len(names) > 0 {
		sort.Strings(names)
		return names, nil
	}
	var configs []apigeeapi.OperationConfig
	for _, ext := range extensions(e.snap) {
		configs = append(configs, apigeeapi.OperationConfig{
			APISource:  ext.Name,
			Operations: []apigeeapi.Operation{{Resource: "/**"}},
			Quota:      &apigeeapi.Quota{Limit: "1000", Interval: "1", TimeUnit: "minute"},
		})
	}
	_, err := e.Management().CreateProduct(ctx, apigeeapi.APIProduct{
		Name: SandboxProduct, DisplayName: "gatecheck sandbox", ApprovalType: "auto",
		OperationGroup: &apigeeapi.OperationGroup{OperationConfigs: configs},
	})
	var apiErr *apigeeapi.APIError
	if err != nil && !(errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusConflict) {
		return nil, err
	}
	return []string{SandboxProduct}, nil
}

// Management is a management API client for the environment's fake Apigee,
// authenticated as the admin. Nil when the topology has no APIMExtensionPolicy.
func (e *Env) Management() *apigeeapi.Client {
	if e.apigee == nil {
		return nil
	}
	return apigeeapi.NewClient(e.apigee.mgmtURL, e.apigee.org, e.apigee.admin, &http.Client{Timeout: 10 * time.Second})
}

// APIKey is the sandbox app's consumer key ("" unless Options.Provision).
func (e *Env) APIKey() string {
	if e.apigee == nil {
		return ""
	}
	return e.apigee.key
}

// Traces is the fake Apigee's decision-trace ring (nil without Apigee).
func (e *Env) Traces() *apigee.Traces {
	if e.apigee == nil {
		return nil
	}
	return e.apigee.traces
}

// Store is the fake Apigee's state (nil without Apigee).
func (e *Env) Store() state.Store {
	if e.apigee == nil {
		return nil
	}
	return e.apigee.store
}

// runtime finds the runtime of an APIMExtensionPolicy by name.
func (e *Env) runtime(policy string) (*runtimeProc, error) {
	if e.apigee == nil {
		return nil, errors.New("the topology has no APIMExtensionPolicy")
	}
	for _, p := range e.apigee.runtimes {
		if p.ext.Name == policy {
			return p, nil
		}
	}
	return nil, fmt.Errorf("no APIMExtensionPolicy named %s", policy)
}

// StopRuntime stops the Apigee runtime serving an APIMExtensionPolicy, as if
// it had crashed; the gateway then follows the policy's failOpen.
func (e *Env) StopRuntime(policy string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, err := e.runtime(policy)
	if err != nil || p.stopped {
		return err
	}
	p.rt.Stop()
	<-p.done
	p.stopped = true
	return nil
}

// StartRuntime starts a stopped runtime again on the same address.
func (e *Env) StartRuntime(policy string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, err := e.runtime(policy)
	if err != nil || !p.stopped {
		return err
	}
	lis, err := net.Listen("tcp", p.addr)
	if err != nil {
		return fmt.Errorf("apigee runtime %s: %w", policy, err)
	}
	e.runRuntime(p, lis)
	// As for the picker: the gateway reconnects now, not after its backoff.
	if e.gw != nil {
		e.gw.ResetBackoff()
	}
	return nil
}

// SetRuntimeDelay makes a runtime answer each message d late (0 restores
// it), to check the gateway's handling of a runtime slower than its timeout.
func (e *Env) SetRuntimeDelay(policy string, d time.Duration) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, err := e.runtime(policy)
	if err != nil {
		return err
	}
	p.rt.SetDelay(d)
	return nil
}

func (a *apigeeStack) close() {
	for _, p := range a.runtimes {
		if !p.stopped && p.rt != nil {
			p.rt.Stop()
			<-p.done
			p.stopped = true
		}
	}
	if a.mgmt != nil {
		shutdown(a.mgmt)
	}
	if a.store != nil {
		_ = a.store.Close()
	}
}
