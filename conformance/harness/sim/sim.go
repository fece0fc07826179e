package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/gatecheck/gatecheck/fakes/epp"
	"github.com/gatecheck/gatecheck/fakes/gateway"
	"github.com/gatecheck/gatecheck/fakes/model"
	"github.com/gatecheck/gatecheck/internal/clock"
	"github.com/gatecheck/gatecheck/manifests"
)

// Options configure Start. The zero value of every field is usable.
type Options struct {
	// Snapshot is the topology; nil means the embedded default topology.
	Snapshot *manifests.Snapshot
	// GatewayAddr is where the first Gateway's first listener listens;
	// empty means a free loopback port. The sandbox passes 127.0.0.1:8080.
	GatewayAddr string
	// Logger receives the components' logs; nil discards them.
	Logger *slog.Logger
	// Clock is the clock every component reads; nil means a fresh
	// clock.Shifted, so the environment's time can be advanced.
	Clock clock.Clock
	// Seed makes the picker's tie-breaks and the gateway's weighted choices
	// reproducible; 0 means 1.
	Seed int64
	// ReadyTimeout bounds the wait for every component to answer; zero means 10s.
	ReadyTimeout time.Duration

	// The fake Apigee, started when a Gateway has an APIMExtensionPolicy.

	// StateDir keeps the fake Apigee's state (developers, apps, keys,
	// products, counters) in StateDir/state.db across restarts; empty means
	// in memory.
	StateDir string
	// AdminToken is the management API's bearer token; empty means a random one.
	AdminToken string
	// Org is the Apigee organisation; empty means "gatecheck".
	Org string
	// Provision creates the sandbox developer and app (or finds them in the
	// state) so APIKey has a ready key.
	Provision bool
	// TraceRing is how many decision traces are kept; zero means 256.
	TraceRing int

	// Ollama, when set, runs the topology's model servers on real Ollama
	// servers instead of fake ones (see OllamaOptions).
	Ollama *OllamaOptions
}

// Env is a running simulation.
type Env struct {
	opts  Options
	snap  *manifests.Snapshot
	log   *slog.Logger
	clock clock.Clock

	gw       *gateway.Gateway
	gwServer []*server
	gwURLs   map[manifests.Ref]string

	mu       sync.Mutex
	replicas map[manifests.Ref][]*replica // by workload
	pickers  map[manifests.Ref]*picker    // by pool
	apigee   *apigeeStack                 // nil without APIMExtensionPolicy
	ollama   *ollamaBackend               // nil unless Options.Ollama
}

type server struct {
	srv *http.Server
	lis net.Listener
}

type replica struct {
	name   string
	addr   string
	labels map[string]string
	model  *model.Server // nil for an Ollama server, which is not ours to run
	server *server
}

type picker struct {
	pool    *manifests.Pool
	addr    string // fixed across restarts, so the gateway's view stays valid
	epp     *epp.Server
	cancel  context.CancelFunc
	done    chan struct{}
	stopped bool
}

// Start brings the topology up and returns once every component answers (or
// the ready timeout passes, which is an error). The caller must Close the Env.
func Start(ctx context.Context, opts Options) (_ *Env, err error) {
	if opts.Snapshot == nil {
		snap, err := manifests.LoadDefault()
		if err != nil {
			return nil, fmt.Errorf("default topology: %w", err)
		}
		opts.Snapshot = snap
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Clock == nil {
		opts.Clock = &clock.Shifted{}
	}
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 10 * time.Second
	}
	e := &Env{
		opts:     opts,
		snap:     opts.Snapshot,
		log:      opts.Logger,
		clock:    opts.Clock,
		gwURLs:   map[manifests.Ref]string{},
		replicas: map[manifests.Ref][]*replica{},
		pickers:  map[manifests.Ref]*picker{},
	}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	// Ollama first: its checks (and a pull) take the longest and fail most.
	if opts.Ollama != nil {
		if err := e.startOllama(ctx); err != nil {
			return nil, err
		}
	}
	if err := e.startApigee(ctx); err != nil {
		return nil, err
	}
	if opts.Ollama == nil {
		if err := e.startModels(); err != nil {
			return nil, err
		}
	}
	if err := e.startPickers(); err != nil {
		return nil, err
	}
	if err := e.startGateways(); err != nil {
		return nil, err
	}
	if err := e.waitReady(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *Env) startModels() error {
	for _, w := range modelWorkloads(e.snap) {
		cfg, err := model.ParseFlags(w.ComponentArgs())
		if err != nil {
			return fmt.Errorf("deployment %s: container args: %w", w.Ref, err)
		}
		for i := 0; i < w.Replicas; i++ {
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return fmt.Errorf("deployment %s: %w", w.Ref, err)
			}
			c := cfg
			c.Port = lis.Addr().(*net.TCPAddr).Port
			c.PodName = fmt.Sprintf("%s-%d", w.Ref.Name, i)
			c.PodNamespace = w.Ref.Namespace
			if cfg.Seed != 0 {
				c.Seed = cfg.Seed + int64(i)
			}
			m, err := model.New(c)
			if err != nil {
				lis.Close()
				return fmt.Errorf("deployment %s: %w", w.Ref, err)
			}
			r := &replica{name: c.PodName, addr: lis.Addr().String(), labels: w.PodLabels, model: m, server: serve(lis, m.Handler())}
			e.replicas[w.Ref] = append(e.replicas[w.Ref], r)
			e.log.Info("model server up", "pod", r.name, "addr", r.addr, "model", c.Model)
		}
	}
	return nil
}

func (e *Env) startPickers() error {
	for _, ref := range sortedPools(e.snap) {
		pool := e.snap.Pools[ref]
		if pool.Picker == nil {
			continue
		}
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("pool %s: picker: %w", ref, err)
		}
		p := &picker{pool: pool, addr: lis.Addr().String()}
		e.pickers[ref] = p
		e.runPicker(p, lis)
	}
	return nil
}

func (e *Env) runPicker(p *picker, lis net.Listener) {
	ctx, cancel := context.WithCancel(context.Background())
	s := epp.New(epp.Config{
		Pool:   p.pool.Ref.Name,
		Seed:   e.opts.Seed,
		Logger: e.log.With("component", "epp", "pool", p.pool.Ref.Name),
		Clock:  e.clock,
	})
	s.SetEndpoints(e.poolEndpoints(p.pool))
	s.Start(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Serve(lis); err != nil {
			e.log.Error("picker stopped", "pool", p.pool.Ref.Name, "err", err)
		}
	}()
	p.epp, p.cancel, p.done, p.stopped = s, cancel, done, false
	e.log.Info("endpoint picker up", "pool", p.pool.Ref.Name, "addr", p.addr)
}

func (e *Env) poolEndpoints(pool *manifests.Pool) []epp.Endpoint {
	var eps []epp.Endpoint
	for _, w := range pool.Workloads {
		for _, r := range e.replicas[w.Ref] {
			eps = append(eps, epp.Endpoint{Address: r.addr, Labels: r.labels})
		}
	}
	return eps
}

func (e *Env) startGateways() error {
	gw, err := gateway.New(e.snap, gateway.Options{
		Resolver: resolver{e},
		Logger:   e.log.With("component", "gateway"),
		Clock:    e.clock,
		Seed:     e.opts.Seed,
	})
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	e.gw = gw
	for i, g := range e.snap.Gateways {
		addr := "127.0.0.1:0"
		if i == 0 && e.opts.GatewayAddr != "" {
			addr = e.opts.GatewayAddr
		}
		lis, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("gateway %s: listen on %s: %w", g.Ref, addr, err)
		}
		// The gateway's own server and listener: its limits and the
		// request smuggling checks apply on the wire.
		s := &server{srv: gw.Server(g.Ref), lis: gw.Listener(lis, g.Ref)}
		go func() { _ = s.srv.Serve(s.lis) }()
		e.gwServer = append(e.gwServer, s)
		e.gwURLs[g.Ref] = "http://" + lis.Addr().String()
		e.log.Info("gateway up", "gateway", g.Ref.String(), "url", e.gwURLs[g.Ref])
	}
	return nil
}

func serve(lis net.Listener, h http.Handler) *server {
	s := &server{srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, lis: lis}
	go func() { _ = s.srv.Serve(lis) }()
	return s
}

func (e *Env) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, e.opts.ReadyTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		pending := e.pending(ctx, client)
		if pending == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("simulation not ready after %s: %s does not answer", e.opts.ReadyTimeout, pending)
		case <-tick.C:
		}
	}
}

// pending names a component that does not answer yet, or "".
func (e *Env) pending(ctx context.Context, client *http.Client) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, rs := range e.replicas {
		for _, r := range rs {
			health := "http://" + r.addr + "/health"
			if r.model == nil {
				health = "http://" + r.addr + "/api/version" // Ollama has no /health
			}
			if !answers(ctx, client, health) {
				return "model server " + r.name
			}
		}
	}
	for ref, p := range e.pickers {
		if len(e.poolEndpoints(p.pool)) > 0 && !p.epp.Ready() {
			return "endpoint picker of pool " + ref.String()
		}
	}
	return ""
}

func answers(ctx context.Context, client *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// GatewayURL is the base URL of the first Gateway.
func (e *Env) GatewayURL() string {
	if len(e.snap.Gateways) == 0 {
		return ""
	}
	return e.gwURLs[e.snap.Gateways[0].Ref]
}

// GatewayURLs are the base URLs of every Gateway.
func (e *Env) GatewayURLs() map[manifests.Ref]string { return e.gwURLs }

// Snapshot is the topology the environment runs.
func (e *Env) Snapshot() *manifests.Snapshot { return e.snap }

// Clock is the environment's clock.
func (e *Env) Clock() clock.Clock { return e.clock }

// Endpoint is one running model server replica.
type Endpoint struct {
	Pod     string
	Address string
}

// Endpoints lists the model server replicas of a pool, in a stable order.
func (e *Env) Endpoints(pool manifests.Ref) []Endpoint {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, ok := e.snap.Pools[pool]
	if !ok {
		return nil
	}
	var out []Endpoint
	for _, w := range p.Workloads {
		for _, r := range e.replicas[w.Ref] {
			out = append(out, Endpoint{Pod: r.name, Address: r.addr})
		}
	}
	return out
}

// StopPicker stops a pool's endpoint picker, as if its pod had died; the
// gateway then follows the pool's failureMode.
func (e *Env) StopPicker(pool manifests.Ref) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, ok := e.pickers[pool]
	if !ok {
		return fmt.Errorf("pool %s has no endpoint picker", pool)
	}
	if p.stopped {
		return nil
	}
	e.stopPicker(p)
	return nil
}

func (e *Env) stopPicker(p *picker) {
	p.cancel()
	p.epp.Close()
	<-p.done
	p.stopped = true
}

// StartPicker starts a stopped picker again on the same address and waits
// until it is ready.
func (e *Env) StartPicker(ctx context.Context, pool manifests.Ref) error {
	e.mu.Lock()
	p, ok := e.pickers[pool]
	if !ok {
		e.mu.Unlock()
		return fmt.Errorf("pool %s has no endpoint picker", pool)
	}
	if !p.stopped {
		e.mu.Unlock()
		return nil
	}
	lis, err := net.Listen("tcp", p.addr)
	if err != nil {
		e.mu.Unlock()
		return fmt.Errorf("pool %s: picker: %w", pool, err)
	}
	e.runPicker(p, lis)
	e.mu.Unlock()
	if err := e.waitReady(ctx); err != nil {
		return err
	}
	// The gateway's connection to the picker is in reconnect backoff: make it
	// try now, so the next request finds the picker back.
	e.gw.ResetBackoff()
	return nil
}

// Close stops every component.
func (e *Env) Close() {
	for _, s := range e.gwServer {
		shutdown(s)
	}
	if e.gw != nil {
		e.gw.Close()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range e.pickers {
		if !p.stopped && p.epp != nil {
			e.stopPicker(p)
		}
	}
	for _, rs := range e.replicas {
		for _, r := range rs {
			if r.model != nil {
				r.model.Close()
				shutdown(r.server)
			}
		}
	}
	if e.apigee != nil {
		e.apigee.close()
	}
}

func shutdown(s *server) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
	}
}

// Ready is what the ready file holds: where everything is.
type Ready struct {
	Gateway  string            `json:"gateway"`
	Gateways map[string]string `json:"gateways"`
	Pickers  map[string]string `json:"pickers"`
	Models   map[string]string `json:"models"`
	// The fake Apigee, when the topology has one: the management API's base
	// URL, its bearer token, the organisation and the sandbox app's key.
	Admin      string `json:"admin,omitempty"`
	AdminToken string `json:"adminToken,omitempty"`
	Org        string `json:"org,omitempty"`
	APIKey     string `json:"apiKey,omitempty"`
	// Runtimes are the ext_proc addresses of the Apigee runtimes, by policy.
	Runtimes map[string]string `json:"runtimes,omitempty"`
}

// Ready describes the running environment.
func (e *Env) Ready() Ready {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := Ready{Gateway: e.GatewayURL(), Gateways: map[string]string{}, Pickers: map[string]string{}, Models: map[string]string{}}
	for ref, u := range e.gwURLs {
		r.Gateways[ref.String()] = u
	}
	for ref, p := range e.pickers {
		r.Pickers[ref.String()] = p.addr
	}
	for _, rs := range e.replicas {
		for _, rep := range rs {
			r.Models[rep.name] = "http://" + rep.addr
		}
	}
	if a := e.apigee; a != nil {
		r.Admin, r.AdminToken, r.Org, r.APIKey = a.mgmtURL, a.admin, a.org, a.key
		r.Runtimes = map[string]string{}
		for _, p := range a.runtimes {
			r.Runtimes[p.ext.Name] = p.addr
		}
	}
	return r
}

// WriteReadyFile writes v as JSON to path atomically (a temporary file
// renamed into place), so a script polling for the file never reads half of it.
func WriteReadyFile(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".ready-*")
	if err != nil {
		return fmt.Errorf("ready file: %w", err)
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("ready file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("ready file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("ready file: %w", err)
	}
	return nil
}

func sortedPools(s *manifests.Snapshot) []manifests.Ref {
	refs := make([]manifests.Ref, 0, len(s.Pools))
	for r := range s.Pools {
		refs = append(refs, r)
	}
	sort.Slice(refs, func(i, j int) bool { return refs[i].String() < refs[j].String() })
	return refs
}

// resolver answers the gateway's address questions from the running
// components: a Service resolves to the replicas of the Deployments it
// selects (or to the picker of the pool that names it); a pool to its replicas.
type resolver struct{ e *Env }

func (r resolver) ServiceAddrs(svc manifests.Ref, port int32) ([]string, error) {
	e := r.e
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range e.pickers {
		if p.pool.Picker.Service == svc {
			return []string{p.addr}, nil
		}
	}
	if e.apigee != nil {
		if p, ok := e.apigee.runtimes[svc]; ok {
			return []string{p.addr}, nil
		}
	}
	s, ok := e.snap.Services[svc]
	if !ok {
		return nil, fmt.Errorf("service %s does not exist", svc)
	}
	var addrs []string
	for _, w := range s.Workloads {
		for _, rep := range e.replicas[w.Ref] {
			addrs = append(addrs, rep.addr)
		}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("service %s port %s has no running endpoints", svc, strconv.Itoa(int(port)))
	}
	return addrs, nil
}

func (r resolver) PoolEndpoints(pool manifests.Ref) ([]string, error) {
	eps := r.e.Endpoints(pool)
	if len(eps) == 0 {
		return nil, errors.New("pool " + pool.String() + " has no running endpoints")
	}
	out := make([]string, len(eps))
	for i, ep := range eps {
		out[i] = ep.Address
	}
	return out, nil
}

// PickerView is what a pool's endpoint picker currently knows of each
// endpoint (its last scrape and its own in-flight counts), so tests can wait
// until the picker has seen a change instead of sleeping. Nil when the pool
// has no running picker.
func (e *Env) PickerView(pool manifests.Ref) []epp.EndpointStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, ok := e.pickers[pool]
	if !ok || p.stopped {
		return nil
	}
	return p.epp.Snapshot()
}
