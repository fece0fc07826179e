package epp_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatecheck/gatecheck/fakes/epp"
	"github.com/gatecheck/gatecheck/internal/clock"
)

// picks counts where n picks of r went.
func picks(t *testing.T, s *epp.Server, n int, r epp.PickRequest) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		dests, err := s.Pick(r)
		require.NoError(t, err)
		got[dests[0]]++
	}
	return got
}

func TestQueueLoadedEndpointAvoided(t *testing.T) {
	t.Parallel()
	p := newPool(t, epp.Config{Seed: 7}, vllm(0, 2, 0.2), vllm(10, 2, 0.2), vllm(0, 2, 0.2))
	got := picks(t, p.epp, 100, epp.PickRequest{Model: "base"})
	assert.LessOrEqual(t, got[addr(1)], 5, "the endpoint with 10 waiting is avoided: %v", got)
	assert.Greater(t, got[addr(0)], 20, "ties between the idle ones broken at random: %v", got)
	assert.Greater(t, got[addr(2)], 20, "ties between the idle ones broken at random: %v", got)
}

func TestSeedMakesPicksReproducible(t *testing.T) {
	t.Parallel()
	run := func() []string {
		p := newPool(t, epp.Config{Seed: 42}, vllm(0, 0, 0), vllm(0, 0, 0), vllm(0, 0, 0))
		var out []string
		for range 20 {
			d, err := p.epp.Pick(epp.PickRequest{Model: "base"})
			require.NoError(t, err)
			out = append(out, d[0])
		}
		return out
	}
	assert.Equal(t, run(), run())
}

func TestKVCacheScorer(t *testing.T) {
	t.Parallel()
	p := newPool(t, epp.Config{}, vllm(1, 1, 0.9), vllm(1, 1, 0.1))
	got := picks(t, p.epp, 50, epp.PickRequest{Model: "base"})
	assert.Equal(t, 50, got[addr(1)], "the emptier KV cache wins: %v", got)
}

func TestGPUCacheUsageFallback(t *testing.T) {
	t.Parallel()
	old := func(kv float64) string {
		return fmt.Sprintf("vllm:num_requests_waiting 0\nvllm:gpu_cache_usage_perc %g\n", kv)
	}
	p := newPool(t, epp.Config{}, old(0.1), old(0.95))
	got := picks(t, p.epp, 20, epp.PickRequest{Model: "base"})
	assert.Equal(t, 20, got[addr(0)], "%v", got)
}

func TestLoRAAffinity(t *testing.T) {
	t.Parallel()
	p := newPool(t, epp.Config{},
		vllm(0, 1, 0.3)+lora(1, "sql-lora", ""),            // has it, no free slot
		vllm(0, 1, 0.3)+lora(2, "", ""),                    // free slots
		vllm(0, 1, 0.3)+lora(1, "other-lora", ""),          // no slot
		vllm(0, 1, 0.3)+lora(2, "other-lora", "late-lora"), // has it waiting, no free slot
	)
	got := picks(t, p.epp, 30, epp.PickRequest{Model: "sql-lora"})
	assert.Equal(t, 30, got[addr(0)], "the endpoint running the adapter: %v", got)

	got = picks(t, p.epp, 30, epp.PickRequest{Model: "new-lora"})
	assert.Equal(t, 30, got[addr(1)], "only endpoint 2 has a free slot: %v", got)

	got = picks(t, p.epp, 30, epp.PickRequest{Model: "late-lora"})
	assert.Equal(t, 30, got[addr(1)], "a free slot (0.8) beats waiting (0.6): %v", got)

	got = picks(t, p.epp, 60, epp.PickRequest{Model: "base"})
	assert.Len(t, got, 4, "the base model is not an adapter: all endpoints equal: %v", got)
}

func TestPrefixAffinity(t *testing.T) {
	t.Parallel()
	p := newPool(t, epp.Config{Seed: 3}, vllm(0, 0, 0), vllm(0, 0, 0), vllm(0, 0, 0))
	prompt := strings.Repeat("You are a helpful assistant. Answer briefly. ", 40)
	got := picks(t, p.epp, 20, epp.PickRequest{Model: "base", Prompt: prompt})
	assert.Len(t, got, 1, "a repeated long prompt sticks to one endpoint: %v", got)

	// A prompt that shares the prefix and adds a question goes there too.
	var first string
	for k := range got {
		first = k
	}
	d, err := p.epp.Pick(epp.PickRequest{Model: "base", Prompt: prompt + "What is 2+2?"})
	require.NoError(t, err)
	assert.Equal(t, first, d[0])

	// Different prompts spread.
	spread := map[string]bool{}
	for i := range 30 {
		d, err := p.epp.Pick(epp.PickRequest{Model: "base", Prompt: fmt.Sprintf("%03d %s", i, prompt)})
		require.NoError(t, err)
		spread[d[0]] = true
	}
	assert.Len(t, spread, 3)
}

func TestPrefixAffinityThroughStreams(t *testing.T) {
	t.Parallel()
	p := newPool(t, epp.Config{}, vllm(0, 0, 0), vllm(0, 0, 0), vllm(0, 0, 0))
	content := strings.Repeat("Summarise the following document carefully. ", 30)
	body := `{"model":"base","messages":[{"role":"system","content":"` + content + `"},{"role":"user","content":"hi"}]}`
	first := p.route(t, body)
	for range 10 {
		assert.Equal(t, first, p.route(t, body))
	}
}

func TestBurstSpreadsBetweenScrapes(t *testing.T) {
	t.Parallel()
	// One scrape at start, then none during the test: only the picker's
	// own assignments tell the endpoints apart. Endpoint 0 runs fewer
	// requests, so the running tie-break alone would send it all three.
	p := newPool(t, epp.Config{ScrapeInterval: time.Hour}, vllm(0, 0, 0), vllm(0, 5, 0), vllm(0, 5, 0))
	var open []*exchange
	seen := map[string]bool{}
	for range 3 {
		x := p.open(t)
		x.headers(nil, false)
		x.body(`{"model":"base"}`, true)
		dest, _ := x.routed()
		x.streamedBody()
		seen[strings.Split(dest, ",")[0]] = true
		open = append(open, x)
	}
	assert.Len(t, seen, 3, "three requests in flight went to three endpoints")
	for _, st := range p.epp.Snapshot() {
		assert.EqualValues(t, 1, st.InFlight)
		assert.EqualValues(t, 1, st.Pending)
	}
	for _, x := range open {
		x.responseHeaders(false)
		x.recv()
		x.responseBody("", true)
		x.recv()
		x.close()
	}
	for _, st := range p.epp.Snapshot() {
		assert.Zero(t, st.InFlight)
		assert.Zero(t, st.Pending)
	}
}

func TestEndpointWithoutMetrics(t *testing.T) {
	t.Parallel()
	logs := &lockedBuffer{}
	p := newPool(t, epp.Config{Logger: newLogger(logs), ScrapeInterval: 10 * time.Millisecond}, "", "")
	p.metrics[addr(0)].set(http.StatusNotFound, "404 page not found\n") // Ollama
	p.metrics[addr(1)].set(http.StatusOK, "<html><body>hello</body></html>")
	// Empty text has no model metrics either: both were ready from the start.
	before := p.epp.Snapshot()
	require.Eventually(t, func() bool {
		now := p.epp.Snapshot()
		return now[0].LastGood.After(before[0].LastGood) && now[1].LastGood.After(before[1].LastGood)
	}, waitFor, 5*time.Millisecond)
	for _, st := range p.epp.Snapshot() {
		assert.True(t, st.Ready, st.Endpoint.Address)
		assert.False(t, st.HasMetrics, st.Endpoint.Address)
	}

	// Scored by in-flight count: four held requests split two and two.
	got := map[string]int{}
	for range 4 {
		x := p.open(t)
		x.headers(nil, false)
		x.body(`{"model":"llama3.2"}`, true)
		dest, _ := x.routed()
		x.streamedBody()
		got[strings.Split(dest, ",")[0]]++
	}
	assert.Equal(t, map[string]int{addr(0): 2, addr(1): 2}, got)

	assert.Equal(t, 2, strings.Count(logs.String(), "exposes no vLLM metrics"), "logged once per endpoint:\n%s", logs)
}

func TestStaleEndpointDropped(t *testing.T) {
	t.Parallel()
	p := newPool(t, epp.Config{StaleAfter: 300 * time.Millisecond, ScrapeInterval: 20 * time.Millisecond},
		vllm(0, 0, 0), vllm(3, 3, 0.5))
	p.metrics[addr(0)].Close() // the better endpoint's server stops
	require.Eventually(t, func() bool { return readyCount(p.epp) == 1 }, waitFor, 10*time.Millisecond)
	st := p.epp.Snapshot()[0]
	assert.False(t, st.Ready)
	assert.NotEmpty(t, st.LastError)
	got := picks(t, p.epp, 20, epp.PickRequest{Model: "base"})
	assert.Equal(t, map[string]int{addr(1): 20}, got)

	p.metrics[addr(1)].set(http.StatusInternalServerError, "")
	require.Eventually(t, func() bool { return !p.epp.Ready() }, waitFor, 10*time.Millisecond)
	x := p.open(t)
	x.headers(nil, false)
	x.body(`{"model":"base"}`, true)
	assert503(t, x.immediate(), "no ready endpoints")
	x.close()
	_, err := p.epp.Pick(epp.PickRequest{Model: "base"})
	assert.ErrorIs(t, err, epp.ErrNoReadyEndpoints)
}

func TestClockJumpDoesNotStaleHealthyEndpoints(t *testing.T) {
	t.Parallel()
	clk := clock.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	m := newMetricsServer(t, vllm(0, 0, 0))
	s := epp.New(epp.Config{Clock: clk})
	t.Cleanup(s.Close)
	s.SetEndpoints([]epp.Endpoint{{Address: addr(0), MetricsURL: m.URL}})
	ctx := context.Background()
	assert.False(t, s.Ready(), "not ready before the first scrape")
	s.ScrapeNow(ctx)
	require.True(t, s.Ready())

	clk.Advance(time.Hour) // `clock advance 1h` in a scenario
	assert.True(t, s.Ready(), "the last scrape succeeded: still ready")

	m.set(http.StatusInternalServerError, "")
	s.ScrapeNow(ctx)
	assert.False(t, s.Ready(), "failing and last good an hour ago: stale")

	m.set(http.StatusOK, vllm(0, 0, 0))
	s.ScrapeNow(ctx)
	assert.True(t, s.Ready())

	m.set(http.StatusInternalServerError, "")
	s.ScrapeNow(ctx)
	assert.True(t, s.Ready(), "one failed scrape within StaleAfter changes nothing")
}

func TestSGLangMetrics(t *testing.T) {
	t.Parallel()
	sg := func(queue int, usage float64) string {
		return fmt.Sprintf("# TYPE sglang:num_queue_reqs gauge\nsglang:num_queue_reqs{model_name=\"base\"} %d\n"+
			"sglang:num_running_reqs{model_name=\"base\"} 1\nsglang:token_usage{model_name=\"base\"} %g\n", queue, usage)
	}
	a, b := newMetricsServer(t, sg(7, 0.5)), newMetricsServer(t, sg(0, 0.5))
	s := epp.New(epp.Config{})
	t.Cleanup(s.Close)
	labels := map[string]string{epp.EngineLabel: epp.EngineSGLang}
	s.SetEndpoints([]epp.Endpoint{
		{Address: addr(0), MetricsURL: a.URL, Labels: labels},
		{Address: addr(1), MetricsURL: b.URL, Labels: labels},
	})
	s.ScrapeNow(context.Background())
	snap := s.Snapshot()
	require.Len(t, snap, 2)
	assert.Equal(t, epp.EngineSGLang, snap[0].Engine)
	assert.True(t, snap[0].HasMetrics)
	assert.Equal(t, 7, snap[0].Metrics.Waiting)
	assert.Equal(t, 1, snap[0].Metrics.Running)
	assert.InDelta(t, 0.5, snap[0].Metrics.KVCacheUsage, 1e-9)
	got := picks(t, s, 20, epp.PickRequest{Model: "base"})
	assert.Equal(t, map[string]int{addr(1): 20}, got)
}

func TestSetEndpoints(t *testing.T) {
	t.Parallel()
	p := newPool(t, epp.Config{ScrapeInterval: 10 * time.Millisecond}, vllm(1, 2, 0.3), vllm(0, 0, 0))
	eps := []epp.Endpoint{
		{Address: addr(0), MetricsURL: p.metrics[addr(0)].URL + "/metrics", Labels: map[string]string{"app": "x"}},
		{Address: ""}, // ignored
	}
	p.epp.SetEndpoints(eps)
	snap := p.epp.Snapshot()
	require.Len(t, snap, 1)
	assert.True(t, snap[0].Ready, "kept endpoints keep their state")
	assert.Equal(t, 1, snap[0].Metrics.Waiting)
	assert.Equal(t, "x", snap[0].Endpoint.Labels["app"])

	m := newMetricsServer(t, vllm(0, 0, 0))
	p.epp.SetEndpoints(append(eps, epp.Endpoint{Address: addr(5), MetricsURL: m.URL}))
	p.waitReady(t, 2) // a new endpoint is scraped as it comes
	assert.Equal(t, addr(5), p.epp.Snapshot()[1].Endpoint.Address)
}
