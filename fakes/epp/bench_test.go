package epp_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/fakes/epp"
	"github.com/gatecheck/gatecheck/internal/clock"
)

// reportPercentiles reports the p50 and p99 of the samples in unit.
func reportPercentiles(b *testing.B, samples []time.Duration, unit time.Duration, name string) {
	if len(samples) == 0 {
		return
	}
	slices.Sort(samples)
	at := func(q float64) float64 {
		return float64(samples[int(q*float64(len(samples)-1))]) / float64(unit)
	}
	b.ReportMetric(at(0.50), "p50-"+name)
	b.ReportMetric(at(0.99), "p99-"+name)
}

// BenchmarkPick measures the scheduling decision (filters, four scorers,
// max-score picker, prefix recording) over n endpoints with varied load and
// prompts of about 1 KiB drawn from a set of 32.
func BenchmarkPick(b *testing.B) {
	for _, n := range []int{3, 50} {
		b.Run(fmt.Sprintf("endpoints=%d", n), func(b *testing.B) {
			ms := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				i, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/metrics/"))
				_, _ = fmt.Fprint(w, vllm(i%4, i%8, float64(i%10)/10)+lora(4, "lora-"+strconv.Itoa(i%5), ""))
			}))
			b.Cleanup(ms.Close)
			// A frozen clock: nothing goes stale while the benchmark runs.
			s := epp.New(epp.Config{Clock: clock.NewManual(time.Now())})
			b.Cleanup(s.Close)
			var eps []epp.Endpoint
			for i := range n {
				eps = append(eps, epp.Endpoint{Address: fmt.Sprintf("10.1.%d.%d:8000", i/250, i%250), MetricsURL: fmt.Sprintf("%s/metrics/%d", ms.URL, i)})
			}
			s.SetEndpoints(eps)
			s.ScrapeNow(context.Background())
			if got := len(s.Snapshot()); got != n || !s.Ready() {
				b.Fatalf("%d endpoints, ready %v", got, s.Ready())
			}
			var prompts []string
			for i := range 32 {
				prompts = append(prompts, fmt.Sprintf("system prompt %d: ", i%4)+strings.Repeat("lorem ipsum dolor sit amet ", 40))
			}
			models := []string{"base", "lora-1", "lora-3"}
			samples := make([]time.Duration, 0, 1<<16)
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				r := epp.PickRequest{Model: models[i%len(models)], Prompt: prompts[i%len(prompts)]}
				start := time.Now()
				if _, err := s.Pick(r); err != nil {
					b.Fatal(err)
				}
				if len(samples) < cap(samples) {
					samples = append(samples, time.Since(start))
				}
				i++
			}
			reportPercentiles(b, samples, time.Microsecond, "µs")
		})
	}
}

// BenchmarkStream measures one whole full-duplex request through the gRPC
// server over loopback: headers, body, the routed answer and the body back,
// response headers and body.
func BenchmarkStream(b *testing.B) {
	p := newPool(b, epp.Config{ScrapeInterval: time.Second}, vllm(0, 1, 0.1), vllm(1, 1, 0.2), vllm(0, 2, 0.3))
	body := `{"model":"base","messages":[{"role":"user","content":"` + strings.Repeat("hello ", 200) + `"}]}`
	samples := make([]time.Duration, 0, 1<<16)
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		p.route(b, body)
		if len(samples) < cap(samples) {
			samples = append(samples, time.Since(start))
		}
	}
	reportPercentiles(b, samples, time.Microsecond, "µs")
}
