package tiny

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Space is SentencePiece's word boundary mark, which stands for a space.
const Space = "▁"

// Vocab is a SentencePiece vocabulary: three parallel arrays, indexed by
// token id, as GGUF stores them.
type Vocab struct {
	// Tokens are the pieces (tokenizer.ggml.tokens).
	Tokens []string
	// Scores rank pieces for merging, higher first (tokenizer.ggml.scores).
	Scores []float32
	// Types are TokenNormal, TokenUnknown, TokenControl or TokenByte
	// (tokenizer.ggml.token_type).
	Types []int32
}

// words are the common words the vocabulary has pieces for; with their
// prefixes, a few hundred pieces.
var words = strings.Fields(`
	the of and to in is that it for on with as was at by be this are or from
	an have not but they we you he she his her can will all one there their
	which what when who how if so no yes more some time new like just than then
	them out up about into over only other also after first well way work make
	good see know world hello model token tokens gateway request answer quota key
	policy secure route pool picker server small tiny local random weight llama
	stream chat prompt text data check test safe fast real word because each any
	could would should these those very our your my me`)

// singles are the characters that are pieces of their own, so common text
// rarely needs the byte fallback.
const singles = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?;:'\"-()[]{}<>/\\@#$%^&*_+=|~`"

// Vocabulary is the model's vocabulary: <unk>, <s>, </s>, the byte fallback
// tokens <0x00>..<0xFF>, then the pieces: Space, the single characters, and
// every prefix of Space+word (two runes or more) for the common words,
// shorter pieces first. Pieces score -1, -2, ... in that order.
//
// The pieces are closed under prefixes, so SentencePiece's merges can build
// each word from its characters; what no piece covers falls back to bytes.
func Vocabulary() Vocab {
	var v Vocab
	add := func(tok string, score float32, typ int32) {
		v.Tokens = append(v.Tokens, tok)
		v.Scores = append(v.Scores, score)
		v.Types = append(v.Types, typ)
	}
	add("<unk>", 0, TokenUnknown)
	add("<s>", 0, TokenControl)
	add("</s>", 0, TokenControl)
	for b := range 256 {
		add(fmt.Sprintf("<0x%02X>", b), 0, TokenByte)
	}

	pieces := []string{Space}
	for _, r := range singles {
		pieces = append(pieces, string(r))
	}
	seen := map[string]bool{}
	for _, p := range pieces {
		seen[p] = true
	}
	var prefixes []string
	for _, w := range words {
		full := []rune(Space + w)
		for n := 2; n <= len(full); n++ {
			if p := string(full[:n]); !seen[p] {
				seen[p] = true
				prefixes = append(prefixes, p)
			}
		}
	}
	slices.SortFunc(prefixes, func(a, b string) int {
		return cmp.Or(cmp.Compare(utf8.RuneCountInString(a), utf8.RuneCountInString(b)), strings.Compare(a, b))
	})
	for i, p := range append(pieces, prefixes...) {
		add(p, -float32(i+1), TokenNormal)
	}
	return v
}
