package policy

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	openAIJSON = `{"id":"c1","object":"chat.completion","model":"qwen3","choices":[{"index":0,"message":{"role":"assistant","content":"hi"}}],
"usage":{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18}}`
	openAISSE = "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"h\"}}],\"usage\":null}\n\n" +
		"data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"i\"}}]}\n\n" +
		"data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":2,\"total_tokens\":13}}\n\n" +
		"data: [DONE]\n\n"
	openAISSENoUsage = "data: {\"choices\":[{\"delta\":{\"content\":\"h\"}}]}\n\ndata: [DONE]\n\n"
	ollamaJSON       = `{"model":"qwen3","message":{"role":"assistant","content":"hi"},"done":true,"prompt_eval_count":26,"eval_count":290}`
	ollamaNDJSON     = `{"model":"qwen3","message":{"content":"h"},"done":false}
{"model":"qwen3","message":{"content":"i"},"done":false}
{"model":"qwen3","message":{"content":""},"done":true,"done_reason":"stop","prompt_eval_count":9,"eval_count":2}
`
)

func TestTokenUsage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body, contentType string
		prompt, completion, tot int64
		ok                      bool
	}{
		{"openai json", openAIJSON, "application/json", 11, 7, 18, true},
		{"openai json, no content type", openAIJSON, "", 11, 7, 18, true},
		{"openai sse with usage chunk", openAISSE, "text/event-stream; charset=utf-8", 11, 2, 13, true},
		{"openai sse, shape only", openAISSE, "", 11, 2, 13, true},
		{"openai sse without usage", openAISSENoUsage, "text/event-stream", 0, 0, 0, false},
		{"ollama json", ollamaJSON, "application/json", 26, 290, 316, true},
		{"ollama ndjson", ollamaNDJSON, "application/x-ndjson", 9, 2, 11, true},
		{"ollama ndjson, shape only", ollamaNDJSON, "", 9, 2, 11, true},
		{"responses api", `{"usage":{"input_tokens":3,"output_tokens":4}}`, "application/json", 3, 4, 7, true},
		{"usage without total", `{"usage":{"prompt_tokens":3,"completion_tokens":4}}`, "", 3, 4, 7, true},
		{"no usage", `{"choices":[]}`, "application/json", 0, 0, 0, false},
		{"empty", "", "application/json", 0, 0, 0, false},
		{"garbage", "<html>", "text/html", 0, 0, 0, false},
	} {
		p, c, tot, ok := TokenUsage([]byte(tc.body), tc.contentType)
		require.Equal(t, tc.ok, ok, tc.name)
		require.Equal(t, []int64{tc.prompt, tc.completion, tc.tot}, []int64{p, c, tot}, tc.name)
	}
}

func TestLLMTokenQuota(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	pair := `<LLMTokenQuota name="%s" type="flexi"><Identifier ref="client_id"/><Allow count="30"/><Interval>1</Interval><TimeUnit>hour</TimeUnit>
	  <%s>true</%s><SharedName>llm</SharedName></LLMTokenQuota>`
	check := f.parse(t, fmt.Sprintf(pair, "LTQ-check", "EnforceOnly", "EnforceOnly"))
	count := f.parse(t, fmt.Sprintf(pair, "LTQ-count", "CountOnly", "CountOnly"))

	type answer struct{ body, contentType string }
	exchange := func(model string, a answer) (*Fault, *Message) {
		m := f.msg("POST", "/v1/chat/completions", `{"model":"`+model+`","messages":[]}`)
		m.vars().Set("client_id", "app-1")
		if fault := apply(t, check, m); fault != nil {
			return fault, m
		}
		m.Phase = Response
		m.Status = 200
		m.ResponseHeader = http.Header{"Content-Type": {a.contentType}}
		m.ResponseBody = []byte(a.body)
		require.Nil(t, apply(t, count, m))
		return nil, m
	}
	// qwen3: 18 (OpenAI JSON) + 13 (SSE) = 31 > 30 after two answers.
	fault, m := exchange("qwen3", answer{openAIJSON, "application/json"})
	require.Nil(t, fault)
	require.Equal(t, "18", varOf(m, "llmtokenquota.LTQ-count.tokens"))
	require.Equal(t, "true", varOf(m, "llmtokenquota.LTQ-count.usage.found"))
	fault, _ = exchange("qwen3", answer{openAISSE, "text/event-stream"})
	require.Nil(t, fault)
	fault, m = exchange("qwen3", answer{openAIJSON, "application/json"})
	requireFault(t, fault, 429, "policies.llmtokenquota.LLMTokenQuotaViolation", "LLM token quota violation. Token limit exceeded. Identifier : app-1")
	require.Equal(t, "31", varOf(m, "ratelimit.LTQ-check.used.count"))

	// Another model has its own budget: Ollama NDJSON (11), then JSON (316).
	fault, _ = exchange("llama3", answer{ollamaNDJSON, "application/x-ndjson"})
	require.Nil(t, fault)
	fault, _ = exchange("llama3", answer{ollamaJSON, "application/json"})
	require.Nil(t, fault, "11 < 30 at the check")
	fault, _ = exchange("llama3", answer{openAISSENoUsage, "text/event-stream"})
	require.NotNil(t, fault)

	// A stream without usage counts nothing and says so.
	fault, m = exchange("phi", answer{openAISSENoUsage, "text/event-stream"})
	require.Nil(t, fault)
	require.Equal(t, "false", varOf(m, "llmtokenquota.LTQ-count.usage.found"))
	require.Equal(t, "0", varOf(m, "ratelimit.LTQ-count.used.count"))

	// The flexi window ends an hour after the first request.
	f.clock.Advance(time.Hour)
	fault, _ = exchange("qwen3", answer{openAIJSON, "application/json"})
	require.Nil(t, fault)
}

func TestLLMTokenQuotaByPhase(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// Without EnforceOnly/CountOnly one policy enforces on the request and
	// counts on the response.
	p := f.parse(t, `<LLMTokenQuota name="L"><Allow count="10"/><Interval>1</Interval><TimeUnit>minute</TimeUnit></LLMTokenQuota>`)
	m := f.msg("POST", "/v1/chat/completions", `{"model":"m"}`)
	require.Nil(t, apply(t, p, m))
	m.Phase = Response
	m.ResponseBody = []byte(openAIJSON)
	require.Nil(t, apply(t, p, m))
	m.Phase = Request
	requireFault(t, apply(t, p, m), 429, "policies.llmtokenquota.LLMTokenQuotaViolation", "LLM token quota violation. Token limit exceeded. Identifier : _default")
}
