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
// a fake model server, through the gateway and the endpoint picker (two HTTP
// hops and an ext_proc stream more), and through the gateway with the Apigee
// runtime in front (another ext_proc stream: API key, quota, token count),
// and reports each path's p50 and p99. The ratios of the p50s are the price
// of the gateway and of the runtime.
func BenchmarkAddedLatency(b *testing.B) {
	bare := start(b, topology(b, without("apim.yaml")))
	// The sandbox product's quota (1000 a minute) would stop the benchmark.
	secured := start(b, topology(b, replace("apim.yaml", "limit: 1000", "limit: 1000000000")))
	body := `{"model":"qwen2.5-0.5b-instruct","max_tokens":8,"messages":[{"role":"user","content":"How fast is the gateway?"}]}`
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	run := func(b *testing.B, url, key string) {
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			start := time.Now()
			req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			if key != "" {
				req.Header.Set("x-api-key", key)
			}
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("status %d from %s", resp.StatusCode, url)
			}
			lat = append(lat, time.Since(start))
		}
		b.StopTimer()
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	}
	b.Run("direct", func(b *testing.B) {
		run(b, "http://"+bare.Endpoints(pool)[0].Address+"/v1/chat/completions", "")
	})
	b.Run("gateway+picker", func(b *testing.B) {
		run(b, bare.GatewayURL()+"/v1/chat/completions", "")
	})
	b.Run("gateway+apigee+picker", func(b *testing.B) {
		run(b, secured.GatewayURL()+"/v1/chat/completions", secured.APIKey())
	})
}
