package detectors

import (
	"regexp/syntax"
	"unicode"
)

// requiredLiterals returns strings of which every match of re contains at
// least one, in ASCII lower case, or nil if there is no such set. The
// scanner searches for these cheap anchors first and runs the regular
// expression only near them.
//
// Case folding is compared in ASCII only: a match spelled with one of the
// two non-ASCII characters that fold to ASCII letters (U+017F ſ and U+212A K)
// may be missed.
func requiredLiterals(re *syntax.Regexp) []string {
	switch re.Op {
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			if r >= unicode.MaxASCII && re.Flags&syntax.FoldCase != 0 && unicode.SimpleFold(r) != r {
				return nil // non-ASCII folding: not comparable in ASCII lower case
			}
		}
		return []string{asciiLower(string(re.Rune))}
	case syntax.OpCharClass:
		// A class of one letter in both cases, as (?i) makes of a single
		// letter.
		var rs []rune
		for i := 0; i+1 < len(re.Rune); i += 2 {
			for r := re.Rune[i]; r <= re.Rune[i+1]; r++ {
				rs = append(rs, r)
				if len(rs) > 3 {
					return nil
				}
			}
		}
		set := map[string]bool{}
		for _, r := range rs {
			if r >= unicode.MaxASCII && unicode.SimpleFold(r) != r && unicode.ToLower(r) < unicode.MaxASCII {
				continue // the Kelvin sign and long s: see above
			}
			set[asciiLower(string(r))] = true
		}
		if len(set) == 0 {
			return nil
		}
		var out []string
		for s := range set {
			out = append(out, s)
		}
		return out
	case syntax.OpCapture:
		return requiredLiterals(re.Sub[0])
	case syntax.OpPlus:
		return requiredLiterals(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return requiredLiterals(re.Sub[0])
		}
	case syntax.OpAlternate:
		var out []string
		for _, s := range re.Sub {
			l := requiredLiterals(s)
			if l == nil {
				return nil
			}
			out = append(out, l...)
		}
		return dedupe(out)
	case syntax.OpConcat:
		// Adjacent fixed parts join into one longer anchor: (?i)ignore
		// parses as literals and one-letter classes.
		var best []string
		bestScore := 0
		consider := func(l []string) {
			if l != nil && score(l) > bestScore {
				best, bestScore = l, score(l)
			}
		}
		run := ""
		for _, sub := range re.Sub {
			if fixedLen(sub) {
				run += requiredLiterals(sub)[0]
				continue
			}
			if run != "" {
				consider([]string{run})
				run = ""
			}
			consider(requiredLiterals(sub))
		}
		if run != "" {
			consider([]string{run})
		}
		return best
	}
	return nil
}

// fixedLen reports whether re always matches the same text, so that
// literal sets can be joined across it.
func fixedLen(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpLiteral:
		return true
	case syntax.OpCharClass:
		return len(requiredLiterals(re)) == 1
	case syntax.OpCapture:
		return fixedLen(re.Sub[0])
	}
	return false
}

// score prefers sets whose shortest member is long.
func score(set []string) int {
	shortest := 1 << 30
	for _, s := range set {
		shortest = min(shortest, len(s))
	}
	return shortest*16 - len(set)
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// firstBytes returns the bytes a match of re can begin with (all 256 when
// it could begin with anything), and whether re can match the empty string.
func firstBytes(re *syntax.Regexp) (set [256]bool, empty bool) {
	all := func() ([256]bool, bool) {
		var s [256]bool
		for i := range s {
			s[i] = true
		}
		return s, false
	}
	addRune := func(s *[256]bool, r rune) {
		if r < utf8RuneSelf {
			s[r] = true
			return
		}
		var buf [4]byte
		n := encodeRune(buf[:], r)
		if n > 0 {
			s[buf[0]] = true
		}
	}
	switch re.Op {
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText,
		syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return set, true
	case syntax.OpLiteral:
		if len(re.Rune) == 0 {
			return set, true
		}
		r := re.Rune[0]
		addRune(&set, r)
		if re.Flags&syntax.FoldCase != 0 {
			for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
				addRune(&set, f)
			}
		}
		return set, false
	case syntax.OpCharClass:
		for i := 0; i+1 < len(re.Rune); i += 2 {
			lo, hi := re.Rune[i], re.Rune[i+1]
			for r := lo; r <= hi && r < utf8RuneSelf; r++ {
				set[r] = true
			}
			if hi >= utf8RuneSelf {
				for b := 0xC2; b <= 0xF4; b++ { // every lead byte: conservative
					set[b] = true
				}
			}
		}
		return set, false
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return all()
	case syntax.OpCapture, syntax.OpPlus:
		return firstBytes(re.Sub[0])
	case syntax.OpQuest, syntax.OpStar:
		s, _ := firstBytes(re.Sub[0])
		return s, true
	case syntax.OpRepeat:
		s, e := firstBytes(re.Sub[0])
		return s, e || re.Min == 0
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			s, e := firstBytes(sub)
			for i, ok := range s {
				if ok {
					set[i] = true
				}
			}
			if !e {
				return set, false
			}
		}
		return set, true
	case syntax.OpAlternate:
		empty := false
		for _, sub := range re.Sub {
			s, e := firstBytes(sub)
			for i, ok := range s {
				if ok {
					set[i] = true
				}
			}
			empty = empty || e
		}
		return set, empty
	}
	return all()
}

const utf8RuneSelf = 0x80

func encodeRune(p []byte, r rune) int {
	s := string(r)
	return copy(p, s)
}

// goodAnchors keeps an anchor set only if it is selective: every anchor
// three bytes or more, or free of letters and digits ("@", "://").
func goodAnchors(set []string) []string {
	for _, a := range set {
		if len(a) >= 3 {
			continue
		}
		for i := 0; i < len(a); i++ {
			if isAlnum(a[i]) {
				return nil
			}
		}
	}
	return set
}
