package threat

import (
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// A prefilter lets Rules.Check skip a pattern that cannot match a value:
// most patterns need some literal text (union, <script, /etc/passwd) that
// ordinary prompts do not hold, and Go's regexp engine runs a complex
// pattern at tens of megabytes a second, so a long prompt tested against
// every default pattern costs seconds without it. Skipping is exact: a
// prefilter lists literals of which any match of the pattern contains at
// least one (compared case-folded), so a value holding none of them cannot
// match, and the result of Check is the same with or without prefilters.

// prefilter holds the folded literals one of which every match contains.
type prefilter struct {
	lits []string
}

// maxPrefilterLits bounds a prefilter's literals; a pattern needing more
// (a wide alternation) runs unfiltered.
const maxPrefilterLits = 32

// newPrefilter analyses a compiled pattern; nil means it always runs.
func newPrefilter(re *regexp.Regexp) *prefilter {
	if re == nil {
		return nil
	}
	t, err := syntax.Parse(re.String(), syntax.Perl)
	if err != nil {
		return nil
	}
	lits, ok := requiredLits(t.Simplify())
	if !ok || len(lits) == 0 {
		return nil
	}
	return &prefilter{lits: lits}
}

// mayMatch reports whether a value, folded with foldString, holds one of
// the literals.
func (p *prefilter) mayMatch(folded string) bool {
	for _, l := range p.lits {
		if strings.Contains(folded, l) {
			return true
		}
	}
	return false
}

// requiredLits returns folded literals one of which every match of re
// contains, or false when there is no such set small enough to use.
func requiredLits(re *syntax.Regexp) ([]string, bool) {
	switch re.Op {
	case syntax.OpLiteral:
		if len(re.Rune) == 0 {
			return nil, false
		}
		return []string{foldString(string(re.Rune))}, true
	case syntax.OpCharClass:
		var lits []string
		for i := 0; i+1 < len(re.Rune); i += 2 {
			lo, hi := re.Rune[i], re.Rune[i+1]
			if hi-lo >= 4 || len(lits) > 4 {
				return nil, false
			}
			for r := lo; r <= hi; r++ {
				if l := foldString(string(r)); !slices.Contains(lits, l) {
					lits = append(lits, l)
				}
			}
		}
		if len(lits) == 0 || len(lits) > 4 {
			return nil, false
		}
		return lits, true
	case syntax.OpCapture, syntax.OpPlus:
		return requiredLits(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min < 1 {
			return nil, false
		}
		return requiredLits(re.Sub[0])
	case syntax.OpConcat:
		var best []string
		found := false
		for _, sub := range re.Sub {
			lits, ok := requiredLits(sub)
			if ok && (!found || betterLits(lits, best)) {
				best, found = lits, true
			}
		}
		return best, found
	case syntax.OpAlternate:
		var lits []string
		for _, sub := range re.Sub {
			s, ok := requiredLits(sub)
			if !ok {
				return nil, false
			}
			for _, l := range s {
				if !slices.Contains(lits, l) {
					lits = append(lits, l)
				}
			}
			if len(lits) > maxPrefilterLits {
				return nil, false
			}
		}
		return lits, len(lits) > 0
	}
	return nil, false
}

// betterLits prefers the set whose shortest literal is longer (rarer in
// text), then the smaller set.
func betterLits(a, b []string) bool {
	ma, mb := minLen(a), minLen(b)
	if ma != mb {
		return ma > mb
	}
	return len(a) < len(b)
}

func minLen(lits []string) int {
	m := -1
	for _, l := range lits {
		if m < 0 || len(l) < m {
			m = len(l)
		}
	}
	return m
}

// foldString maps every rune to the smallest rune of its case-folding orbit
// (the runes (?i) treats as equal: k, K and the Kelvin sign K all become
// K), so a case-insensitive literal and the text it matches fold the same.
// Invalid UTF-8 folds to U+FFFD, as the regexp engine reads it.
func foldString(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		// An ASCII letter's orbit holds its capital, the smallest rune of
		// it, and may hold non-ASCII runes (ſ, K), which fold to it too.
		b := []byte(s)
		for i, c := range b {
			if 'a' <= c && c <= 'z' {
				b[i] = c - ('a' - 'A')
			}
		}
		return string(b)
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		b.WriteRune(foldRune(r))
	}
	return b.String()
}

// foldRune is the smallest rune of r's folding orbit.
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'a' <= r && r <= 'z' {
			return r - ('a' - 'A')
		}
		return r
	}
	m := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		m = min(m, f)
	}
	return m
}
