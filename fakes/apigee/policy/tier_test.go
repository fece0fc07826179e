package policy

import (
	"testing"

	"github.com/gatecheck/gatecheck/internal/apigeeapi"
	"github.com/stretchr/testify/require"
)

func attrs(kv ...string) []apigeeapi.Attribute {
	var out []apigeeapi.Attribute
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, apigeeapi.Attribute{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

func TestParseTier(t *testing.T) {
	t.Parallel()
	tier, err := ParseTier(attrs(
		"access", "private",
		"gatecheck.tier.models", " qwen*, llama3 ,",
		"gatecheck.tier.stream", "false",
		"gatecheck.tier.max_tokens", "512",
		"gatecheck.tier.tools", "FALSE",
	))
	require.NoError(t, err)
	require.Equal(t, Tier{Models: []string{"qwen*", "llama3"}, NoStream: true, MaxTokens: 512, NoTools: true}, tier)

	empty, err := ParseTier(attrs("gatecheck.tier.stream", "true", "gatecheck.tier.tools", "true"))
	require.NoError(t, err)
	require.Equal(t, Tier{}, empty)

	for _, tc := range []struct{ name, value, err string }{
		{"gatecheck.tier.max_tokens", "lots", `attribute gatecheck.tier.max_tokens: "lots" is not a positive integer`},
		{"gatecheck.tier.max_tokens", "0", `attribute gatecheck.tier.max_tokens: "0" is not a positive integer`},
		{"gatecheck.tier.stream", "no", `attribute gatecheck.tier.stream: "no" is not true or false`},
		{"gatecheck.tier.models", " , ", `attribute gatecheck.tier.models: no model patterns in " , "`},
		{"gatecheck.tier.max_token", "5", `attribute gatecheck.tier.max_token: unknown tier rule "max_token" (rules: models, stream, max_tokens, tools)`},
	} {
		_, err := ParseTier(attrs(tc.name, tc.value))
		require.EqualError(t, err, tc.err)
	}
}

func TestTierCheck(t *testing.T) {
	t.Parallel()
	tier := Tier{Models: []string{"qwen*"}, NoStream: true, MaxTokens: 512, NoTools: true}
	for _, tc := range []struct {
		name, path, body  string
		code, faultString string
	}{
		{"allowed", "/v1/chat/completions", `{"model":"qwen3","max_tokens":512,"stream":false}`, "", ""},
		{"no model stated", "/v1/embeddings", `{"input":"x"}`, "", ""},
		{"not JSON", "/v1/chat/completions", `model=llama`, "", ""},
		{"model", "/v1/chat/completions", `{"model":"llama3"}`, "gatecheck.tier.ModelNotAllowed", "Model llama3 is not allowed by product gold"},
		{"stream", "/v1/chat/completions", `{"model":"qwen3","stream":true}`, "gatecheck.tier.StreamingNotAllowed", "Streaming is not allowed by product gold"},
		{"ollama streams by default", "/api/chat", `{"model":"qwen3","messages":[]}`, "gatecheck.tier.StreamingNotAllowed", "Streaming is not allowed by product gold"},
		{"ollama without streaming", "/api/chat", `{"model":"qwen3","stream":false}`, "", ""},
		{"max_tokens", "/v1/chat/completions", `{"model":"qwen3","max_tokens":513}`, "gatecheck.tier.MaxTokensExceeded", "max_tokens 513 exceeds 512 allowed by product gold"},
		{"max_completion_tokens", "/v1/chat/completions", `{"max_completion_tokens":1e4}`, "gatecheck.tier.MaxTokensExceeded", "max_tokens 10000 exceeds 512 allowed by product gold"},
		{"num_predict", "/api/generate", `{"stream":false,"options":{"num_predict":600}}`, "gatecheck.tier.MaxTokensExceeded", "max_tokens 600 exceeds 512 allowed by product gold"},
		{"tools", "/v1/chat/completions", `{"tools":[{"type":"function"}]}`, "gatecheck.tier.ToolsNotAllowed", "Tools are not allowed by product gold"},
		{"empty tools", "/v1/chat/completions", `{"tools":[]}`, "", ""},
	} {
		f := tier.check("gold", tc.path, []byte(tc.body))
		if tc.code == "" {
			require.Nil(t, f, tc.name)
			continue
		}
		requireFault(t, f, 403, tc.code, tc.faultString)
	}
}

func TestTierThroughVerifyAPIKey(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := chatProduct("basic", "100")
	p.Attributes = attrs("gatecheck.tier.max_tokens", "100", "gatecheck.tier.stream", "false")
	// The operation config's attributes win over the product's.
	p.OperationGroup.OperationConfigs[0].Attributes = attrs("gatecheck.tier.max_tokens", "200")
	f.seed(t, "t@example.com", "t-app", "key-t", p)
	va := f.parse(t, vaXML)
	require.Nil(t, apply(t, va, f.msg("POST", "/v1/chat/completions", `{"max_tokens":150}`, "x-api-key", "key-t")))
	requireFault(t, apply(t, va, f.msg("POST", "/v1/chat/completions", `{"max_tokens":250}`, "x-api-key", "key-t")),
		403, "gatecheck.tier.MaxTokensExceeded", "max_tokens 250 exceeds 200 allowed by product basic")
	requireFault(t, apply(t, va, f.msg("POST", "/v1/chat/completions", `{"stream":true}`, "x-api-key", "key-t")),
		403, "gatecheck.tier.StreamingNotAllowed", "Streaming is not allowed by product basic")

	bad := chatProduct("bad", "1")
	bad.Attributes = attrs("gatecheck.tier.stream", "perhaps")
	f.seed(t, "t@example.com", "bad-app", "key-bad", bad)
	_, err := va.Apply(t.Context(), f.msg("POST", "/v1/chat/completions", `{}`, "x-api-key", "key-bad"))
	require.EqualError(t, err, `VerifyAPIKey "VA": product "bad": attribute gatecheck.tier.stream: "perhaps" is not true or false`)
}
