package policy

import (
	"net/http"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/internal/apigeeapi"
	"github.com/stretchr/testify/require"
)

// runFlow runs the request policies, then (if none refused) the response
// policies with answer as the response body. It returns the first fault.
func runFlow(t *testing.T, req, resp []Policy, m *Message, answer string) *Fault {
	t.Helper()
	for _, p := range req {
		if f := apply(t, p, m); f != nil {
			return f
		}
	}
	m.Phase = Response
	m.Status = 200
	m.ResponseHeader = http.Header{"Content-Type": {"application/json"}}
	m.ResponseBody = []byte(answer)
	for _, p := range resp {
		if f := apply(t, p, m); f != nil {
			return f
		}
	}
	return nil
}

func TestDefaultSecurity(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.env.APISource = "gw-apim"
	ai := llmProduct("ai", "20", "qwen*")
	f.seed(t, "d@example.com", "app-1", "key-1", chatProduct("chat", "3"), ai)
	f.seed(t, "d@example.com", "app-2", "key-2", chatProduct("chat", "3"))
	f.seed(t, "d@example.com", "app-free", "key-free", apigeeapi.APIProduct{Name: "free"})
	req, resp := DefaultSecurity(f.env)
	require.Len(t, req, 3)
	require.Len(t, resp, 1)
	require.Equal(t, []string{DefaultVerifyAPIKeyName, DefaultQuotaName, DefaultLLMTokenQuotaName},
		[]string{req[0].Name(), req[1].Name(), req[2].Name()})

	call := func(key, path, body, answer string) *Fault {
		var hdr []string
		if key != "" {
			hdr = []string{"x-api-key", key}
		}
		return runFlow(t, req, resp, f.msg("POST", path, body, hdr...), answer)
	}
	requireFault(t, call("", "/v1/chat/completions", "", ""), 401, "steps.oauth.v2.FailedToResolveAPIKey",
		"Failed to resolve API Key variable request.header.x-api-key")

	// The operation config's quota: 3 a minute per app.
	for range 3 {
		require.Nil(t, call("key-1", "/v1/chat/completions", `{"model":"m"}`, `{}`))
	}
	requireFault(t, call("key-1", "/v1/chat/completions", `{"model":"m"}`, `{}`), 429, "policies.ratelimit.QuotaViolation",
		"Rate limit quota violation. Quota limit  exceeded. Identifier : _default")
	require.Nil(t, call("key-2", "/v1/chat/completions", `{}`, `{}`), "another app has its own count")

	// The AI product's token quota: 20 tokens an hour per app and model.
	require.Nil(t, call("key-1", "/v1/completions", `{"model":"qwen3"}`, openAIJSON)) // 18
	require.Nil(t, call("key-1", "/v1/completions", `{"model":"qwen3"}`, openAIJSON)) // 18 < 20 at the check
	requireFault(t, call("key-1", "/v1/completions", `{"model":"qwen3"}`, openAIJSON), 429,
		"policies.llmtokenquota.LLMTokenQuotaViolation", "LLM token quota violation. Token limit exceeded. Identifier : _default")
	require.Nil(t, call("key-1", "/v1/completions", `{"model":"qwen2"}`, openAIJSON), "another model")
	requireFault(t, call("key-1", "/v1/completions", `{"model":"llama"}`, openAIJSON), 401,
		"oauth.v2.InvalidApiKeyForGivenResource", "Invalid ApiKey for given resource")

	// A product without a quota is not limited.
	for range 10 {
		require.Nil(t, call("key-free", "/anything", `{}`, `{}`))
	}

	// Windows are flexi: a minute after the first request, not the clock minute.
	f.clock.Advance(29 * time.Second) // 12:00:59
	requireFault(t, call("key-1", "/v1/chat/completions", `{}`, `{}`), 429, "policies.ratelimit.QuotaViolation",
		"Rate limit quota violation. Quota limit  exceeded. Identifier : _default")
	f.clock.Advance(2 * time.Second) // 12:01:01, still inside the flexi minute
	require.NotNil(t, call("key-1", "/v1/chat/completions", `{}`, `{}`))
	f.clock.Advance(30 * time.Second) // 12:01:31
	require.Nil(t, call("key-1", "/v1/chat/completions", `{}`, `{}`))
}
