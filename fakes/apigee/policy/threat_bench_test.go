package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/manifests"
)

// benchWords make up benign chat text for the benchmarks: ordinary prose
// about databases and web pages, close to what the patterns look for but
// not matching.
var benchWords = strings.Fields(`the a to of and in is for on with how do I can you please explain
	write select table join index query database user order page script style server request response
	token model answer question example markdown code sample list item value field name error cache
	latency stream chunk gateway policy product quota limit key secret rotate deploy cluster node pod`)

// chatRequest returns an OpenAI chat request of about size bytes: messages
// of at most 50,000 characters each (under the default StringValueLength).
func chatRequest(size int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	type msg struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	var msgs []msg
	total := 0
	for total < size {
		var b strings.Builder
		for b.Len() < min(50_000, size-total) {
			for range 12 {
				b.WriteString(benchWords[r.IntN(len(benchWords))])
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
	body, _ := json.Marshal(map[string]any{"model": "qwen2.5-0.5b-instruct", "messages": msgs})
	return body
}

// defaultThreatRequestFlow is the default topology's request-side threat
// policies, parsed from manifests/default.
func defaultThreatRequestFlow(tb testing.TB) []Policy {
	tb.Helper()
	names, err := fs.Glob(manifests.Default(), "policies/inference-gateway-apim/request/*.xml")
	if err != nil || len(names) == 0 {
		tb.Fatalf("no default request policies: %v", err)
	}
	var flow []Policy
	for _, n := range names {
		data, err := fs.ReadFile(manifests.Default(), n)
		if err != nil {
			tb.Fatal(err)
		}
		p, err := Parse(data, Env{})
		if err != nil {
			tb.Fatal(err)
		}
		flow = append(flow, p)
	}
	return flow
}

// BenchmarkThreatRequestFlow is the cost of the default topology's request
// threat protection (JSON limits, the injection patterns, GraphQL limits,
// the prompt guard) on a benign chat request of 4 KB and of 1 MB, with the
// p50 and p99 of one request.
func BenchmarkThreatRequestFlow(b *testing.B) {
	flow := defaultThreatRequestFlow(b)
	ctx := context.Background()
	for _, size := range []int{4 << 10, 1 << 20} {
		body := chatRequest(size)
		b.Run(fmt.Sprintf("%dKB", len(body)>>10), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			var lat []time.Duration
			for b.Loop() {
				m := &Message{Phase: Request, Method: "POST", Path: "/v1/chat/completions",
					Header: map[string][]string{"Content-Type": {"application/json"}}, Body: body, Vars: NewVars()}
				start := time.Now()
				for _, p := range flow {
					if f, err := p.Apply(ctx, m); f != nil || err != nil {
						b.Fatalf("%s: %v %v", p.Name(), f, err)
					}
				}
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// BenchmarkRedactStream is the cost of the default response policy
// (SanitizeModelResponse, pii-only, redact) on a streamed OpenAI answer of
// 4 KB of text sent one 4-byte token per event.
func BenchmarkRedactStream(b *testing.B) {
	p, err := Parse([]byte(`<SanitizeModelResponse name="R"><ModelArmor><TemplateName>pii-only</TemplateName></ModelArmor></SanitizeModelResponse>`), Env{})
	if err != nil {
		b.Fatal(err)
	}
	text := string(chatRequest(4 << 10))
	events := strings.SplitAfter(sseAnswer(tokens(text, 4)), "\n\n")
	b.ReportAllocs()
	for b.Loop() {
		m := &Message{Phase: Response, ResponseHeader: map[string][]string{"Content-Type": {"text/event-stream"}}, Vars: NewVars()}
		cf, _ := p.(ResponseFilter).NewResponseFilter(m)
		for _, ev := range events {
			if _, f, err := cf.Write([]byte(ev)); f != nil || err != nil {
				b.Fatal(f, err)
			}
		}
		if _, f, err := cf.Close(); f != nil || err != nil {
			b.Fatal(f, err)
		}
	}
}
