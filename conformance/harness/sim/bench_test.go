package sim

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
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
//
// The threat sub-benchmarks send a benign chat request of 4 KB and of 1 MB
// through the runtime without and with the default topology's threat
// protection (manifests/default/policies): the difference is its cost per
// request. For them the model servers take a 1M-token context and the
// APIMExtensionPolicy timeout is 10 s, so neither the model nor the
// gateway refuses the 1 MB request.
func BenchmarkAddedLatency(b *testing.B) {
	bare := start(b, topology(b, without("apim.yaml"), withoutPolicies()))
	// The sandbox product's quota (1000 a minute) would stop the benchmark.
	// The default topology's threat policies are left out here (they have
	// sub-benchmarks of their own below).
	secured := start(b, topology(b, replace("apim.yaml", "limit: 1000", "limit: 1000000000"), withoutPolicies()))
	body := `{"model":"qwen2.5-0.5b-instruct","max_tokens":8,"messages":[{"role":"user","content":"How fast is the gateway?"}]}`
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	run := func(b *testing.B, url, key string) { runBody(b, client, url, key, body) }
	b.Run("direct", func(b *testing.B) {
		run(b, "http://"+bare.Endpoints(pool)[0].Address+"/v1/chat/completions", "")
	})
	b.Run("gateway+picker", func(b *testing.B) {
		run(b, bare.GatewayURL()+"/v1/chat/completions", "")
	})
	b.Run("gateway+apigee+picker", func(b *testing.B) {
		run(b, secured.GatewayURL()+"/v1/chat/completions", secured.APIKey())
	})

	big := []edit{replace("apim.yaml", "limit: 1000", "limit: 1000000000"), replace("apim.yaml", "timeout: 1000ms", "timeout: 10s"),
		withArgs("--max-model-len", "1000000")}
	plain := start(b, topology(b, append(big, withoutPolicies())...))
	threat := start(b, topology(b, big...))
	for _, size := range []int{4 << 10, 1 << 20} {
		body := benchChatRequest(size)
		name := fmt.Sprintf("%dKB", size>>10)
		b.Run(name+"/gateway+apigee+picker", func(b *testing.B) {
			runBody(b, client, plain.GatewayURL()+"/v1/chat/completions", plain.APIKey(), body)
		})
		b.Run(name+"/gateway+apigee+threat+picker", func(b *testing.B) {
			runBody(b, client, threat.GatewayURL()+"/v1/chat/completions", threat.APIKey(), body)
		})
	}
}

// benchChatRequest is a benign chat request of about size bytes: prose
// about databases and web pages (close to what the injection patterns look
// for, never matching), in messages of at most 50,000 characters (the
// default JSON limits allow 100,000 a string).
func benchChatRequest(size int) string {
	words := strings.Fields(`the a to of and in is for on with how do I can you please explain write select table join
		index query database user order page script style server request response token model answer question example
		markdown code sample list item value field name error cache latency stream chunk gateway policy product quota`)
	r := rand.New(rand.NewPCG(1, 2))
	type msg struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	var msgs []msg
	for total := 0; total < size; {
		var b strings.Builder
		for b.Len() < min(50_000, size-total) {
			for range 12 {
				b.WriteString(words[r.IntN(len(words))])
				b.WriteByte(' ')
			}
			b.WriteString("then. ")
		}
		role := "user"
		if len(msgs)%2 == 1 {
			role = "assistant"
		}
		msgs = append(msgs, msg{Role: role, Content: b.String()})
		total += b.Len() + 40
	}
	body, _ := json.Marshal(map[string]any{"model": "qwen2.5-0.5b-instruct", "max_tokens": 8, "messages": msgs})
	return string(body)
}

// runBody sends body b.N times and reports the p50 and p99 latency.
func runBody(b *testing.B, client *http.Client, url, key, body string) {
	b.SetBytes(int64(len(body)))
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
