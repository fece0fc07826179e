package threat

import (
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// JSONThreatErrorCode is the Apigee error code of every JSONThreatProtection
// fault; the faultstring says which limit was exceeded.
const JSONThreatErrorCode = "steps.jsonthreatprotection.ExecutionFailed"

// Names of the JSONThreatProtection limits, as used in JSONViolation.Limit.
const (
	LimitContainerDepth        = "ContainerDepth"
	LimitObjectEntryCount      = "ObjectEntryCount"
	LimitArrayElementCount     = "ArrayElementCount"
	LimitObjectEntryNameLength = "ObjectEntryNameLength"
	LimitStringValueLength     = "StringValueLength"
	// LimitInvalidJSON is not a limit: the payload is not JSON at all.
	LimitInvalidJSON = "InvalidJSON"
)

// The error types Apigee names in its JSONThreatProtection faultstrings
// (https://cloud.google.com/apigee/docs/api-platform/troubleshoot/policies/runtime/jsonthreatprotection-errors).
var jsonLimitMessages = map[string]string{
	LimitContainerDepth:        "Exceeded container depth",
	LimitObjectEntryCount:      "Exceeded object entry count",
	LimitArrayElementCount:     "Exceeded array element count",
	LimitObjectEntryNameLength: "Exceeded object entry name length",
	LimitStringValueLength:     "Exceeded string value length",
	LimitInvalidJSON:           "Invalid JSON object",
}

// JSONLimits are the limits of Apigee's JSONThreatProtection policy. A zero or
// negative limit is not enforced, as in Apigee, where a missing element or a
// negative value means "no limit".
//
// Semantics follow the Apigee policy reference
// (https://cloud.google.com/apigee/docs/api-platform/reference/policies/json-threat-protection-policy):
//   - ContainerDepth: the deepest nesting of containers (objects and arrays).
//     A top-level object is depth 1; an array holding an object holding an
//     object is depth 3. Scalars do not count.
//   - ObjectEntryCount: the most entries (name/value pairs) in any one object.
//   - ArrayElementCount: the most elements in any one array.
//   - ObjectEntryNameLength: the longest entry name, in characters.
//   - StringValueLength: the longest string value, in characters.
//
// Lengths are counted in characters after unescaping: "\u00e9" and "é" are one
// character each. A character is a Unicode code point, so a character outside
// the Basic Multilingual Plane (most emoji) counts once here, where Java's
// String.length, which Apigee may use, counts it twice. A byte that is not
// valid UTF-8 counts as one character, as it decodes to U+FFFD.
//
// Apigee runs the policy only when the message's Content-Type is
// application/json; that check belongs to the caller.
type JSONLimits struct {
	// ContainerDepth limits the nesting of objects and arrays.
	ContainerDepth int
	// ObjectEntryCount limits the entries of one object.
	ObjectEntryCount int
	// ArrayElementCount limits the elements of one array.
	ArrayElementCount int
	// ObjectEntryNameLength limits an entry name, in characters.
	ObjectEntryNameLength int
	// StringValueLength limits a string value, in characters.
	StringValueLength int
}

// JSONViolation says which limit a payload broke, or that it is not JSON.
type JSONViolation struct {
	// Limit is one of the Limit* names.
	Limit string
	// Line is the 1-based line of the offending token.
	Line int
	// Msg is Apigee's name for the error, for example "Exceeded container depth".
	Msg string
	// Detail adds what Apigee leaves out: "max 10 allowed, found 11", or the
	// syntax error of an invalid payload.
	Detail string
	// Max is the configured limit and Found the count at which the scan
	// stopped, which is Max+1: the scan stops at the first excess. Both are
	// zero for invalid JSON.
	Max, Found int
}

// Error describes the violation for logs.
func (v *JSONViolation) Error() string {
	if v.Detail == "" {
		return fmt.Sprintf("json threat: %s at line %d", v.Msg, v.Line)
	}
	return fmt.Sprintf("json threat: %s, %s at line %d", v.Msg, v.Detail, v.Line)
}

// ErrorCode returns the Apigee error code, steps.jsonthreatprotection.ExecutionFailed.
func (v *JSONViolation) ErrorCode() string { return JSONThreatErrorCode }

// FaultString returns the faultstring Apigee sends for this violation from the
// policy named policyName, in the documented form
//
//	JSONThreatProtection[JTP]: Execution failed. reason: JSONThreatProtection[JTP]: Exceeded container depth at line 1
//
// For invalid JSON the syntax error is appended to "Invalid JSON object".
func (v *JSONViolation) FaultString(policyName string) string {
	msg := v.Msg
	if v.Limit == LimitInvalidJSON && v.Detail != "" {
		msg += ": " + v.Detail
	}
	return fmt.Sprintf("JSONThreatProtection[%s]: Execution failed. reason: JSONThreatProtection[%s]: %s at line %d",
		policyName, policyName, msg, v.Line)
}

// Check reads a JSON document from r and reports the first limit it breaks,
// or nil if it is valid JSON within the limits. Invalid JSON, including an
// empty body or trailing data after the value, is a violation too.
//
// Check streams: it never builds values, keeps no more than one read buffer
// and a byte (plus, when ObjectEntryCount or ArrayElementCount is set, a
// counter) per open container, and stops reading at the first violation. A
// 100,000-level document is rejected at ContainerDepth+1 levels without
// reading further; a 50 MB string is rejected after StringValueLength+1
// characters without being buffered. It uses no recursion.
//
// A read error other than io.EOF is reported as invalid JSON whose Detail
// carries the error.
func (l JSONLimits) Check(r io.Reader) *JSONViolation {
	s := jsonScanner{r: r, lim: l, line: 1, buf: make([]byte, minJSONBuffer)}
	return s.run()
}

// maxJSONBuffer is the read buffer of a big body; a small one is read with
// minJSONBuffer.
const maxJSONBuffer = 32 << 10

// minJSONBuffer is the first read buffer.
const minJSONBuffer = 8 << 10

// jsonScanner is a byte-level JSON syntax checker driven by an explicit
// state, so nesting costs a byte of stack (kinds) rather than a Go call frame.
type jsonScanner struct {
	r        io.Reader
	lim      JSONLimits
	buf      []byte
	pos, end int
	rerr     error // sticky read error, io.EOF at the end
	line     int

	kinds  []byte  // '{' or '[' per open container
	counts []int32 // entries/elements per open container, when counted
}

// Parser states: what may come next.
const (
	stValue      = iota // a value (top level, after ':' or after ',' in an array)
	stValueOrEnd        // after '[': a value or ']'
	stKeyOrEnd          // after '{': a name or '}'
	stKey               // after ',' in an object: a name
	stColon             // after a name: ':'
	stCommaOrEnd        // after a value inside a container: ',' or the closer
	stDone              // after the top-level value: only whitespace
)

func (s *jsonScanner) counting() bool {
	return s.lim.ObjectEntryCount > 0 || s.lim.ArrayElementCount > 0
}

// fill reads more input; false at the end of input or on a read error.
func (s *jsonScanner) fill() bool {
	if s.rerr != nil {
		return false
	}
	if s.end == len(s.buf) && len(s.buf) < maxJSONBuffer {
		// The last read filled the buffer: the body is big, read bigger.
		s.buf = make([]byte, maxJSONBuffer)
	}
	for {
		n, err := s.r.Read(s.buf)
		s.pos, s.end = 0, n
		if err != nil {
			s.rerr = err
		}
		if n > 0 {
			return true
		}
		if err != nil {
			return false
		}
	}
}

// next skips whitespace and returns the next byte without consuming it.
func (s *jsonScanner) next() (byte, bool) {
	for {
		for s.pos < s.end {
			c := s.buf[s.pos]
			switch c {
			case ' ', '\t', '\r':
				s.pos++
			case '\n':
				s.line++
				s.pos++
			default:
				return c, true
			}
		}
		if !s.fill() {
			return 0, false
		}
	}
}

// ensure makes at least n unread bytes available, unless the input ends
// first, keeping the unread ones.
func (s *jsonScanner) ensure(n int) {
	if s.end-s.pos >= n || s.rerr != nil {
		return
	}
	copy(s.buf, s.buf[s.pos:s.end])
	s.end -= s.pos
	s.pos = 0
	for s.end-s.pos < n && s.rerr == nil {
		k, err := s.r.Read(s.buf[s.end:])
		s.end += k
		if err != nil {
			s.rerr = err
		}
	}
}

// peekRaw returns the next byte without skipping whitespace.
func (s *jsonScanner) peekRaw() (byte, bool) {
	if s.pos >= s.end && !s.fill() {
		return 0, false
	}
	return s.buf[s.pos], true
}

func (s *jsonScanner) limitViolation(limit string, max, found int) *JSONViolation {
	return &JSONViolation{
		Limit: limit, Line: s.line, Msg: jsonLimitMessages[limit],
		Detail: fmt.Sprintf("max %d allowed, found %d", max, found),
		Max:    max, Found: found,
	}
}

func (s *jsonScanner) invalid(format string, args ...any) *JSONViolation {
	detail := fmt.Sprintf(format, args...)
	if s.rerr != nil && !errors.Is(s.rerr, io.EOF) {
		detail = "read error: " + s.rerr.Error()
	}
	return &JSONViolation{Limit: LimitInvalidJSON, Line: s.line, Msg: jsonLimitMessages[LimitInvalidJSON], Detail: detail}
}

func (s *jsonScanner) unexpected(c byte, ok bool, want string) *JSONViolation {
	if !ok {
		return s.invalid("unexpected end of input, expecting %s", want)
	}
	return s.invalid("unexpected character %q, expecting %s", rune(c), want)
}

func (s *jsonScanner) run() *JSONViolation {
	state := stValue
	for {
		c, ok := s.next()
		switch state {
		case stDone:
			if !ok {
				if s.rerr != nil && !errors.Is(s.rerr, io.EOF) {
					return s.invalid("")
				}
				return nil
			}
			return s.invalid("unexpected character %q after the top-level value", rune(c))

		case stValueOrEnd:
			if ok && c == ']' {
				s.pos++
				state = s.pop()
				continue
			}
			if v := s.countMember(); v != nil {
				return v
			}
			fallthrough
		case stValue:
			if !ok {
				return s.unexpected(c, ok, "a value")
			}
			var v *JSONViolation
			state, v = s.value(c)
			if v != nil {
				return v
			}

		case stKeyOrEnd, stKey:
			if ok && c == '}' && state == stKeyOrEnd {
				s.pos++
				state = s.pop()
				continue
			}
			if !ok || c != '"' {
				if state == stKeyOrEnd {
					return s.unexpected(c, ok, "'\"' or '}'")
				}
				return s.unexpected(c, ok, "'\"'")
			}
			if v := s.countMember(); v != nil {
				return v
			}
			s.pos++
			if v := s.str(s.lim.ObjectEntryNameLength, LimitObjectEntryNameLength); v != nil {
				return v
			}
			state = stColon

		case stColon:
			if !ok || c != ':' {
				return s.unexpected(c, ok, "':'")
			}
			s.pos++
			state = stValue

		case stCommaOrEnd:
			top := s.kinds[len(s.kinds)-1]
			closer := byte('}')
			if top == '[' {
				closer = ']'
			}
			switch {
			case ok && c == closer:
				s.pos++
				state = s.pop()
			case ok && c == ',':
				s.pos++
				if top == '[' {
					if v := s.countMember(); v != nil {
						return v
					}
					state = stValue
				} else {
					state = stKey
				}
			default:
				return s.unexpected(c, ok, fmt.Sprintf("',' or '%c'", closer))
			}
		}
	}
}

// countMember counts one more entry or element in the innermost container.
func (s *jsonScanner) countMember() *JSONViolation {
	if !s.counting() {
		return nil
	}
	i := len(s.counts) - 1
	s.counts[i]++
	n := int(s.counts[i])
	if s.kinds[i] == '[' {
		if max := s.lim.ArrayElementCount; max > 0 && n > max {
			return s.limitViolation(LimitArrayElementCount, max, n)
		}
	} else if max := s.lim.ObjectEntryCount; max > 0 && n > max {
		return s.limitViolation(LimitObjectEntryCount, max, n)
	}
	return nil
}

// pop closes the innermost container and returns the state after it.
func (s *jsonScanner) pop() int {
	s.kinds = s.kinds[:len(s.kinds)-1]
	if s.counting() {
		s.counts = s.counts[:len(s.counts)-1]
	}
	if len(s.kinds) == 0 {
		return stDone
	}
	return stCommaOrEnd
}

func (s *jsonScanner) afterValue() int {
	if len(s.kinds) == 0 {
		return stDone
	}
	return stCommaOrEnd
}

// value consumes the value starting with c and returns the next state.
func (s *jsonScanner) value(c byte) (int, *JSONViolation) {
	switch {
	case c == '{' || c == '[':
		depth := len(s.kinds) + 1
		if max := s.lim.ContainerDepth; max > 0 && depth > max {
			return 0, s.limitViolation(LimitContainerDepth, max, depth)
		}
		s.pos++
		s.kinds = append(s.kinds, c)
		if s.counting() {
			s.counts = append(s.counts, 0)
		}
		if c == '{' {
			return stKeyOrEnd, nil
		}
		return stValueOrEnd, nil
	case c == '"':
		s.pos++
		if v := s.str(s.lim.StringValueLength, LimitStringValueLength); v != nil {
			return 0, v
		}
	case c == '-' || (c >= '0' && c <= '9'):
		if v := s.number(); v != nil {
			return 0, v
		}
	case c == 't':
		if v := s.literal("true"); v != nil {
			return 0, v
		}
	case c == 'f':
		if v := s.literal("false"); v != nil {
			return 0, v
		}
	case c == 'n':
		if v := s.literal("null"); v != nil {
			return 0, v
		}
	default:
		return 0, s.unexpected(c, true, "a value")
	}
	return s.afterValue(), nil
}

func (s *jsonScanner) literal(word string) *JSONViolation {
	for i := 0; i < len(word); i++ {
		c, ok := s.peekRaw()
		if !ok || c != word[i] {
			return s.unexpected(c, ok, fmt.Sprintf("%q", word))
		}
		s.pos++
	}
	return nil
}

// number consumes -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *jsonScanner) number() *JSONViolation {
	c, ok := s.peekRaw()
	if c == '-' {
		s.pos++
		c, ok = s.peekRaw()
	}
	switch {
	case ok && c == '0':
		s.pos++
	case ok && c >= '1' && c <= '9':
		s.digits()
	default:
		return s.unexpected(c, ok, "a digit")
	}
	if c, ok = s.peekRaw(); ok && c == '.' {
		s.pos++
		if c, ok = s.peekRaw(); !ok || c < '0' || c > '9' {
			return s.unexpected(c, ok, "a digit after '.'")
		}
		s.digits()
	}
	if c, ok = s.peekRaw(); ok && (c == 'e' || c == 'E') {
		s.pos++
		if c, ok = s.peekRaw(); ok && (c == '+' || c == '-') {
			s.pos++
		}
		if c, ok = s.peekRaw(); !ok || c < '0' || c > '9' {
			return s.unexpected(c, ok, "a digit in the exponent")
		}
		s.digits()
	}
	return nil
}

func (s *jsonScanner) digits() {
	for {
		c, ok := s.peekRaw()
		if !ok || c < '0' || c > '9' {
			return
		}
		s.pos++
	}
}

// str consumes a string whose opening quote is already consumed, counting
// characters, and fails as soon as the count passes max (when max > 0).
func (s *jsonScanner) str(max int, limit string) *JSONViolation {
	n := 0
	highSurrogate := false // the previous character was a \uD800-\uDBFF escape
	for {
		if s.pos >= s.end && !s.fill() {
			return s.invalid("unterminated string")
		}
		// Fast path over plain ASCII.
		b := s.buf[s.pos:s.end]
		i := 0
		for i < len(b) {
			c := b[i]
			if c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
				break
			}
			i++
		}
		s.pos += i
		if i > 0 {
			n += i
			highSurrogate = false
			if max > 0 && n > max {
				return s.limitViolation(limit, max, max+1)
			}
		}
		if i < len(b) && b[i] >= utf8.RuneSelf {
			// A multi-byte character, or an invalid byte, which counts as
			// one character as encoding/json (U+FFFD) and utf8.RuneCount do.
			s.ensure(utf8.UTFMax)
			_, size := utf8.DecodeRune(s.buf[s.pos:s.end])
			s.pos += size
			n++
			highSurrogate = false
			if max > 0 && n > max {
				return s.limitViolation(limit, max, max+1)
			}
			continue
		}
		if i == len(b) {
			continue
		}
		c := b[i]
		switch {
		case c == '"':
			s.pos++
			return nil
		case c < 0x20:
			return s.invalid("control character %q in string", rune(c))
		}
		// An escape.
		s.pos++
		e, ok := s.peekRaw()
		if !ok {
			return s.invalid("unterminated string")
		}
		s.pos++
		counted := true
		switch e {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			highSurrogate = false
		case 'u':
			var r rune
			for k := 0; k < 4; k++ {
				h, ok := s.peekRaw()
				if !ok {
					return s.invalid("unterminated string")
				}
				d, valid := hexVal(h)
				if !valid {
					return s.invalid("invalid hex digit %q in \\u escape", rune(h))
				}
				r = r<<4 | d
				s.pos++
			}
			switch {
			case r >= 0xDC00 && r <= 0xDFFF && highSurrogate:
				counted = false // second half of a pair: one character
				highSurrogate = false
			case r >= 0xD800 && r <= 0xDBFF:
				highSurrogate = true
			default:
				highSurrogate = false
			}
		default:
			return s.invalid("invalid escape %q", "\\"+string(rune(e)))
		}
		if counted {
			n++
			if max > 0 && n > max {
				return s.limitViolation(limit, max, max+1)
			}
		}
	}
}

func hexVal(c byte) (rune, bool) {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0'), true
	case c >= 'a' && c <= 'f':
		return rune(c-'a') + 10, true
	case c >= 'A' && c <= 'F':
		return rune(c-'A') + 10, true
	}
	return 0, false
}
