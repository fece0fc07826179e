package sim

import (
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"
)

// BenchmarkAddedLatency sends the same non-streamed chat request straight to
// a fake model server and through the gateway and the endpoint picker (two
// HTTP hops and an ext_proc stream more), and reports each path's p50 and p99.
// The ratio of the two p50s is the price of the gateway.
func BenchmarkAddedLatency(b *testing.B) {
	env := start(b, nil)
	body := `{"model":"qwen2.5-0.5b-instruct","max_tokens":8,"messages":[{"role":"user","content":"How fast is the gateway?"}]}`
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	run := func(b *testing.B, url string) {
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			start := time.Now()
			resp, err := client.Post(url, "application/json", strings.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("status %d", resp.StatusCode)
			}
			lat = append(lat, time.Since(start))
		}
		b.StopTimer()
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	}
	b.Run("direct", func(b *testing.B) {
		run(b, "http://"+env.Endpoints(pool)[0].Address+"/v1/chat/completions")
	})
	b.Run("gateway+picker", func(b *testing.B) {
		run(b, env.GatewayURL()+"/v1/chat/completions")
	})
}
