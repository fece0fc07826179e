package gateway_test

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/fakes/gateway"
	"github.com/gatecheck/gatecheck/manifests"
)

const benchRequest = `{"model":"m","messages":[{"role":"user","content":"Say hello in five words."}],"max_tokens":16}`

// benchUpstream answers every request with the same small, non-streamed chat
// completion.
func benchUpstream(b *testing.B) string {
	answer := `{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there, how are you?"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19}}`
	return startHandler(b, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, answer)
	})
}

// measure runs post b.N times and reports the latency percentiles.
func measure(b *testing.B, url string) {
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	b.Cleanup(c.CloseIdleConnections)
	post := func() {
		resp, err := c.Post(url, "application/json", strings.NewReader(benchRequest))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	post() // warm the connections
	lat := make([]time.Duration, 0, 4096)
	for b.Loop() {
		start := time.Now()
		post()
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) / 1e3
	}
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}

// BenchmarkDirect is the baseline: the client straight to the upstream.
func BenchmarkDirect(b *testing.B) {
	measure(b, "http://"+benchUpstream(b)+"/v1/chat/completions")
}

// BenchmarkThroughPicker is the same request through the gateway and an
// in-test endpoint picker over gRPC (full-duplex request and response bodies).
func BenchmarkThroughPicker(b *testing.B) {
	up := benchUpstream(b)
	pk := &picker{dest: up, viaMetadata: true}
	res := newResolver().pool("p", up).service("epp", pk.start(b))
	snap := topology([]*manifests.RouteRule{prefixRule("/", poolBackend("p"))}, nil, pool("p", "epp", manifests.FailClose))
	_, url := startGateway(b, snap, res, gateway.Options{})
	measure(b, url+"/v1/chat/completions")
}
