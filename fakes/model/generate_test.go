package model

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestTokenize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		text string
		want []string
	}{
		{"", nil},
		{"Hello", []string{"Hell", "o"}},
		{"Hi there!", []string{"Hi", " ther", "e", "!"}},
		{"4111 1111 1111 1111", []string{"4111", " 1111", " 1111", " 1111"}},
		{"  indented\n", []string{"  inde", "nted", "\n"}},
		{"a,b", []string{"a", ",", "b"}},
		{"[[gatecheck:say x]]", []string{"[", "[", "gate", "chec", "k", ":", "say", " x", "]", "]"}},
		{"naïve café", []string{"naïv", "e", " café"}},
		{"日本語です", []string{"日本語で", "す"}},
		{"a\xffb", []string{"a", "\xff", "b"}},
	} {
		got := Tokenize(tc.text)
		require.Equal(t, tc.want, got, "%q", tc.text)
		require.Equal(t, len(got), CountTokens(tc.text), "%q", tc.text)
	}
}

// TestTokenizeProperties checks, on random texts, that tokens join back into
// the text, that CountTokens agrees, and that a prefix of the tokens
// tokenises to itself (so a text cut by max_tokens counts what was streamed).
func TestTokenizeProperties(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []rune("ab cdefghij0123456789 .,!?\n\t\"'-é日\uFFFD")
	for range 2000 {
		n := rng.IntN(40)
		var b strings.Builder
		for range n {
			if rng.IntN(50) == 0 {
				b.WriteByte(0xff) // invalid UTF-8 too
				continue
			}
			b.WriteRune(alphabet[rng.IntN(len(alphabet))])
		}
		text := b.String()
		toks := Tokenize(text)
		require.Equal(t, text, strings.Join(toks, ""))
		require.Equal(t, len(toks), CountTokens(text))
		for _, tok := range toks {
			require.NotEmpty(t, tok)
		}
		k := rng.IntN(len(toks) + 1)
		prefix := Tokenize(strings.Join(toks[:k], ""))
		require.True(t, slices.Equal(toks[:k], prefix), "prefix %q tokenises to %q", toks[:k], prefix)
	}
}

func FuzzTokenize(f *testing.F) {
	f.Add("Hello, world! 4111 1111")
	f.Add("\xff\xfe  trailing ")
	f.Fuzz(func(t *testing.T, text string) {
		toks := Tokenize(text)
		if strings.Join(toks, "") != text || len(toks) != CountTokens(text) {
			t.Fatalf("tokens %q do not rebuild %q", toks, text)
		}
	})
}

func TestPlan(t *testing.T) {
	t.Parallel()
	words := strings.Fields(vocabulary)
	for _, tc := range []struct {
		name       string
		in         genInput
		wantText   string // checked when not empty
		wantFinish string
		wantTokens int // checked when >= 0
	}{
		{"random", genInput{mode: ModeRandom, seed: 1, prompt: "p", budget: 1000}, "", "stop", -1},
		{"random budget", genInput{mode: ModeRandom, seed: 1, prompt: "p", budget: 3}, "", "length", 3},
		{"random zero budget", genInput{mode: ModeRandom, seed: 1, prompt: "p", budget: 0}, "", "length", 0},
		{"echo", genInput{mode: ModeEcho, lastUser: "say it back", budget: 100}, "say it back", "stop", 3},
		{"echo context cut", genInput{mode: ModeEcho, lastUser: "say it back", budget: 2}, "say it", "length", 2},
		{"canned wins over echo", genInput{mode: ModeEcho, lastUser: "x [[gatecheck:say 42]] y", budget: 100}, "42", "stop", 1},
		{"canned unterminated", genInput{mode: ModeEcho, lastUser: "[[gatecheck:say 42", budget: 100}, "[[gatecheck:say 42", "stop", -1},
		{"canned empty", genInput{mode: ModeRandom, lastUser: "[[gatecheck:say ]]", budget: 100}, "", "stop", 0},
		{"stop", genInput{mode: ModeEcho, lastUser: "one two three", stop: []string{"", "three", "two"}, budget: 100}, "one ", "stop", 2},
		{"stop then length", genInput{mode: ModeEcho, lastUser: "one two three", stop: []string{"three"}, budget: 1}, "one", "length", 1},
	} {
		rng := newRequestRand(tc.in.seed, tc.in.model, tc.in.prompt)
		got := plan(tc.in, rng, words)
		text := strings.Join(got.tokens, "")
		require.Equal(t, tc.wantFinish, got.finish, tc.name)
		if tc.wantText != "" || tc.wantTokens == 0 {
			require.Equal(t, tc.wantText, text, tc.name)
		}
		if tc.wantTokens >= 0 {
			require.Len(t, got.tokens, tc.wantTokens, tc.name)
		} else if tc.in.mode == ModeRandom {
			require.GreaterOrEqual(t, len(got.tokens), minRandomTokens, tc.name)
			require.LessOrEqual(t, len(got.tokens), maxRandomTokens, tc.name)
		}
		require.True(t, slices.Equal(got.tokens, Tokenize(text)), tc.name)
	}
}

func TestSentencesExactLength(t *testing.T) {
	t.Parallel()
	words := strings.Fields(vocabulary)
	for n := 1; n <= 80; n++ {
		text := sentences(rand.New(rand.NewPCG(uint64(n), 0)), words, n)
		require.Equal(t, n, CountTokens(text), "%d: %q", n, text)
		require.True(t, utf8.ValidString(text))
	}
	require.Equal(t, 3, CountTokens(sentences(rand.New(rand.NewPCG(1, 1)), nil, 3)))
}
