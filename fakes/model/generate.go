package model

import (
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Tokenize splits text into the tokens the server counts and streams. The
// rule (one rule for prompts and answers, see the package documentation):
// a run of whitespace belongs to the token that follows it; a run of letters
// and digits is cut into pieces of at most four characters; every other
// character (punctuation, symbols) is a token of its own; whitespace at the
// very end is a token of its own. Joining the tokens gives back text exactly,
// byte for byte, even for invalid UTF-8.
func Tokenize(text string) []string {
	var tokens []string
	i := 0
	for i < len(text) {
		start := i
		// Leading whitespace sticks to the token that follows.
		for i < len(text) {
			r, w := utf8.DecodeRuneInString(text[i:])
			if !unicode.IsSpace(r) {
				break
			}
			i += w
		}
		if i == len(text) {
			tokens = append(tokens, text[start:])
			break
		}
		r, w := utf8.DecodeRuneInString(text[i:])
		i += w
		if isWordRune(r) {
			for n := 1; n < maxTokenRunes && i < len(text); n++ {
				r, w := utf8.DecodeRuneInString(text[i:])
				if !isWordRune(r) {
					break
				}
				i += w
			}
		}
		tokens = append(tokens, text[start:i])
	}
	return tokens
}

// CountTokens returns len(Tokenize(text)) without building the slice.
func CountTokens(text string) int {
	n := 0
	i := 0
	for i < len(text) {
		for i < len(text) {
			r, w := utf8.DecodeRuneInString(text[i:])
			if !unicode.IsSpace(r) {
				break
			}
			i += w
		}
		n++
		if i == len(text) {
			break
		}
		r, w := utf8.DecodeRuneInString(text[i:])
		i += w
		if isWordRune(r) {
			for k := 1; k < maxTokenRunes && i < len(text); k++ {
				r, w := utf8.DecodeRuneInString(text[i:])
				if !isWordRune(r) {
					break
				}
				i += w
			}
		}
	}
	return n
}

// maxTokenRunes is how many letters or digits one token holds at most: about
// four characters a token, as the endpoint picker's prefix scorer assumes.
const maxTokenRunes = 4

func isWordRune(r rune) bool {
	return r != utf8.RuneError && (unicode.IsLetter(r) || unicode.IsDigit(r))
}

// sayMarker opens the canned-answer marker [[gatecheck:say <text>]].
const (
	sayMarker    = "[[gatecheck:say "
	sayMarkerEnd = "]]"
)

// cannedAnswer returns the text of the first [[gatecheck:say <text>]] marker
// in msg, and whether there was one.
func cannedAnswer(msg string) (string, bool) {
	start := strings.Index(msg, sayMarker)
	if start < 0 {
		return "", false
	}
	rest := msg[start+len(sayMarker):]
	end := strings.Index(rest, sayMarkerEnd)
	if end < 0 {
		return "", false
	}
	return rest[:end], true
}

// genInput is what decides an answer: everything the text depends on.
type genInput struct {
	mode     string   // ModeRandom or ModeEcho
	seed     int64    // server seed or the request's own
	model    string   // model name as requested
	prompt   string   // the whole prompt, rendered
	lastUser string   // last user message (chat) or the prompt (completion)
	budget   int      // most completion tokens allowed (context left, max_tokens)
	stop     []string // stop sequences
}

// answer is a planned completion: its tokens and why it ended.
type answer struct {
	tokens []string
	finish string // finishStop or finishLength
}

const (
	finishStop   = "stop"
	finishLength = "length"
)

// newRequestRand returns the random source for one request: a function of the
// seed, the model name and the prompt only, so the same request gives the same
// text and the same latency jitter.
func newRequestRand(seed int64, model, prompt string) *rand.Rand {
	h := fnv.New64a()
	_, _ = h.Write([]byte(model))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(prompt))
	return rand.New(rand.NewPCG(uint64(seed), h.Sum64()))
}

// plan decides the answer for in. rng must come from newRequestRand; words is
// the vocabulary of random mode.
func plan(in genInput, rng *rand.Rand, words []string) answer {
	var text string
	switch canned, ok := cannedAnswer(in.lastUser); {
	case ok:
		text = canned
	case in.mode == ModeEcho:
		text = in.lastUser
	default:
		// Random mode: 16..64 tokens of pseudo-sentences.
		text = sentences(rng, words, minRandomTokens+rng.IntN(maxRandomTokens-minRandomTokens+1))
	}
	if cut, ok := cutAtStop(text, in.stop); ok {
		text = cut
	}
	tokens := Tokenize(text)
	if len(tokens) > in.budget {
		// Cut by max_tokens or by the context left: the model did not stop
		// by itself.
		return answer{tokens: tokens[:max(in.budget, 0)], finish: finishLength}
	}
	return answer{tokens: tokens, finish: finishStop}
}

const (
	minRandomTokens = 16
	maxRandomTokens = 64
)

// cutAtStop cuts text before the earliest stop sequence it contains.
func cutAtStop(text string, stop []string) (string, bool) {
	best := -1
	for _, s := range stop {
		if s == "" {
			continue
		}
		if i := strings.Index(text, s); i >= 0 && (best < 0 || i < best) {
			best = i
		}
	}
	if best < 0 {
		return text, false
	}
	return text[:best], true
}

// sentences writes readable pseudo-sentences from words until it has exactly
// n tokens.
func sentences(rng *rand.Rand, words []string, n int) string {
	if len(words) == 0 {
		words = []string{"token"}
	}
	var b strings.Builder
	count := 0
	for count < n {
		length := 4 + rng.IntN(9)
		for w := 0; w < length && count < n; w++ {
			word := words[rng.IntN(len(words))]
			if w == 0 {
				word = strings.ToUpper(word[:1]) + word[1:]
			}
			if b.Len() > 0 {
				word = " " + word
			}
			// A word may be longer than the tokens left: cut it at a token
			// boundary so the count is exact.
			toks := Tokenize(word)
			if count+len(toks) > n {
				toks = toks[:n-count]
			}
			for _, t := range toks {
				b.WriteString(t)
			}
			count += len(toks)
			if count < n && w == length/2 && rng.IntN(3) == 0 {
				b.WriteString(",")
				count++
			}
		}
		if count < n {
			b.WriteString(".")
			count++
		}
	}
	return b.String()
}

// vocabulary is the word list of random mode: plain words, so answers read
// like (meaningless) prose in logs and demos.
const vocabulary = `the a model gateway request token answer quick brown fox jumps over lazy
dog river mountain cloud server latency stream policy quota route cluster node pool adapter
prompt simple bright quiet green light small large early late north south under between
across through without always never often today tomorrow and but or with from into of to in
on is was will can may must runs reads writes sends waits answers counts measures carries
follows keeps opens closes builds checks window garden signal engine paper library harbor
forest summer winter morning evening number letter silver golden patient careful steady`
