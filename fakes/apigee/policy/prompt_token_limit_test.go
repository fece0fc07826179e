package policy

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCountTokens(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s    string
		want int
	}{
		{"", 0},
		{"   \n\t", 0},
		{"Hello, world!", 6},
		{"a", 1},
		{"abcd", 1},
		{"abcde", 2},
		{"internationalization", 5},
		{"x = 42;", 4},
		{"naïve café", 4}, // ï and é are two bytes each
		{"日本語", 3},        // nine bytes of letters
		{"🙂🙂", 2},
		{strings.Repeat("word ", 100), 100},
	} {
		require.Equal(t, tc.want, CountTokens(tc.s), "%q", tc.s)
	}
}

func TestPromptTokenLimit(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := f.parse(t, `<PromptTokenLimit name="PTL"><Identifier ref="client_id"/><Rate>10pm</Rate></PromptTokenLimit>`)
	prompt := func(text string) *Message {
		m := f.msg("POST", "/v1/chat/completions", `{"messages":[{"role":"system","content":"long long long long long system prompt"},{"role":"user","content":"`+text+`"}]}`)
		m.vars().Set("client_id", "app-1")
		return m
	}
	// Only the last message counts: "one two six ten" is 4 tokens.
	m := prompt("one two six ten")
	require.Nil(t, apply(t, p, m))
	require.Equal(t, "4", varOf(m, "prompttokenlimit.PTL.tokens"))
	require.Nil(t, apply(t, p, prompt("one two six ten")))
	m = prompt("one two three") // 1 + 1 + 2
	requireFault(t, apply(t, p, m), 429, "policies.prompttokenlimit.PromptTokenLimitViolation",
		"Prompt token limit violation. Allowed rate : 10pm. Identifier : app-1")
	require.Equal(t, "true", varOf(m, "prompttokenlimit.PTL.failed"))
	require.Nil(t, apply(t, p, prompt("one two")), "8 + 2 fits")
	f.clock.Advance(time.Minute)
	require.Nil(t, apply(t, p, prompt("a b c d e f g h i j")))

	custom := f.parse(t, `<PromptTokenLimit name="C"><Rate>5ps</Rate><UserPromptSource>{jsonPath('$.prompt',request.content,true)}</UserPromptSource></PromptTokenLimit>`)
	requireFault(t, apply(t, custom, f.msg("POST", "/api/generate", `{"prompt":"a b c d e f"}`)), 429,
		"policies.prompttokenlimit.PromptTokenLimitViolation", "Prompt token limit violation. Allowed rate : 5ps. Identifier : _default")
	require.Nil(t, apply(t, custom, f.msg("POST", "/api/generate", `{"other":1}`)), "no prompt, no tokens")
}
