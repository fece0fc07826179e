package policy

import (
	"context"
	"testing"
)

// BenchmarkVerifyAPIKeyQuota is the per-request cost of the operator's
// default request flow on the memory store: VerifyAPIKey (directory lookup,
// authorisation, tier rules, flow variables) and the product Quota.
func BenchmarkVerifyAPIKeyQuota(b *testing.B) {
	f := newFixture(b)
	f.seed(b, "bench@example.com", "bench-app", "bench-key", chatProduct("chat", "1000000000"))
	va := f.parse(b, vaXML)
	q := f.parse(b, `<Quota name="PQ" type="flexi"><Allow countRef="verifyapikey.VA.apiproduct.developer.quota.limit"/>
	  <Interval ref="verifyapikey.VA.apiproduct.developer.quota.interval">1</Interval>
	  <TimeUnit ref="verifyapikey.VA.apiproduct.developer.quota.timeunit">minute</TimeUnit></Quota>`)
	ctx := context.Background()
	body := `{"model":"qwen3","messages":[{"role":"user","content":"hello"}]}`
	b.ReportAllocs()
	for b.Loop() {
		m := f.msg("POST", "/v1/chat/completions", body, "x-api-key", "bench-key")
		if fault, err := va.Apply(ctx, m); fault != nil || err != nil {
			b.Fatal(fault, err)
		}
		if fault, err := q.Apply(ctx, m); fault != nil || err != nil {
			b.Fatal(fault, err)
		}
	}
}

// BenchmarkResolveTemplate is the cost of the default token-usage template.
func BenchmarkResolveTemplate(b *testing.B) {
	m := &Message{Phase: Response, ResponseBody: []byte(openAIJSON)}
	t, err := parseTemplate(defaultUsageSource)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if s, ok := t.eval(m); !ok || s != "18" {
			b.Fatal(s)
		}
	}
}
