package epp

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
)

// Scheduling errors; the ext_proc path answers both with a 503.
var (
	// ErrNoReadyEndpoints: the pool has no ready endpoint.
	ErrNoReadyEndpoints = errors.New("no ready endpoints")
	// ErrSubsetUnavailable: none of the endpoints the proxy hinted at is ready.
	ErrSubsetUnavailable = errors.New("no ready endpoint in the subset hinted by the proxy")
)

// PickRequest is what the scheduler knows of one request.
type PickRequest struct {
	// Model is the request's "model"; empty means a body-less request,
	// which goes to a random ready endpoint.
	Model string
	// Prompt is the text used for prefix affinity (see promptText).
	Prompt string
	// Objective is the x-gateway-inference-objective header, kept for logs.
	Objective string
	// RequestID is the x-request-id header, kept for logs.
	RequestID string
	// Subset, when not nil, restricts the candidates to these addresses
	// ("ip:port" or a bare IP); an empty non-nil subset allows none.
	Subset []string
}

// Pick makes the scheduling decision for r as the ext_proc path does and
// returns the endpoints best first: the pick and up to Config.Fallbacks
// runners-up. It records the prompt in the pick's prefix cache, but does not
// count the request as in flight (nothing would end it).
func (s *Server) Pick(r PickRequest) ([]string, error) {
	ranked, err := s.schedule(&r)
	if err != nil {
		return nil, err
	}
	return s.destinations(ranked), nil
}

func (s *Server) destinations(ranked []*endpointState) []string {
	out := make([]string, 0, min(len(ranked), 1+s.cfg.Fallbacks))
	for _, st := range ranked[:cap(out)] {
		out = append(out, st.addr)
	}
	return out
}

// candidate is one ready endpoint as the scheduler sees it for one request.
type candidate struct {
	st      *endpointState
	m       *Metrics // shared with the endpoint state: read only
	has     bool
	q       float64 // queue signal
	load    int64   // tie-break: fewer is better
	score   float64
	lora    float64
	matched int
}

// schedule ranks the candidates for r, best first, and records the prompt's
// prefix blocks against the best.
func (s *Server) schedule(r *PickRequest) ([]*endpointState, error) {
	cands := s.candidates(r.Subset)
	if len(cands) == 0 {
		if r.Subset != nil {
			return nil, ErrSubsetUnavailable
		}
		return nil, ErrNoReadyEndpoints
	}
	order := make([]*candidate, len(cands))
	for i := range cands {
		order[i] = &cands[i]
	}
	if r.Model == "" {
		s.shuffle(order)
		return states(order), nil
	}
	adapter := isAdapter(r.Model, cands)
	if adapter {
		order = loraFilter(r.Model, order)
	}
	blocks := prefixBlocks(r.Model, r.Prompt)
	s.score(r.Model, adapter, blocks, order)
	s.shuffle(order)
	slices.SortStableFunc(order, func(a, b *candidate) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		return cmp.Compare(a.load, b.load)
	})
	if len(blocks) > 0 {
		order[0].st.prefix.add(blocks)
	}
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		best := order[0]
		s.log.Debug("picked", "request_id", r.RequestID, "model", r.Model, "objective", r.Objective,
			"endpoint", best.st.addr, "score", best.score, "candidates", len(order), "adapter", adapter,
			"prefix_blocks", len(blocks), "prefix_matched", best.matched)
	}
	return states(order), nil
}

func states(cands []*candidate) []*endpointState {
	out := make([]*endpointState, len(cands))
	for i, c := range cands {
		out[i] = c.st
	}
	return out
}

// candidates are the ready endpoints, within the subset if there is one.
func (s *Server) candidates(subset []string) []candidate {
	now := s.clock.Now()
	all := s.states()
	out := make([]candidate, 0, len(all))
	for _, st := range all {
		if subset != nil && !inSubset(st.addr, subset) {
			continue
		}
		st.mu.Lock()
		if !st.readyLocked(now, s.cfg.StaleAfter) {
			st.mu.Unlock()
			continue
		}
		c := candidate{st: st, m: st.metrics, has: st.hasMetrics}
		pending := st.pending
		st.mu.Unlock()
		if c.has {
			c.q = float64(int64(c.m.Waiting) + pending)
			c.load = int64(c.m.Waiting+c.m.Running) + pending
		} else {
			c.q = float64(st.inflight.Load())
			c.load = int64(c.q)
		}
		out = append(out, c)
	}
	return out
}

// isAdapter: the model is a LoRA adapter when a candidate reports it among
// its adapters, or when the pool serves adapters (max_lora > 0) and the model
// is none of the base models the candidates name.
func isAdapter(model string, cands []candidate) bool {
	servesAdapters := false
	for _, c := range cands {
		if slices.Contains(c.m.RunningLoRA, model) || slices.Contains(c.m.WaitingLoRA, model) {
			return true
		}
		if c.m.MaxLoRA > 0 {
			servesAdapters = true
		}
	}
	if !servesAdapters {
		return false
	}
	for _, c := range cands {
		if slices.Contains(c.m.BaseModels, model) {
			return false
		}
	}
	return true
}

// loraFilter keeps the candidates that have the adapter running or waiting
// or a free adapter slot; none such: all of them.
func loraFilter(model string, cands []*candidate) []*candidate {
	keep := make([]*candidate, 0, len(cands))
	for _, c := range cands {
		if c.lora = loraScore(model, c.m); c.lora > 0 {
			keep = append(keep, c)
		}
	}
	if len(keep) == 0 {
		return cands
	}
	return keep
}

// loraScore follows GIE's lora-affinity-scorer: running 1, waiting 0.6, a
// free slot 0.8, else 0.
func loraScore(model string, m *Metrics) float64 {
	switch {
	case slices.Contains(m.RunningLoRA, model):
		return 1
	case slices.Contains(m.WaitingLoRA, model):
		return 0.6
	case m.MaxLoRA > 0 && len(m.RunningLoRA)+len(m.WaitingLoRA) < m.MaxLoRA:
		return 0.8
	}
	return 0
}

// score fills in each candidate's weighted score.
func (s *Server) score(model string, adapter bool, blocks []uint64, cands []*candidate) {
	w := s.cfg.Weights
	qmin, qmax := cands[0].q, cands[0].q
	var kvSum float64
	kvKnown := 0
	for _, c := range cands {
		qmin, qmax = min(qmin, c.q), max(qmax, c.q)
		if c.has {
			kvSum += 1 - c.m.KVCacheUsage
			kvKnown++
		}
	}
	kvUnknown := 1.0 // an endpoint without metrics gets the others' average
	if kvKnown > 0 {
		kvUnknown = kvSum / float64(kvKnown)
	}
	for _, c := range cands {
		queue := 1.0
		if qmax > qmin {
			queue = (qmax - c.q) / (qmax - qmin)
		}
		kv := kvUnknown
		if c.has {
			kv = 1 - c.m.KVCacheUsage
		}
		var prefix float64
		if len(blocks) > 0 && w.Prefix > 0 {
			c.matched = c.st.prefix.matched(blocks)
			prefix = float64(c.matched) / float64(len(blocks))
		}
		c.score = w.Queue*queue + w.KVCache*kv + w.Prefix*prefix
		if adapter {
			c.lora = loraScore(model, c.m)
			c.score += w.LoRA * c.lora
		}
	}
}

// shuffle puts the candidates in a seeded random order, so that a stable sort
// breaks ties at random.
func (s *Server) shuffle(cands []*candidate) {
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	s.rng.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
}
