package epp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// maxMetricsBytes bounds what is read of one /metrics answer.
const maxMetricsBytes = 8 << 20

// Metrics is what one scrape of a model server said, under the engine's
// metric names (vLLM's shown).
type Metrics struct {
	// Waiting is vllm:num_requests_waiting (sglang:num_queue_reqs), summed
	// over series.
	Waiting int
	// Running is vllm:num_requests_running (sglang:num_running_reqs).
	Running int
	// KVCacheUsage is vllm:kv_cache_usage_perc (or the older
	// vllm:gpu_cache_usage_perc; sglang:token_usage), a fraction in [0, 1].
	KVCacheUsage float64
	// MaxLoRA, RunningLoRA and WaitingLoRA come from the labels of
	// vllm:lora_requests_info (the series with the latest timestamp value).
	MaxLoRA                  int
	RunningLoRA, WaitingLoRA []string
	// BlockSize and NumGPUBlocks come from vllm:cache_config_info.
	BlockSize, NumGPUBlocks int
	// BaseModels are the model_name label values of the queue metrics: the
	// base models the server serves.
	BaseModels []string
}

func (m Metrics) clone() Metrics {
	m.RunningLoRA = slices.Clone(m.RunningLoRA)
	m.WaitingLoRA = slices.Clone(m.WaitingLoRA)
	m.BaseModels = slices.Clone(m.BaseModels)
	return m
}

// metricNames are the names one engine uses.
type metricNames struct {
	waiting, running string
	kv               []string // first present wins
	lora, cache      string
}

var engineMetrics = map[string]metricNames{
	EngineVLLM: {
		waiting: "vllm:num_requests_waiting",
		running: "vllm:num_requests_running",
		kv:      []string{"vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"},
		lora:    "vllm:lora_requests_info",
		cache:   "vllm:cache_config_info",
	},
	EngineSGLang: {
		waiting: "sglang:num_queue_reqs",
		running: "sglang:num_running_reqs",
		kv:      []string{"sglang:token_usage"},
	},
}

// errNoModelMetrics: the text parsed (or not) but holds none of the engine's
// queue or cache metrics.
var errNoModelMetrics = errors.New("no model server metrics")

// parseMetrics reads Prometheus text exposition for the engine's metrics.
// It returns errNoModelMetrics when none of the queue and cache metrics is
// there. A parse error after some families were read is not fatal: what was
// read before the bad line is used.
func parseMetrics(engine string, r io.Reader) (Metrics, error) {
	names, ok := engineMetrics[engine]
	if !ok {
		names = engineMetrics[EngineVLLM]
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, perr := p.TextToMetricFamilies(r)
	var m Metrics
	found := false
	if f := fams[names.waiting]; f != nil {
		m.Waiting = clampCount(sumValues(f))
		m.BaseModels = appendLabelValues(m.BaseModels, f, "model_name")
		found = true
	}
	if f := fams[names.running]; f != nil {
		m.Running = clampCount(sumValues(f))
		m.BaseModels = appendLabelValues(m.BaseModels, f, "model_name")
		found = true
	}
	for _, n := range names.kv {
		if f := fams[n]; f != nil {
			m.KVCacheUsage = clampFraction(maxValue(f))
			found = true
			break
		}
	}
	if !found {
		if perr != nil {
			return Metrics{}, fmt.Errorf("%w: %v", errNoModelMetrics, perr)
		}
		return Metrics{}, errNoModelMetrics
	}
	if f := fams[names.lora]; names.lora != "" && f != nil {
		if s := latestSeries(f); s != nil {
			m.MaxLoRA = atoiLabel(s, "max_lora")
			m.RunningLoRA = splitList(label(s, "running_lora_adapters"))
			m.WaitingLoRA = splitList(label(s, "waiting_lora_adapters"))
		}
	}
	if f := fams[names.cache]; names.cache != "" && f != nil && len(f.GetMetric()) > 0 {
		s := f.GetMetric()[0]
		m.BlockSize = atoiLabel(s, "block_size")
		m.NumGPUBlocks = atoiLabel(s, "num_gpu_blocks")
	}
	slices.Sort(m.BaseModels)
	m.BaseModels = slices.Compact(m.BaseModels)
	return m, nil
}

func value(m *dto.Metric) float64 {
	var v float64
	switch {
	case m.GetGauge() != nil:
		v = m.GetGauge().GetValue()
	case m.GetCounter() != nil:
		v = m.GetCounter().GetValue()
	case m.GetUntyped() != nil:
		v = m.GetUntyped().GetValue()
	}
	if math.IsNaN(v) {
		return 0
	}
	return v
}

func sumValues(f *dto.MetricFamily) float64 {
	var sum float64
	for _, m := range f.GetMetric() {
		sum += value(m)
	}
	return sum
}

func maxValue(f *dto.MetricFamily) float64 {
	best := math.Inf(-1)
	for _, m := range f.GetMetric() {
		best = max(best, value(m))
	}
	return best
}

// latestSeries is the series with the highest value: vLLM sets
// lora_requests_info to the time of the update, one series per label set.
func latestSeries(f *dto.MetricFamily) *dto.Metric {
	var best *dto.Metric
	for _, m := range f.GetMetric() {
		if best == nil || value(m) > value(best) {
			best = m
		}
	}
	return best
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func appendLabelValues(dst []string, f *dto.MetricFamily, name string) []string {
	for _, m := range f.GetMetric() {
		if v := label(m, name); v != "" {
			dst = append(dst, v)
		}
	}
	return dst
}

func atoiLabel(m *dto.Metric, name string) int {
	n, err := strconv.Atoi(strings.TrimSpace(label(m, name)))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

func splitList(s string) []string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

func clampCount(v float64) int {
	switch {
	case math.IsNaN(v) || v <= 0:
		return 0
	case v > 1e9:
		return 1e9
	}
	return int(v)
}

func clampFraction(v float64) float64 {
	switch {
	case math.IsNaN(v) || v <= 0:
		return 0
	case v >= 1:
		return 1
	}
	return v
}

// startScraping starts st's scrape loop under the run context; s.mu is held.
func (s *Server) startScraping(st *endpointState) {
	ctx, cancel := context.WithCancel(s.runCtx)
	st.cancel = cancel
	go s.scrapeLoop(ctx, st)
}

func (s *Server) scrapeLoop(ctx context.Context, st *endpointState) {
	t := time.NewTicker(s.cfg.ScrapeInterval)
	defer t.Stop()
	for {
		s.scrapeOnce(ctx, st)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ScrapeNow scrapes every endpoint once, concurrently, and returns when all
// have answered or failed. It works whether or not Start was called; tests and
// the simulation use it to start from known metrics.
func (s *Server) ScrapeNow(ctx context.Context) {
	var wg sync.WaitGroup
	for _, st := range s.states() {
		wg.Go(func() { s.scrapeOnce(ctx, st) })
	}
	wg.Wait()
}

// scrapeOnce fetches and records one scrape of st.
func (s *Server) scrapeOnce(ctx context.Context, st *endpointState) {
	sctx, cancel := context.WithTimeout(ctx, s.cfg.StaleAfter)
	defer cancel()
	m, has, err := s.fetch(sctx, st)
	if ctx.Err() != nil {
		return // removed or closed: record nothing
	}
	now := s.clock.Now()
	st.mu.Lock()
	wasOK := st.lastOK
	logNoMx := false
	if err != nil {
		st.lastOK = false
		st.lastErr = err.Error()
	} else {
		st.lastOK = true
		st.lastErr = ""
		st.lastGood = now
		st.hasMetrics = has
		st.metrics = &m
		st.pending = 0 // the scrape now shows them
		st.gen++
		if !has && !st.loggedNoMx {
			st.loggedNoMx = true
			logNoMx = true
		}
	}
	st.mu.Unlock()
	switch {
	case err != nil && wasOK:
		s.log.Warn("scrape failed", "endpoint", st.addr, "url", st.url, "err", err)
	case err != nil:
		s.log.Debug("scrape failed", "endpoint", st.addr, "err", err)
	case logNoMx:
		s.log.Info("endpoint exposes no vLLM metrics; scoring it by in-flight requests", "endpoint", st.addr, "url", st.url)
	}
}

// fetch GETs the metrics. A transport error or a 5xx is a failed scrape; a
// 4xx or an answer without the engine's metrics means reachable without
// metrics (has false, err nil).
func (s *Server) fetch(ctx context.Context, st *endpointState) (m Metrics, has bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, st.url, nil)
	if err != nil {
		return Metrics{}, false, fmt.Errorf("metrics request: %w", err)
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4;q=1,*/*;q=0.1")
	resp, err := s.client.Do(req)
	if err != nil {
		return Metrics{}, false, fmt.Errorf("scrape %s: %w", st.url, err)
	}
	defer func() {
		_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
		_ = resp.Body.Close()
	}()
	switch {
	case resp.StatusCode >= 500, resp.StatusCode < 200, resp.StatusCode >= 300 && resp.StatusCode < 400:
		return Metrics{}, false, fmt.Errorf("scrape %s: status %d", st.url, resp.StatusCode)
	case resp.StatusCode >= 400:
		return Metrics{}, false, nil
	}
	m, err = parseMetrics(st.engine, io.LimitReader(resp.Body, maxMetricsBytes))
	if err != nil { // errNoModelMetrics: reachable, but not a model server we can read
		return Metrics{}, false, nil
	}
	return m, true, nil
}
