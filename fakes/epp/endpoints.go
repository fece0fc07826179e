package epp

import (
	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// EngineLabel is the pod label that names the model server engine, and with
// it the metric names the picker reads.
const EngineLabel = "inference.networking.k8s.io/engine-type"

// Engines the picker knows the metrics of.
const (
	EngineVLLM   = "vllm"
	EngineSGLang = "sglang"
)

// Endpoint is one model server of the pool.
type Endpoint struct {
	// Address is "ip:port", what goes in x-gateway-destination-endpoint.
	Address string
	// MetricsURL is where its Prometheus metrics are; empty means
	// "http://"+Address+"/metrics".
	MetricsURL string
	// Labels are the pod's labels; EngineLabel selects the metric names
	// (EngineVLLM, the default, or EngineSGLang).
	Labels map[string]string
}

func (e Endpoint) engine() string {
	if strings.EqualFold(e.Labels[EngineLabel], EngineSGLang) {
		return EngineSGLang
	}
	return EngineVLLM
}

func (e Endpoint) metricsURL() string {
	if e.MetricsURL != "" {
		return e.MetricsURL
	}
	return "http://" + e.Address + "/metrics"
}

// EndpointStatus is what the picker knows about one endpoint.
type EndpointStatus struct {
	Endpoint Endpoint
	// Engine is EngineVLLM or EngineSGLang.
	Engine string
	// Ready says whether the endpoint can be picked.
	Ready bool
	// HasMetrics is false when the endpoint answers /metrics without
	// model-server metrics (Ollama): it is then scored by InFlight.
	HasMetrics bool
	// Metrics is the last good scrape (zero when HasMetrics is false).
	Metrics Metrics
	// LastGood is when the last good scrape finished (zero: never).
	LastGood time.Time
	// LastError is the error of the last scrape, empty when it succeeded.
	LastError string
	// InFlight counts the requests this picker sent there that have not
	// finished.
	InFlight int64
	// Pending counts the requests in flight that were sent after the last
	// good scrape: they are added to the queue signal.
	Pending int64
}

// endpointState is the picker's live view of one endpoint.
type endpointState struct {
	addr   string // ep.Address, immutable
	engine string
	url    string
	cancel context.CancelFunc // stops its scrape loop; nil when not scraping

	inflight atomic.Int64
	prefix   *prefixLRU

	mu         sync.Mutex
	ep         Endpoint
	metrics    *Metrics // replaced whole by each good scrape, never changed: shared read-only
	hasMetrics bool
	lastGood   time.Time
	lastOK     bool // the latest scrape attempt succeeded
	lastErr    string
	pending    int64  // in flight, assigned since the last good scrape
	gen        uint64 // bumped by each good scrape
	loggedNoMx bool
}

func newEndpointState(ep Endpoint) *endpointState {
	return &endpointState{addr: ep.Address, ep: ep, engine: ep.engine(), url: ep.metricsURL(), metrics: &Metrics{}, prefix: newPrefixLRU(prefixLRUCapacity)}
}

// ready: scraped well at least once, and either recently (by the clock) or
// the latest attempt still succeeded (so a clock jump alone changes nothing).
func (st *endpointState) ready(now time.Time, staleAfter time.Duration) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.readyLocked(now, staleAfter)
}

func (st *endpointState) readyLocked(now time.Time, staleAfter time.Duration) bool {
	if st.lastGood.IsZero() {
		return false
	}
	return st.lastOK || now.Sub(st.lastGood) <= staleAfter
}

// assign counts a request sent to the endpoint; the returned release undoes
// it and must be called once when the request ends.
func (st *endpointState) assign() (release func()) {
	st.inflight.Add(1)
	st.mu.Lock()
	st.pending++
	gen := st.gen
	st.mu.Unlock()
	return func() {
		st.inflight.Add(-1)
		st.mu.Lock()
		if st.gen == gen && st.pending > 0 {
			st.pending--
		}
		st.mu.Unlock()
	}
}

// SetEndpoints replaces the pool's endpoints. Endpoints kept (same address,
// metrics URL and engine) keep their metrics, prefix cache and in-flight
// counts; new ones are scraped at once when the server has been started;
// removed ones stop being scraped. Endpoints without an address are ignored,
// and of two with the same address the last wins.
func (s *Server) SetEndpoints(eps []Endpoint) {
	want := make(map[string]Endpoint, len(eps))
	for _, ep := range eps {
		if ep.Address == "" {
			s.log.Warn("endpoint without an address ignored")
			continue
		}
		if v := ep.Labels[EngineLabel]; v != "" && !strings.EqualFold(v, EngineVLLM) && !strings.EqualFold(v, EngineSGLang) {
			s.log.Warn("unknown engine type, reading vLLM metrics", "endpoint", ep.Address, "engine", v)
		}
		want[ep.Address] = ep
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	next := make(map[string]*endpointState, len(want))
	for addr, ep := range want {
		if old, ok := s.endpoints[addr]; ok && old.url == ep.metricsURL() && old.engine == ep.engine() {
			old.mu.Lock()
			old.ep = ep // labels may change; nothing the scraper reads
			old.mu.Unlock()
			next[addr] = old
			continue
		}
		next[addr] = newEndpointState(ep)
	}
	for addr, old := range s.endpoints {
		if next[addr] != old && old.cancel != nil {
			old.cancel()
			old.cancel = nil
		}
	}
	s.endpoints = next
	s.ordered = s.ordered[:0:0]
	for _, st := range next {
		s.ordered = append(s.ordered, st)
	}
	slices.SortFunc(s.ordered, func(a, b *endpointState) int { return strings.Compare(a.addr, b.addr) })
	if s.runCtx != nil && !s.closed {
		for _, st := range s.ordered {
			if st.cancel == nil {
				s.startScraping(st)
			}
		}
	}
}

// Snapshot returns what the picker knows about each endpoint, by address.
func (s *Server) Snapshot() []EndpointStatus {
	now := s.clock.Now()
	s.mu.RLock()
	states := slices.Clone(s.ordered)
	s.mu.RUnlock()
	out := make([]EndpointStatus, 0, len(states))
	for _, st := range states {
		st.mu.Lock()
		es := EndpointStatus{
			Endpoint:   st.ep,
			Engine:     st.engine,
			Ready:      st.readyLocked(now, s.cfg.StaleAfter),
			HasMetrics: st.hasMetrics,
			Metrics:    st.metrics.clone(),
			LastGood:   st.lastGood,
			LastError:  st.lastErr,
			Pending:    st.pending,
		}
		st.mu.Unlock()
		es.InFlight = st.inflight.Load()
		out = append(out, es)
	}
	return out
}

// states returns the current endpoints, sorted by address.
func (s *Server) states() []*endpointState {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.ordered
}

// inSubset reports whether addr ("ip:port") is named by the hint, either as
// ip:port or as the bare IP.
func inSubset(addr string, subset []string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	for _, h := range subset {
		if h == addr || h == host {
			return true
		}
	}
	return false
}
