package threat

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// JavaRegexError says why a Java pattern cannot run on Go's RE2 engine.
type JavaRegexError struct {
	// Pattern is the Java pattern as written.
	Pattern string
	// Offset is the byte offset in Pattern of the construct at fault.
	Offset int
	// Reason says what is wrong and what to do about it.
	Reason string
}

// Error names the pattern, the offset and the reason.
func (e *JavaRegexError) Error() string {
	return fmt.Sprintf("java regex %q: at offset %d: %s", e.Pattern, e.Offset, e.Reason)
}

// TranslateJavaRegex compiles a java.util.regex pattern, as Apigee users
// write them in RegularExpressionProtection, into a Go regexp that accepts
// exactly the same inputs for a "does the input contain a match" test
// (Matcher.find, which is how the engine in this package uses patterns).
//
// Translated: \uXXXX, \0ooo, \cX, \e, \h, \H, \v, \V, \R, \Z, \p{Alpha} and
// the other POSIX and java.lang.Character classes that RE2 has under another
// name, \p{IsLatin}, \s and \S (Java's \s includes \x0B), '.' and '$' (Java
// excludes \r, \u0085, \u2028 and \u2029 from '.', and lets '$' match before
// a final line terminator), (?<name>...), the u flag (RE2 folds case
// Unicode-wide anyway), nested character classes that are plain unions
// ([a-d[m-p]]), and a possessive quantifier or atomic group as the last
// thing in the pattern (nothing follows it, so it cannot change whether a
// match exists).
//
// Refused, with an error that names the pattern and the reason: back
// references (\1, \k<name>), lookahead and lookbehind ((?=, (?!, (?<=, (?<!),
// atomic groups and possessive quantifiers followed by more pattern (their
// no-backtracking semantics changes what matches), character class
// intersection (&&), negated nested classes, the x (comments), d (UNIX_LINES)
// and U (UNICODE_CHARACTER_CLASS) flags, \G, \X, \N{...}, \b{g} and Unicode
// block properties (\p{InGreek}).
//
// Known approximations: in (?m) mode Java's ^ and $ also break lines at \r
// and \u0085/\u2028/\u2029, RE2 only at \n; and (?i) folds case
// Unicode-wide in RE2 but ASCII-only in Java without the u flag. Both make
// the translation match slightly more, never less.
func TranslateJavaRegex(p string) (*regexp.Regexp, error) {
	s, err := translateJava(p)
	if err != nil {
		return nil, err
	}
	re, err := regexp.Compile(s)
	if err != nil {
		return nil, &JavaRegexError{Pattern: p, Reason: "not a valid regular expression: " + err.Error()}
	}
	return re, nil
}

// Java line terminators, as '.', '$' and \R see them.
const (
	javaDot         = `[^\n\r\x{85}\x{2028}\x{2029}]`
	javaLineEnd     = `(?:(?:\r\n|[\n\r\x{85}\x{2028}\x{2029}])?\z)`
	javaMultiEnd    = `(?:$|[\r\x{85}\x{2028}\x{2029}])`
	javaMultiStart  = `(?:^|[\r\x{85}\x{2028}\x{2029}])`
	javaSpaceItems  = `\t\n\x0B\f\r `
	javaNotSpace    = `\x00-\x08\x0E-\x1F\x21-\x{10FFFF}`
	javaHSpaceItems = `\t \xA0\x{1680}\x{180e}\x{2000}-\x{200a}\x{202f}\x{205f}\x{3000}`
	javaNotHSpace   = `\x00-\x08\x0A-\x1F\x21-\x9F\xA1-\x{167F}\x{1681}-\x{180D}\x{180F}-\x{1FFF}\x{200B}-\x{202E}\x{2030}-\x{205E}\x{2060}-\x{2FFF}\x{3001}-\x{10FFFF}`
	javaVSpaceItems = `\n\x0B\f\r\x{85}\x{2028}\x{2029}`
	javaNotVSpace   = `\x00-\x09\x0E-\x{84}\x{86}-\x{2027}\x{202A}-\x{10FFFF}`
	javaLinebreak   = `(?:\r\n|[\n\x0B\f\r\x{85}\x{2028}\x{2029}])`
)

// javaPOSIX maps Java's \p{Name} POSIX and java.lang.Character classes to
// RE2 class items.
var javaPOSIX = map[string]string{
	"Lower": "[:lower:]", "Upper": "[:upper:]", "ASCII": "[:ascii:]", "Alpha": "[:alpha:]",
	"Digit": "[:digit:]", "Alnum": "[:alnum:]", "Punct": "[:punct:]", "Graph": "[:graph:]",
	"Print": "[:print:]", "Blank": "[:blank:]", "Cntrl": "[:cntrl:]", "XDigit": "[:xdigit:]",
	"Space": "[:space:]",
}

type javaFlags struct{ i, m, s, d bool }

type javaTranslator struct {
	src    string
	pos    int
	out    strings.Builder
	flags  javaFlags
	stack  []javaFlags
	groups []int // output offsets of open atomic groups' translated opener, -1 for others
}

func (t *javaTranslator) fail(at int, format string, args ...any) error {
	return &JavaRegexError{Pattern: t.src, Offset: at, Reason: fmt.Sprintf(format, args...)}
}

func translateJava(p string) (string, error) {
	t := &javaTranslator{src: p}
	if err := t.run(); err != nil {
		return "", err
	}
	return t.out.String(), nil
}

// restIsClosers reports whether only group closers follow position i, so a
// possessive quantifier or atomic group ending there is the last thing the
// pattern matches.
func (t *javaTranslator) restIsClosers(i int) bool {
	for ; i < len(t.src); i++ {
		if t.src[i] != ')' {
			return false
		}
	}
	return true
}

func (t *javaTranslator) run() error {
	for t.pos < len(t.src) {
		c := t.src[t.pos]
		switch c {
		case '\\':
			if err := t.escape(false); err != nil {
				return err
			}
		case '[':
			if err := t.class(); err != nil {
				return err
			}
		case '(':
			if err := t.open(); err != nil {
				return err
			}
		case ')':
			if len(t.stack) > 0 {
				t.flags = t.stack[len(t.stack)-1]
				t.stack = t.stack[:len(t.stack)-1]
			}
			if n := len(t.groups); n > 0 {
				atomic := t.groups[n-1] >= 0
				t.groups = t.groups[:n-1]
				if atomic && !t.restIsClosers(t.pos+1) {
					return t.fail(t.pos, "atomic group (?> is followed by more pattern; RE2 always backtracks, so it cannot be translated (drop the ?> if backtracking is acceptable)")
				}
			}
			t.out.WriteByte(')')
			t.pos++
		case '.':
			if t.flags.s || t.flags.d {
				t.out.WriteByte('.')
			} else {
				t.out.WriteString(javaDot)
			}
			t.pos++
		case '$':
			switch {
			case t.flags.d:
				if t.flags.m {
					t.out.WriteByte('$')
				} else {
					t.out.WriteString(`(?:\n?\z)`)
				}
			case t.flags.m:
				t.out.WriteString(javaMultiEnd)
			default:
				t.out.WriteString(javaLineEnd)
			}
			t.pos++
		case '^':
			if t.flags.m && !t.flags.d {
				t.out.WriteString(javaMultiStart)
			} else {
				t.out.WriteByte('^')
			}
			t.pos++
		case '*', '+', '?', '{':
			if err := t.quantifier(); err != nil {
				return err
			}
		default:
			t.out.WriteByte(c)
			t.pos++
		}
	}
	return nil
}

// quantifier copies a quantifier and handles Java's lazy (?) and possessive
// (+) suffixes.
func (t *javaTranslator) quantifier() error {
	start := t.pos
	if t.src[t.pos] == '{' {
		end := strings.IndexByte(t.src[t.pos:], '}')
		if end < 0 || !isRepeat(t.src[t.pos+1:t.pos+end]) {
			// Not a repetition: Java rejects it, RE2 takes '{' literally.
			return t.fail(t.pos, "'{' does not start a valid repetition {n}, {n,} or {n,m}; escape it as \\{")
		}
		t.pos += end + 1
	} else {
		t.pos++
	}
	t.out.WriteString(t.src[start:t.pos])
	if t.pos < len(t.src) {
		switch t.src[t.pos] {
		case '?':
			t.out.WriteByte('?')
			t.pos++
		case '+':
			if !t.restIsClosers(t.pos + 1) {
				return t.fail(start, "possessive quantifier %q is followed by more pattern; RE2 has no possessive quantifiers and the greedy form can match where Java's does not", t.src[start:t.pos+1])
			}
			t.pos++ // last in the pattern: greedy accepts the same inputs
		}
	}
	return nil
}

func isRepeat(s string) bool {
	lo, hi, comma := s, "", false
	if i := strings.IndexByte(s, ','); i >= 0 {
		lo, hi, comma = s[:i], s[i+1:], true
	}
	if !allDigits(lo) || lo == "" {
		return false
	}
	return !comma || hi == "" || allDigits(hi)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// open handles '(' and the Java group constructs.
func (t *javaTranslator) open() error {
	rest := t.src[t.pos:]
	t.stack = append(t.stack, t.flags)
	switch {
	case strings.HasPrefix(rest, "(?="), strings.HasPrefix(rest, "(?!"):
		return t.fail(t.pos, "lookahead %q is not supported by RE2 (Go regexp has no lookaround); rewrite the pattern without it", rest[:3])
	case strings.HasPrefix(rest, "(?<="), strings.HasPrefix(rest, "(?<!"):
		return t.fail(t.pos, "lookbehind %q is not supported by RE2 (Go regexp has no lookaround); rewrite the pattern without it", rest[:4])
	case strings.HasPrefix(rest, "(?>"):
		t.groups = append(t.groups, t.out.Len())
		t.out.WriteString("(?:")
		t.pos += 3
		return nil
	case strings.HasPrefix(rest, "(?<"):
		end := strings.IndexByte(rest, '>')
		if end < 0 {
			return t.fail(t.pos, "unterminated group name")
		}
		t.groups = append(t.groups, -1)
		t.out.WriteString("(?P<" + rest[3:end] + ">")
		t.pos += end + 1
		return nil
	case strings.HasPrefix(rest, "(?"):
		return t.flagGroup()
	}
	t.groups = append(t.groups, -1)
	t.out.WriteByte('(')
	t.pos++
	return nil
}

// flagGroup handles (?flags) and (?flags:...).
func (t *javaTranslator) flagGroup() error {
	at := t.pos
	i := t.pos + 2
	on := true
	f := t.flags
	var kept strings.Builder
	for ; i < len(t.src) && t.src[i] != ')' && t.src[i] != ':'; i++ {
		switch c := t.src[i]; c {
		case '-':
			on = false
			kept.WriteByte('-')
		case 'i', 'm', 's':
			switch c {
			case 'i':
				f.i = on
			case 'm':
				f.m = on
			case 's':
				f.s = on
			}
			kept.WriteByte(c)
		case 'd':
			f.d = on
		case 'u':
			// Unicode-aware case folding: RE2's (?i) already is.
		case 'x':
			return t.fail(at, "flag x (COMMENTS) is not supported by RE2; remove the whitespace and # comments and the flag")
		case 'U':
			return t.fail(at, "flag U (UNICODE_CHARACTER_CLASS) is not supported; in RE2 U means ungreedy. Use \\p{L} and similar classes instead")
		default:
			return t.fail(at, "unknown group construct or flag %q", string(c))
		}
	}
	if i >= len(t.src) {
		return t.fail(at, "unterminated group")
	}
	flags := strings.TrimSuffix(kept.String(), "-")
	if t.src[i] == ')' {
		// (?flags): applies to the rest of the enclosing group.
		t.stack = t.stack[:len(t.stack)-1]
		t.flags = f
		if flags != "" {
			t.out.WriteString("(?" + flags + ")")
		}
		t.pos = i + 1
		return nil
	}
	t.flags = f
	t.groups = append(t.groups, -1)
	if flags != "" {
		t.out.WriteString("(?" + flags + ":")
	} else {
		t.out.WriteString("(?:")
	}
	t.pos = i + 1
	return nil
}

// escape translates the escape at t.pos. In a class it writes class items.
func (t *javaTranslator) escape(inClass bool) error {
	at := t.pos
	if t.pos+1 >= len(t.src) {
		return t.fail(at, "trailing backslash")
	}
	c := t.src[t.pos+1]
	t.pos += 2
	emitRune := func(r rune) { t.out.WriteString(fmt.Sprintf(`\x{%x}`, r)) }
	switch c {
	case '1', '2', '3', '4', '5', '6', '7', '8', '9':
		if inClass {
			return t.fail(at, "escape \\%c in a character class is ambiguous; write \\x{..}", c)
		}
		return t.fail(at, "back reference \\%c is not supported by RE2 (Go regexp has no back references)", c)
	case 'k':
		return t.fail(at, "named back reference \\k is not supported by RE2 (Go regexp has no back references)")
	case '0':
		j := t.pos
		for j < len(t.src) && j < t.pos+3 && t.src[j] >= '0' && t.src[j] <= '7' {
			j++
		}
		if j == t.pos {
			return t.fail(at, "\\0 must be followed by octal digits")
		}
		v, _ := strconv.ParseUint(t.src[t.pos:j], 8, 32)
		if v > 0377 { // Java takes three digits only up to \0377
			j--
			v, _ = strconv.ParseUint(t.src[t.pos:j], 8, 32)
		}
		t.pos = j
		emitRune(rune(v))
	case 'Q':
		end := strings.Index(t.src[t.pos:], `\E`)
		lit := t.src[t.pos:]
		if end >= 0 {
			lit = t.src[t.pos : t.pos+end]
			t.pos += end + 2
		} else {
			t.pos = len(t.src)
		}
		if inClass {
			for _, r := range lit {
				emitRune(r)
			}
		} else {
			t.out.WriteString("(?:" + regexp.QuoteMeta(lit) + ")")
		}
	case 'E':
		// A stray \E ends nothing; Java ignores it.
	case 'p', 'P':
		return t.property(at, c == 'P', inClass)
	case 's', 'S', 'h', 'H', 'v', 'V':
		set := map[byte][2]string{
			's': {javaSpaceItems, javaNotSpace},
			'h': {javaHSpaceItems, javaNotHSpace},
			'v': {javaVSpaceItems, javaNotVSpace},
		}[c|0x20] // lower case
		items, negItems := set[0], set[1]
		neg := c >= 'A' && c <= 'Z'
		switch {
		case inClass && !neg:
			t.out.WriteString(items)
		case inClass:
			t.out.WriteString(negItems)
		case !neg:
			t.out.WriteString("[" + items + "]")
		default:
			t.out.WriteString("[^" + items + "]")
		}
	case 'R':
		if inClass {
			return t.fail(at, "\\R is not allowed in a character class")
		}
		t.out.WriteString(javaLinebreak)
	case 'Z':
		if inClass {
			return t.fail(at, "\\Z is not allowed in a character class")
		}
		t.out.WriteString(javaLineEnd)
	case 'e':
		emitRune(0x1B)
	case 'a':
		emitRune(0x07)
	case 'c':
		if t.pos >= len(t.src) {
			return t.fail(at, "\\c needs a control character letter")
		}
		emitRune(rune(t.src[t.pos] ^ 64))
		t.pos++
	case 'u':
		if t.pos+4 > len(t.src) {
			return t.fail(at, "\\u needs four hex digits")
		}
		v, err := strconv.ParseUint(t.src[t.pos:t.pos+4], 16, 32)
		if err != nil {
			return t.fail(at, "\\u needs four hex digits")
		}
		t.pos += 4
		emitRune(rune(v))
	case 'x':
		var hex string
		if t.pos < len(t.src) && t.src[t.pos] == '{' {
			end := strings.IndexByte(t.src[t.pos:], '}')
			if end < 0 {
				return t.fail(at, "unterminated \\x{")
			}
			hex = t.src[t.pos+1 : t.pos+end]
			t.pos += end + 1
		} else {
			if t.pos+2 > len(t.src) {
				return t.fail(at, "\\x needs two hex digits")
			}
			hex = t.src[t.pos : t.pos+2]
			t.pos += 2
		}
		v, err := strconv.ParseUint(hex, 16, 32)
		if err != nil || v > utf8.MaxRune {
			return t.fail(at, "bad hex escape \\x%s", hex)
		}
		emitRune(rune(v))
	case 'b':
		if strings.HasPrefix(t.src[t.pos:], "{g}") {
			return t.fail(at, "grapheme boundary \\b{g} is not supported by RE2")
		}
		if inClass {
			return t.fail(at, "\\b is not allowed in a character class")
		}
		t.out.WriteString(`\b`)
	case 'd', 'D', 'w', 'W', 't', 'n', 'r', 'f':
		t.out.WriteString(`\` + string(c))
	case 'B', 'A', 'z':
		if inClass {
			return t.fail(at, "\\%c is not allowed in a character class", c)
		}
		t.out.WriteString(`\` + string(c))
	case 'G':
		return t.fail(at, "\\G (end of previous match) is not supported by RE2")
	case 'X':
		return t.fail(at, "\\X (grapheme cluster) is not supported by RE2")
	case 'N':
		return t.fail(at, "\\N{name} is not supported by RE2; write the character or \\x{..}")
	default:
		r, size := utf8.DecodeRuneInString(t.src[t.pos-1:])
		t.pos += size - 1
		if r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return t.fail(at, "unknown escape \\%c", r)
		}
		if inClass {
			emitRune(r)
		} else {
			t.out.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	return nil
}

// property translates \p{..} / \P{..} (and \pL).
func (t *javaTranslator) property(at int, neg, inClass bool) error {
	var name string
	switch {
	case t.pos < len(t.src) && t.src[t.pos] == '{':
		end := strings.IndexByte(t.src[t.pos:], '}')
		if end < 0 {
			return t.fail(at, "unterminated \\p{")
		}
		name = t.src[t.pos+1 : t.pos+end]
		t.pos += end + 1
	case t.pos < len(t.src):
		name = t.src[t.pos : t.pos+1]
		t.pos++
	default:
		return t.fail(at, "\\p needs a property name")
	}
	if strings.HasPrefix(name, "In") {
		return t.fail(at, "Unicode block property \\p{%s} is not supported by RE2; use a script (\\p{Greek}) or a range", name)
	}
	if strings.HasPrefix(name, "java") {
		return t.fail(at, "java.lang.Character property \\p{%s} is not supported by RE2", name)
	}
	if posix, ok := javaPOSIX[name]; ok {
		item := posix
		if neg {
			item = "[:^" + posix[2:]
		}
		if inClass {
			t.out.WriteString(item)
		} else {
			t.out.WriteString("[" + item + "]")
		}
		return nil
	}
	name = strings.TrimPrefix(strings.TrimPrefix(name, "Is"), "general_category=")
	name = strings.TrimPrefix(strings.TrimPrefix(name, "script="), "sc=")
	name = strings.TrimPrefix(name, "gc=")
	if _, err := regexp.Compile(`\p{` + name + `}`); err != nil {
		return t.fail(at, "property \\p{%s} is not supported by RE2", name)
	}
	p := `\p{`
	if neg {
		p = `\P{`
	}
	t.out.WriteString(p + name + "}")
	return nil
}

// class translates a Java character class, flattening nested unions.
func (t *javaTranslator) class() error {
	at := t.pos
	t.pos++ // '['
	t.out.WriteByte('[')
	if t.pos < len(t.src) && t.src[t.pos] == '^' {
		t.out.WriteByte('^')
		t.pos++
	}
	if err := t.classBody(at, true); err != nil {
		return err
	}
	t.out.WriteByte(']')
	return nil
}

// classBody copies class items up to and including the closing ']'.
func (t *javaTranslator) classBody(at int, outer bool) error {
	first := true
	for {
		if t.pos >= len(t.src) {
			return t.fail(at, "unterminated character class")
		}
		c := t.src[t.pos]
		switch {
		case c == ']' && !first:
			t.pos++
			return nil
		case c == ']':
			t.out.WriteString(`\]`) // ']' first in a class is literal in Java and RE2
			t.pos++
		case c == '&' && strings.HasPrefix(t.src[t.pos:], "&&"):
			return t.fail(t.pos, "character class intersection && is not supported by RE2; list the characters instead")
		case c == '[':
			if strings.HasPrefix(t.src[t.pos:], "[^") {
				return t.fail(t.pos, "negated nested character class is not supported by RE2")
			}
			t.pos++
			if err := t.classBody(t.pos-1, false); err != nil {
				return err
			}
		case c == '\\':
			if err := t.escape(true); err != nil {
				return err
			}
		default:
			r, size := utf8.DecodeRuneInString(t.src[t.pos:])
			t.pos += size
			t.out.WriteRune(r)
		}
		first = false
	}
}
