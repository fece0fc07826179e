package sim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatecheck/gatecheck/fakes/apigee/policy"
	"github.com/gatecheck/gatecheck/internal/apigeeapi"
)

// usageOf reads the tokens an answer says it used: OpenAI's usage (in the
// JSON, or in the last SSE chunk that has it) or Ollama's prompt_eval_count
// + eval_count (in the JSON, or the done NDJSON line).
func usageOf(t testing.TB, r result, streamed bool) int {
	t.Helper()
	type doc struct {
		Usage *struct {
			TotalTokens int `json:"total_tokens"`
		} `json:"usage"`
		PromptEvalCount *int `json:"prompt_eval_count"`
		EvalCount       *int `json:"eval_count"`
		Done            bool `json:"done"`
	}
	total := func(d doc) (int, bool) {
		switch {
		case d.Usage != nil:
			return d.Usage.TotalTokens, true
		case d.PromptEvalCount != nil && d.EvalCount != nil:
			return *d.PromptEvalCount + *d.EvalCount, true
		}
		return 0, false
	}
	if !streamed {
		var d doc
		require.NoError(t, json.Unmarshal(r.body, &d), "answer: %s", r)
		n, ok := total(d)
		require.True(t, ok, "the answer reports its usage: %s", r)
		return n
	}
	found, n := false, 0
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if sse, ok := strings.CutPrefix(line, "data:"); ok {
			line = strings.TrimSpace(sse)
		}
		if line == "" || line == "[DONE]" || !strings.HasPrefix(line, "{") {
			continue
		}
		var d doc
		require.NoError(t, json.Unmarshal([]byte(line), &d), "chunk %s", line)
		if v, ok := total(d); ok {
			found, n = true, v
		}
	}
	require.NoError(t, sc.Err())
	require.True(t, found, "the streamed answer reports its usage: %s", r)
	return n
}

// TestLLMTokenQuota gives a fresh app a product whose llmOperationGroup has a
// token quota, and spends it with each kind of answer: the runtime counts
// exactly the tokens each answer reports, and refuses the first request
// after the sum reaches the limit — not before.
func TestLLMTokenQuota(t *testing.T) {
	t.Parallel()
	env := start(t, nil)
	const limit = 60
	prompt := func(i int) string {
		return `[{"role":"user","content":"spend ` + strings.Repeat("tokens ", i%4+1) + `"}]`
	}
	for _, tc := range []struct {
		name     string
		path     string
		streamed bool
		body     func(i int) string
	}{
		{"OpenAI", "/v1/chat/completions", false, func(i int) string {
			return `{"model":"` + qwen + `","max_tokens":4,"messages":` + prompt(i) + `}`
		}},
		{"OpenAIStreamed", "/v1/chat/completions", true, func(i int) string {
			return `{"model":"` + qwen + `","max_tokens":4,"stream":true,"stream_options":{"include_usage":true},"messages":` + prompt(i) + `}`
		}},
		{"Ollama", "/api/chat", false, func(i int) string {
			return `{"model":"` + llama + `","stream":false,"options":{"num_predict":4},"messages":` + prompt(i) + `}`
		}},
		{"OllamaStreamed", "/api/chat", true, func(i int) string {
			return `{"model":"` + llama + `","options":{"num_predict":4},"messages":` + prompt(i) + `}`
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			product := createProduct(t, env, llmProduct(unique("tokens"),
				&apigeeapi.Quota{Limit: strconv.Itoa(limit), Interval: "1", TimeUnit: "hour"},
				apigeeapi.LLMOperation{Resource: "/v1/chat/completions", Methods: []string{"POST"}, Model: "*"},
				apigeeapi.LLMOperation{Resource: "/api/chat", Methods: []string{"POST"}, Model: "*"}))
			c := newConsumer(t, env, product)
			countVar := "llmtokenquota." + policy.DefaultLLMTokenCountName + ".tokens"
			usedVar := "ratelimit." + policy.DefaultLLMTokenCountName + ".used.count"
			sum, requests := 0, 0
			for ; sum < limit; requests++ {
				require.Less(t, requests, 50, "the budget should be spent by now")
				r := call(t, env, http.MethodPost, tc.path, tc.body(requests), "x-api-key", c.key)
				require.Equal(t, http.StatusOK, r.status, "request %d with %d of %d tokens used: %s", requests+1, sum, limit, r)
				usage := usageOf(t, r, tc.streamed)
				require.Positive(t, usage)
				// The trace is filed once the response flow has counted.
				vars := stepVars(traceOf(t, env, r))
				sum += usage
				assert.Equal(t, strconv.Itoa(usage), vars[countVar], "counted what the answer reported")
				assert.Equal(t, strconv.Itoa(sum), vars[usedVar], "the counter is the sum of the answers' usage")
			}
			t.Logf("%d requests used %d tokens", requests, sum)
			assert.Greater(t, requests, 2, "the budget took several requests")
			r := call(t, env, http.MethodPost, tc.path, tc.body(requests), "x-api-key", c.key)
			requireFault(t, r, http.StatusTooManyRequests, "policies.llmtokenquota.LLMTokenQuotaViolation",
				"LLM token quota violation. Token limit exceeded. Identifier : _default")
		})
	}
}
