package detectors

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Level is how confident a detector is. Model Armor reports the same three
// levels (LOW_AND_ABOVE, MEDIUM_AND_ABOVE, HIGH).
type Level int

// The levels; None rejects a candidate.
const (
	None Level = iota
	Low
	Medium
	High
)

// String returns LOW, MEDIUM, HIGH or NONE.
func (l Level) String() string {
	switch l {
	case Low:
		return "LOW"
	case Medium:
		return "MEDIUM"
	case High:
		return "HIGH"
	}
	return "NONE"
}

// The Model Armor filters the detectors stand in for.
const (
	FilterPIAndJailbreak = "pi_and_jailbreak"
	FilterMaliciousURIs  = "malicious_uris"
	FilterSDP            = "sdp"
	FilterRAI            = "rai"
)

// Window is the text around a candidate match that a rule's Confirm may
// read: the match and up to Rule.Context bytes either side (less at the ends
// of the text).
type Window struct {
	// Text is the match with its context.
	Text string
	// Start and End locate the match within Text.
	Start, End int
}

// Match returns the matched text.
func (w Window) Match() string { return w.Text[w.Start:w.End] }

// Before returns the context before the match.
func (w Window) Before() string { return w.Text[:w.Start] }

// After returns the context after the match.
func (w Window) After() string { return w.Text[w.End:] }

// Rule finds candidates with a regular expression whose matches are at
// most MaxLen bytes long and confirms them in Go.
//
// A rule's decision about a candidate depends only on the candidate and
// Context bytes around it, and its pattern never looks at the text before
// where a search starts (no leading \b, ^ or lookbehind; left boundaries are
// NotBefore's job). That locality is what lets a stream be scanned in
// chunks with the same result as the whole text.
type Rule struct {
	// ID names the rule, e.g. "pi.override".
	ID string
	// Filter is one of the Filter* names, Kind what is found
	// ("prompt_injection", "credit_card", ...).
	Filter, Kind string
	// Pattern finds candidates.
	Pattern *regexp.Regexp
	// MaxLen bounds Pattern's matches, in bytes.
	MaxLen int
	// Context is how many bytes around a candidate Confirm reads.
	Context int
	// NotBefore and NotAfter, when set, reject a candidate whose
	// neighbouring byte they accept (a word boundary, a digit run).
	NotBefore, NotAfter func(b byte) bool
	// Anchors, when set, are lower-case strings one of which every match
	// contains (see requiredLiterals): the scanner runs Pattern only near
	// them.
	Anchors []string
	// First is the set of bytes a match can begin with: the scanner tries
	// Anchored only at positions whose byte is in First and whose previous
	// byte NotBefore allows.
	First [256]bool
	// Anchored is Pattern anchored at the start of its input.
	Anchored *regexp.Regexp
	// Confirm decides a candidate; nil means Base.
	Confirm func(w Window) Level
	// Base is the level of a candidate when Confirm is nil.
	Base Level
}

// Decide returns the rule's level for the candidate in w, after the
// boundary checks; prev and next are the bytes around the match, -1 at the
// ends of the text.
func (r *Rule) Decide(w Window, prev, next int) Level {
	if r.NotBefore != nil && prev >= 0 && r.NotBefore(byte(prev)) {
		return None
	}
	if r.NotAfter != nil && next >= 0 && r.NotAfter(byte(next)) {
		return None
	}
	if r.Confirm == nil {
		return r.Base
	}
	return r.Confirm(w)
}

// builder collects rules and the first error.
type builder struct {
	rules []Rule
	err   error
}

// sep is the separator allowed between the words of a phrase: whitespace,
// zero-width characters, quotes and the punctuation used to break up
// phrases ("ignore-previous_instructions", "you are, from now on, DAN").
const sep = `[\s\x{200B}-\x{200D}\x{2060}\x{FEFF}_*~.,;:\-'"“”‘’]{1,4}`

// word is one word of filler between the words a phrase needs.
const word = `[\w'’]{1,15}`

// expand replaces {S} with sep and {W} with word.
func expand(p string) string {
	return strings.NewReplacer("{S}", sep, "{W}", word).Replace(p)
}

// add compiles pattern (after expand) into r and appends it.
func (b *builder) add(r Rule, pattern string) {
	if b.err != nil {
		return
	}
	rule, err := compileRule(r, expand(pattern))
	if err != nil {
		b.err = err
		return
	}
	b.rules = append(b.rules, rule)
}

func compileRule(r Rule, pattern string) (Rule, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return Rule{}, fmt.Errorf("detector %s: %w", r.ID, err)
	}
	tree, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return Rule{}, fmt.Errorf("detector %s: %w", r.ID, err)
	}
	n := MaxMatchLen(tree)
	if n < 0 {
		return Rule{}, fmt.Errorf("detector %s: pattern has no bounded match length (use {m,n}, not * or +)", r.ID)
	}
	if leadingAssertion(tree) {
		return Rule{}, fmt.Errorf("detector %s: pattern starts with an assertion; use NotBefore", r.ID)
	}
	r.Pattern, r.MaxLen = re, n
	r.Anchors = goodAnchors(requiredLiterals(tree))
	first, empty := firstBytes(tree)
	if empty {
		return Rule{}, fmt.Errorf("detector %s: pattern can match the empty string", r.ID)
	}
	r.First = first
	if r.Anchored, err = regexp.Compile(`^(?:` + pattern + `)`); err != nil {
		return Rule{}, fmt.Errorf("detector %s: %w", r.ID, err)
	}
	if r.Context < 1 {
		r.Context = 1
	}
	return r, nil
}

// MaxMatchLen returns the most bytes a match of re can span, or -1 if it is
// unbounded.
func MaxMatchLen(re *syntax.Regexp) int {
	switch re.Op {
	case syntax.OpNoMatch, syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine,
		syntax.OpBeginText, syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return 0
	case syntax.OpLiteral:
		n := 0
		for _, r := range re.Rune {
			n += maxFoldLen(r, re.Flags&syntax.FoldCase != 0)
		}
		return n
	case syntax.OpCharClass:
		if len(re.Rune) == 0 {
			return 0
		}
		return utf8.RuneLen(clampRune(re.Rune[len(re.Rune)-1]))
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return utf8.UTFMax
	case syntax.OpCapture, syntax.OpQuest:
		return MaxMatchLen(re.Sub[0])
	case syntax.OpStar, syntax.OpPlus:
		if MaxMatchLen(re.Sub[0]) == 0 {
			return 0
		}
		return -1
	case syntax.OpRepeat:
		n := MaxMatchLen(re.Sub[0])
		if n < 0 || (re.Max < 0 && n > 0) {
			return -1
		}
		if re.Max < 0 {
			return 0
		}
		return n * re.Max
	case syntax.OpConcat:
		total := 0
		for _, s := range re.Sub {
			n := MaxMatchLen(s)
			if n < 0 {
				return -1
			}
			total += n
		}
		return total
	case syntax.OpAlternate:
		best := 0
		for _, s := range re.Sub {
			n := MaxMatchLen(s)
			if n < 0 {
				return -1
			}
			best = max(best, n)
		}
		return best
	}
	return -1
}

func clampRune(r rune) rune {
	if r > utf8.MaxRune {
		return utf8.MaxRune
	}
	return r
}

func maxFoldLen(r rune, fold bool) int {
	n := utf8.RuneLen(r)
	if !fold {
		return n
	}
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		n = max(n, utf8.RuneLen(f))
	}
	return n
}

// leadingAssertion reports whether a match can begin with an empty-width
// assertion, which would look at text before the search start.
func leadingAssertion(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText,
		syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return true
	case syntax.OpCapture:
		return leadingAssertion(re.Sub[0])
	case syntax.OpConcat:
		for _, s := range re.Sub {
			if leadingAssertion(s) {
				return true
			}
			if !canBeEmpty(s) {
				return false
			}
		}
	case syntax.OpAlternate:
		for _, s := range re.Sub {
			if leadingAssertion(s) {
				return true
			}
		}
	case syntax.OpQuest, syntax.OpStar, syntax.OpRepeat, syntax.OpPlus:
		return leadingAssertion(re.Sub[0])
	}
	return false
}

func canBeEmpty(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText,
		syntax.OpWordBoundary, syntax.OpNoWordBoundary, syntax.OpQuest, syntax.OpStar:
		return true
	case syntax.OpRepeat:
		return re.Min == 0 || canBeEmpty(re.Sub[0])
	case syntax.OpCapture, syntax.OpPlus:
		return canBeEmpty(re.Sub[0])
	case syntax.OpConcat:
		for _, s := range re.Sub {
			if !canBeEmpty(s) {
				return false
			}
		}
		return true
	case syntax.OpAlternate:
		for _, s := range re.Sub {
			if canBeEmpty(s) {
				return true
			}
		}
	}
	return false
}

// Byte classes for NotBefore / NotAfter.

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

func isAlnum(b byte) bool {
	return isDigit(b) || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z')
}

// isWordByte treats every non-ASCII byte as part of a word, so a match
// glued to a letter like "é" has no word boundary either.
func isWordByte(b byte) bool { return isAlnum(b) || b == '_' || b >= 0x80 }

func isDigitOrSep(b byte) bool { return isDigit(b) || b == '-' || b == '.' }

func isAlnumOrDash(b byte) bool { return isAlnum(b) || b == '-' }

// All returns every rule of every filter.
func All() ([]Rule, error) {
	var b builder
	promptRules(&b)
	uriRules(&b)
	sdpRules(&b)
	raiRules(&b)
	if b.err != nil {
		return nil, b.err
	}
	return b.rules, nil
}
