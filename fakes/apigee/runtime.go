package apigee

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/gatecheck/gatecheck/fakes/apigee/policy"
	"github.com/gatecheck/gatecheck/internal/clock"
	"github.com/gatecheck/gatecheck/internal/extproc"
)

// Flow is the policies one APIMExtensionPolicy runs: Request on the way in,
// Response once the answer has been seen.
type Flow struct {
	// Name is the APIMExtensionPolicy's name; products' operation configs name
	// it as their apiSource.
	Name     string
	Request  []policy.Policy
	Response []policy.Policy
}

// Options configure a Runtime.
type Options struct {
	// Flow is the flow the runtime serves.
	Flow *Flow
	// Clock is read for every step; nil means the wall clock.
	Clock clock.Clock
	// Logger receives debug logs (credentials redacted); nil discards them.
	Logger *slog.Logger
	// Traces keeps the decision traces; nil means a ring of 256.
	Traces *Traces
	// IDs makes trace ids; nil means 16 random hex digits.
	IDs func() string
	// MaxResponseBuffer bounds how much of a response body is kept for the
	// response policies (token counting); default 8 MiB. Bodies stream through
	// whatever their size.
	MaxResponseBuffer int
}

// Runtime is the fake Apigee runtime's data plane: an ext_proc server.
type Runtime struct {
	extprocv3.UnimplementedExternalProcessorServer
	flow   *Flow
	clock  clock.Clock
	log    *slog.Logger
	traces *Traces
	ids    func() string
	maxBuf int

	grpc  *grpc.Server
	delay atomic.Int64 // nanoseconds added before each answer; see SetDelay
}

// SetDelay makes the runtime wait d before answering each message: failure
// injection, so a conformance run can check what the gateway does when the
// runtime is slower than the APIMExtensionPolicy's timeout. Zero turns it off.
func (r *Runtime) SetDelay(d time.Duration) { r.delay.Store(int64(d)) }

// New returns a runtime serving opts.Flow.
func New(opts Options) *Runtime {
	r := &Runtime{flow: opts.Flow, clock: opts.Clock, log: opts.Logger, traces: opts.Traces, ids: opts.IDs, maxBuf: opts.MaxResponseBuffer}
	if r.flow == nil {
		r.flow = &Flow{}
	}
	if r.clock == nil {
		r.clock = clock.Real{}
	}
	if r.log == nil {
		r.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if r.traces == nil {
		r.traces = NewTraces(0)
	}
	if r.ids == nil {
		r.ids = randomID
	}
	if r.maxBuf <= 0 {
		r.maxBuf = 8 << 20
	}
	// The server exists from the start, so Stop needs no lock and works
	// whether or not Serve has begun.
	r.grpc = grpc.NewServer()
	r.Register(r.grpc)
	return r
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Traces is the runtime's trace ring.
func (r *Runtime) Traces() *Traces { return r.traces }

// Register adds the ext_proc service and gRPC health to g.
func (r *Runtime) Register(g *grpc.Server) {
	extprocv3.RegisterExternalProcessorServer(g, r)
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(extprocv3.ExternalProcessor_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(g, hs)
}

// Serve serves ext_proc (and gRPC health) on lis until Stop. A runtime
// serves once: after Stop, Serve closes lis and returns at once.
func (r *Runtime) Serve(lis net.Listener) error {
	return r.grpc.Serve(lis)
}

// Stop stops the runtime, ending open streams; safe before, during and
// after Serve, and more than once.
func (r *Runtime) Stop() { r.grpc.Stop() }

// Process serves one ext_proc stream: one HTTP request.
func (r *Runtime) Process(stream extprocv3.ExternalProcessor_ProcessServer) error {
	return extproc.Serve(stream, delayed{r, r.newStream()})
}

// delayed applies the injected delay before each answer.
type delayed struct {
	r *Runtime
	p extproc.Processor
}

func (d delayed) Process(ctx context.Context, req *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error) {
	if n := d.r.delay.Load(); n > 0 {
		t := time.NewTimer(time.Duration(n))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
	return d.p.Process(ctx, req)
}

// run runs policies in order on m, recording each step. It stops at the first
// fault or error.
func (r *Runtime) run(ctx context.Context, phase string, ps []policy.Policy, m *policy.Message, tr *Trace) (*policy.Fault, error) {
	for _, p := range ps {
		before := snapshotVars(m.Vars)
		m.Now = r.clock.Now()
		start := r.clock.Now()
		fault, err := p.Apply(ctx, m)
		step := Step{Phase: phase, Policy: p.Name(), Kind: p.Kind(), Outcome: "ok", Duration: r.clock.Now().Sub(start), Vars: changedVars(before, m.Vars, secrets(m))}
		switch {
		case err != nil:
			step.Outcome = "error: " + err.Error()
		case fault != nil:
			step.Outcome = "fault " + fault.Code
		}
		if err == nil && fault == nil && m.Answer != nil {
			step.Outcome = "answered " + strconv.Itoa(m.Answer.Status)
		}
		tr.Steps = append(tr.Steps, step)
		if err != nil || fault != nil || m.Answer != nil {
			return fault, err
		}
	}
	return nil, nil
}

func snapshotVars(v *policy.Vars) map[string]string {
	out := map[string]string{}
	if v == nil {
		return out
	}
	for _, n := range v.Names() {
		val, _ := v.Get(n)
		out[n] = val
	}
	return out
}

// changedVars are the variables a step set or changed, with credentials
// redacted: whole values of credential variables, and any credential the
// request presented wherever it appears inside another value (a quota
// identifier built from the key, say).
func changedVars(before map[string]string, v *policy.Vars, secrets []string) map[string]string {
	after := snapshotVars(v)
	var out map[string]string
	for n, val := range after {
		if old, ok := before[n]; ok && old == val {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		if secretVar(n) {
			val = Redact(val)
		}
		for _, sec := range secrets {
			val = strings.ReplaceAll(val, sec, Redact(sec))
		}
		out[n] = val
	}
	return out
}

// secrets are the credentials a request presented: API keys and tokens in
// the usual headers and query parameters, and in the header a verifying
// policy read. Short values are skipped: they cannot be told from ordinary
// text and are no credential worth hiding.
func secrets(m *policy.Message) []string {
	var out []string
	add := func(v string) {
		v = strings.TrimSpace(v)
		if len(v) >= 8 && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	for _, h := range []string{"x-api-key", "apikey", "x-apikey"} {
		add(m.Header.Get(h))
	}
	if auth := m.Header.Get("authorization"); auth != "" {
		_, tok, found := strings.Cut(auth, " ")
		if !found {
			tok = auth
		}
		add(tok)
	}
	if h, ok := m.Vars.Get(policy.VarCredentialHeader); ok && h != "" {
		add(m.Header.Get(h))
	}
	if q, err := url.ParseQuery(m.RawQuery); err == nil {
		for _, k := range []string{"apikey", "api_key", "access_token", "key"} {
			add(q.Get(k))
		}
	}
	return out
}
