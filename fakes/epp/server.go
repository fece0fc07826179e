package epp

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/gatecheck/gatecheck/internal/clock"
	"github.com/gatecheck/gatecheck/internal/extproc"
)

// Defaults for the zero values of Config.
const (
	DefaultScrapeInterval = 50 * time.Millisecond
	DefaultStaleAfter     = 2 * time.Second
	DefaultFallbacks      = 2
)

// DefaultWeights are the scorer weights used when Config.Weights is zero:
// GIE's default profile (queue 2, kv-cache 2, prefix 3) plus LoRA affinity 1,
// which only counts for requests that name a LoRA adapter.
var DefaultWeights = Weights{Queue: 2, KVCache: 2, Prefix: 3, LoRA: 1}

// ExtProcServiceName is the gRPC service name of the ext_proc server, also
// reported by the gRPC health service.
const ExtProcServiceName = "envoy.service.ext_proc.v3.ExternalProcessor"

// Config configures a Server. The zero value of every field is usable.
type Config struct {
	// Pool is the InferencePool's name, for logs and error messages.
	Pool string
	// ScrapeInterval is how often each endpoint's metrics are scraped;
	// zero means DefaultScrapeInterval.
	ScrapeInterval time.Duration
	// StaleAfter is how old an endpoint's last good scrape may be before it
	// is no longer ready (see the package comment); zero means
	// DefaultStaleAfter.
	StaleAfter time.Duration
	// Weights weigh the scorers; the zero value means DefaultWeights.
	// Negative weights count as zero.
	Weights Weights
	// Fallbacks is how many runners-up follow the pick in
	// x-gateway-destination-endpoint; zero means DefaultFallbacks, a
	// negative value means none.
	Fallbacks int
	// Seed seeds the tie-break randomness. Zero is a seed like any other:
	// servers with the same seed make the same choices from the same inputs.
	Seed int64
	// Logger receives the picker's logs; nil discards them.
	Logger *slog.Logger
	// Clock tells the time for staleness; nil means clock.Real{}.
	Clock clock.Clock
	// HTTPClient scrapes the metrics; nil means a client with a one-second
	// timeout. Each scrape is also bounded by StaleAfter.
	HTTPClient *http.Client
}

// Weights weigh the scorers in the max-score picker.
type Weights struct {
	Queue, KVCache, Prefix, LoRA float64
}

// Server is the endpoint picker. Create it with New, give it endpoints with
// SetEndpoints, start scraping with Start, and serve ext_proc with Register or
// Serve. Its methods are safe for concurrent use.
type Server struct {
	extprocv3.UnimplementedExternalProcessorServer

	cfg       Config
	log       *slog.Logger
	clock     clock.Clock
	client    *http.Client
	ownClient bool
	health    *health.Server

	rngMu sync.Mutex
	rng   *rand.Rand

	mu        sync.RWMutex
	endpoints map[string]*endpointState // by address
	ordered   []*endpointState          // sorted by address
	runCtx    context.Context           // nil until Start
	stop      context.CancelFunc
	closed    bool
	grpcs     []*grpc.Server // created by Serve
}

// New returns a picker with cfg's zero values filled in. It neither scrapes
// nor serves until told to.
func New(cfg Config) *Server {
	if cfg.ScrapeInterval <= 0 {
		cfg.ScrapeInterval = DefaultScrapeInterval
	}
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = DefaultStaleAfter
	}
	if cfg.Weights == (Weights{}) {
		cfg.Weights = DefaultWeights
	}
	cfg.Weights.Queue = max(cfg.Weights.Queue, 0)
	cfg.Weights.KVCache = max(cfg.Weights.KVCache, 0)
	cfg.Weights.Prefix = max(cfg.Weights.Prefix, 0)
	cfg.Weights.LoRA = max(cfg.Weights.LoRA, 0)
	if cfg.Fallbacks == 0 {
		cfg.Fallbacks = DefaultFallbacks
	}
	if cfg.Fallbacks < 0 {
		cfg.Fallbacks = 0
	}
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		clock:     cfg.Clock,
		client:    cfg.HTTPClient,
		health:    health.NewServer(),
		rng:       rand.New(rand.NewPCG(uint64(cfg.Seed), 0x9e3779b97f4a7c15)),
		endpoints: map[string]*endpointState{},
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s.log = s.log.With("component", "epp", "pool", cfg.Pool)
	if s.clock == nil {
		s.clock = clock.Real{}
	}
	if s.client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 4
		s.client = &http.Client{Timeout: time.Second, Transport: tr}
		s.ownClient = true
	}
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.health.SetServingStatus(ExtProcServiceName, healthpb.HealthCheckResponse_SERVING)
	return s
}

// Start starts scraping every endpoint, now and every ScrapeInterval, until
// ctx is done or Close is called. Endpoints set later are scraped as they
// come. A second call does nothing. Once scraping has stopped, endpoints keep
// the state of their last scrape.
func (s *Server) Start(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.runCtx != nil || s.closed {
		return
	}
	s.runCtx, s.stop = context.WithCancel(ctx)
	for _, st := range s.ordered {
		s.startScraping(st)
	}
}

// Register registers the ext_proc ExternalProcessor service and the gRPC
// health service (SERVING for "" and ExtProcServiceName) on g.
func (s *Server) Register(g *grpc.Server) {
	extprocv3.RegisterExternalProcessorServer(g, s)
	healthpb.RegisterHealthServer(g, s.health)
}

// Serve serves ext_proc and health on lis with a new gRPC server until Close
// is called, and then returns nil. Other errors come from grpc.Server.Serve.
func (s *Server) Serve(lis net.Listener) error {
	g := grpc.NewServer()
	s.Register(g)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = lis.Close()
		return nil
	}
	s.grpcs = append(s.grpcs, g)
	s.mu.Unlock()
	err := g.Serve(lis)
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return nil
	}
	return err
}

// Close stops scraping, stops the gRPC servers Serve created (ending their
// streams) and reports NOT_SERVING on the health service. It is idempotent.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	if s.stop != nil {
		s.stop()
	}
	grpcs := s.grpcs
	s.grpcs = nil
	s.mu.Unlock()
	s.health.Shutdown()
	for _, g := range grpcs {
		g.Stop()
	}
	if s.ownClient {
		s.client.CloseIdleConnections()
	}
}

// Ready reports whether at least one endpoint is ready.
func (s *Server) Ready() bool {
	now := s.clock.Now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, st := range s.ordered {
		if st.ready(now, s.cfg.StaleAfter) {
			return true
		}
	}
	return false
}

// Process serves one ext_proc stream, that is one HTTP request. It
// implements extprocv3.ExternalProcessorServer.
func (s *Server) Process(stream extprocv3.ExternalProcessor_ProcessServer) error {
	p := newRequestProcessor(s)
	defer p.finish()
	return extproc.Serve(stream, p)
}
