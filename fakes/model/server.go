package model

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Server is a fake model server. Its Handler serves the OpenAI and Ollama
// APIs, /graphql, /health and /metrics; it is safe for concurrent use.
type Server struct {
	cfg     Config
	words   []string
	names   map[string]string // accepted model name → LoRA adapter ("" for the base model)
	sched   *scheduler
	metrics *metrics
	handler http.Handler
	started time.Time

	closeOnce sync.Once
	closed    chan struct{}

	failMu   sync.Mutex
	failRand *rand.Rand // failure injection rolls, seeded
}

// New validates cfg, fills its defaults and returns a ready server.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults(os.Hostname)
	s := &Server{
		cfg:      cfg,
		words:    strings.Fields(vocabulary),
		names:    map[string]string{cfg.Model: ""},
		started:  cfg.Clock.Now(),
		closed:   make(chan struct{}),
		failRand: rand.New(rand.NewPCG(uint64(cfg.Seed), 0x6661696c)), // "fail"
	}
	for _, n := range cfg.ServedModelNames {
		s.names[n] = ""
	}
	for _, n := range cfg.LoRAModules {
		s.names[n] = n
	}
	s.sched = newScheduler(cfg.MaxNumSeqs, cfg.MaxLoRAs, cfg.Clock.Now)
	m, err := newMetrics(cfg.ServedModelNames[0], cfg.MaxLoRAs, cfg.KVCacheBlocks, s.sched)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	s.handler = s.routes()
	return s, nil
}

// Config returns the server's configuration with its defaults filled in.
func (s *Server) Config() Config {
	c := s.cfg
	c.ServedModelNames = append([]string(nil), c.ServedModelNames...)
	c.LoRAModules = append([]string(nil), c.LoRAModules...)
	return c
}

// Handler returns the server's HTTP handler: every endpoint on one mux, each
// response carrying the x-inference-pod, -port and -namespace headers.
func (s *Server) Handler() http.Handler { return s.handler }

// Close fails waiting requests at once, cuts running ones short and makes
// new requests (and /health) answer 503. It is safe to call more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.sched.close()
	})
}

func (s *Server) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", s.handleChatCompletions)
	mux.HandleFunc("POST /v1/completions", s.handleCompletions)
	mux.HandleFunc("GET /v1/models", s.handleModels)
	mux.HandleFunc("POST /api/chat", s.handleOllamaChat)
	mux.HandleFunc("POST /api/generate", s.handleOllamaGenerate)
	mux.HandleFunc("GET /api/tags", s.handleOllamaTags)
	mux.HandleFunc("POST /api/show", s.handleOllamaShow)
	mux.HandleFunc("GET /api/version", s.handleOllamaVersion)
	mux.HandleFunc("GET /{$}", s.handleRoot) // GET patterns also match HEAD
	// GET and POST; other methods get 405 in GraphQL's shape.
	mux.HandleFunc("/graphql", s.handleGraphQL)
	mux.HandleFunc("GET /health", s.handleHealth)
	mux.HandleFunc("GET /ready", s.handleHealth)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
	}))
	pod, port, ns := s.cfg.PodName, strconv.Itoa(s.cfg.Port), s.cfg.PodNamespace
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("x-inference-pod", pod)
		h.Set("x-inference-port", port)
		h.Set("x-inference-namespace", ns)
		mux.ServeHTTP(w, r)
	})
}

func (s *Server) handleRoot(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("Ollama is running"))
}

func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if s.isClosed() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("shutting down\n"))
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

// resolve maps a requested model name to its LoRA adapter ("" for the base
// model or one of its served names).
func (s *Server) resolve(name string) (lora string, ok bool) {
	lora, ok = s.names[name]
	return lora, ok
}

// job is one completion to run: what decides the text and what the
// scheduler needs.
type job struct {
	gen          genInput
	lora         string
	promptTokens int
}

// timing is when a run passed its milestones.
type timing struct {
	arrived, granted, first, last time.Time
}

// queued is the time spent waiting for a running slot.
func (t timing) queued() time.Duration { return atLeastNS(t.granted.Sub(t.arrived)) }

// prefill is the time from getting a slot to the first token.
func (t timing) prefill() time.Duration { return atLeastNS(t.first.Sub(t.granted)) }

// decode is the time from the first token to the last.
func (t timing) decode() time.Duration { return atLeastNS(t.last.Sub(t.first)) }

// total is the time from arrival to the last token.
func (t timing) total() time.Duration { return atLeastNS(t.last.Sub(t.arrived)) }

// atLeastNS keeps durations positive so Ollama's omitempty fields always show.
func atLeastNS(d time.Duration) time.Duration { return max(d, time.Nanosecond) }

// plan decides the answer of j.
func (s *Server) plan(j job) (answer, *rand.Rand) {
	rng := newRequestRand(j.gen.seed, j.gen.model, j.gen.prompt)
	return plan(j.gen, rng, s.words), rng
}

// run waits for a running slot, then releases the planned tokens through emit
// as the latency model says: TimeToFirstToken before the first,
// InterTokenLatency between the others, both with seeded gaussian jitter. The
// slot is held until the last token and given back at once when ctx ends.
func (s *Server) run(ctx context.Context, j job, ans answer, rng *rand.Rand, arrived time.Time, emit func(string) error) (timing, error) {
	tm := timing{arrived: arrived}
	t, err := s.sched.acquire(ctx, j.lora, j.promptTokens)
	if err != nil {
		return tm, err
	}
	defer s.sched.release(t)
	tm.granted = time.Now()
	if err := s.sleep(ctx, jitter(rng, s.cfg.TimeToFirstToken, s.cfg.TimeToFirstTokenStdDev)); err != nil {
		return tm, err
	}
	var gaps []time.Duration
	prev := tm.granted
	for i, tok := range ans.tokens {
		if i > 0 {
			if err := s.sleep(ctx, jitter(rng, s.cfg.InterTokenLatency, s.cfg.InterTokenLatencyStdDev)); err != nil {
				return tm, err
			}
		}
		if err := emit(tok); err != nil {
			return tm, fmt.Errorf("send token: %w", err)
		}
		s.sched.grow(t, 1)
		now := time.Now()
		if i == 0 {
			tm.first = now
		} else {
			gaps = append(gaps, now.Sub(prev))
		}
		prev = now
	}
	tm.last = time.Now()
	if len(ans.tokens) == 0 {
		tm.first = tm.last
	}
	s.metrics.finished(j.promptTokens, len(ans.tokens), ans.finish, tm.last.Sub(arrived), tm.first.Sub(arrived), gaps)
	return tm, nil
}

// sleep waits d, or less when ctx ends or the server closes.
func (s *Server) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closed:
		return errClosed
	}
}

// jitter returns mean plus gaussian noise of the given standard deviation,
// never negative.
func jitter(rng *rand.Rand, mean, stddev time.Duration) time.Duration {
	if stddev <= 0 {
		return mean
	}
	return max(0, mean+time.Duration(rng.NormFloat64()*float64(stddev)))
}

// budget is how many completion tokens a request may have: the context left
// after the prompt, and at most maxTokens when that is positive.
func (s *Server) budget(promptTokens, maxTokens int) int {
	left := s.cfg.MaxModelLen - promptTokens
	if maxTokens > 0 {
		return min(left, maxTokens)
	}
	return left
}

// seedFor returns the request's own seed, or the server's.
func (s *Server) seedFor(requested *int64) int64 {
	if requested != nil {
		return *requested
	}
	return s.cfg.Seed
}

// runError says how a failed run should be answered before any byte of the
// response is sent; ok is false when the client is gone.
func runError(err error) (status int, msg string, ok bool) {
	switch {
	case errors.Is(err, errClosed):
		return http.StatusServiceUnavailable, err.Error(), true
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return 0, "", false
	default:
		return http.StatusInternalServerError, err.Error(), true
	}
}
