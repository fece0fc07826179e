package threat

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Error codes of RegularExpressionProtection faults, from Apigee's policy
// error reference.
const (
	RegexThreatDetected           = "steps.regexprotection.ThreatDetected"
	RegexExecutionFailed          = "steps.regexprotection.ExecutionFailed"
	RegexVariableResolutionFailed = "steps.regexprotection.VariableResolutionFailed"
)

// TargetKind says which part of a request a rule inspects; the kinds are the
// child elements of Apigee's RegularExpressionProtection policy.
type TargetKind int

// The target kinds.
const (
	TargetURIPath     TargetKind = iota + 1 // <URIPath>: the request path
	TargetQueryParam                        // <QueryParam name="...">
	TargetHeader                            // <Header name="...">
	TargetFormParam                         // <FormParam name="...">: form-encoded body fields
	TargetVariable                          // <Variable name="...">: a flow variable, e.g. request.content
	TargetJSONPayload                       // <JSONPayload><JSONPath><Expression>
	TargetXMLPayload                        // <XMLPayload><XPath><Expression>
)

// String returns the policy element name: URIPath, QueryParam, ...
func (k TargetKind) String() string {
	switch k {
	case TargetURIPath:
		return "URIPath"
	case TargetQueryParam:
		return "QueryParam"
	case TargetHeader:
		return "Header"
	case TargetFormParam:
		return "FormParam"
	case TargetVariable:
		return "Variable"
	case TargetJSONPayload:
		return "JSONPayload"
	case TargetXMLPayload:
		return "XMLPayload"
	}
	return fmt.Sprintf("TargetKind(%d)", int(k))
}

// Target is where a rule's patterns apply.
type Target struct {
	// Kind is the part of the request.
	Kind TargetKind
	// Name is the query parameter, header, form parameter or variable name.
	// An empty Name on QueryParam, Header or FormParam means every one of
	// them (a gatecheck extension; Apigee requires a name).
	Name string
	// Expression is the JSONPath of a JSONPayload target or the XPath of an
	// XMLPayload target.
	Expression string
}

// String describes the target for messages: "QueryParam q".
func (t Target) String() string {
	switch {
	case t.Expression != "":
		return t.Kind.String() + " " + t.Expression
	case t.Name != "":
		return t.Kind.String() + " " + t.Name
	}
	return t.Kind.String()
}

// Pattern is a Java regular expression as written in the policy and its Go
// translation.
type Pattern struct {
	// Source is the Java pattern as written in the policy.
	Source string
	// Regexp is its translation (see TranslateJavaRegex).
	Regexp *regexp.Regexp
}

// CompilePattern translates a Java pattern with TranslateJavaRegex.
func CompilePattern(javaRegex string) (Pattern, error) {
	re, err := TranslateJavaRegex(javaRegex)
	if err != nil {
		return Pattern{}, err
	}
	return Pattern{Source: javaRegex, Regexp: re}, nil
}

// Rule applies patterns to one target.
type Rule struct {
	// Target is where the patterns apply.
	Target Target
	// Patterns are tried in order; the first match is the violation.
	Patterns []Pattern
}

// Rules is the compiled content of a RegularExpressionProtection policy.
type Rules struct {
	// IgnoreUnresolvedVariables, like the policy element of that name, makes
	// a Variable target whose variable is unknown match nothing instead of
	// failing with steps.regexprotection.VariableResolutionFailed.
	IgnoreUnresolvedVariables bool

	rules []compiledRule
}

type compiledRule struct {
	Rule
	jsonPath *JSONPath
	xpath    *xpathExpr
	pre      []*prefilter // per pattern; nil: always run (see prefilter.go)
}

// NewRules validates and compiles rules: every rule needs a pattern, JSON
// and XML targets an expression that compiles, named targets a name where
// Apigee requires one.
func NewRules(rules ...Rule) (*Rules, error) {
	if len(rules) == 0 {
		return nil, errors.New("regex rules: at least one of URIPath, QueryParam, Header, FormParam, Variable, XMLPayload, JSONPayload is required")
	}
	out := &Rules{}
	for i, r := range rules {
		if len(r.Patterns) == 0 {
			return nil, fmt.Errorf("regex rule %d (%s): no patterns to enforce", i, r.Target)
		}
		for j, p := range r.Patterns {
			if p.Regexp == nil {
				return nil, fmt.Errorf("regex rule %d (%s): pattern %d %q is not compiled; use CompilePattern", i, r.Target, j, p.Source)
			}
		}
		cr := compiledRule{Rule: r, pre: make([]*prefilter, len(r.Patterns))}
		for j, p := range r.Patterns {
			cr.pre[j] = newPrefilter(p.Regexp)
		}
		switch r.Target.Kind {
		case TargetURIPath, TargetQueryParam, TargetHeader, TargetFormParam:
		case TargetVariable:
			if r.Target.Name == "" {
				return nil, fmt.Errorf("regex rule %d: Variable needs a name", i)
			}
		case TargetJSONPayload:
			if r.Target.Expression == "" {
				return nil, fmt.Errorf("regex rule %d: empty JSONPath expression", i)
			}
			jp, err := CompileJSONPath(r.Target.Expression)
			if err == nil {
				jp.FoldCase()
			}
			if err != nil {
				return nil, fmt.Errorf("regex rule %d: %w", i, err)
			}
			cr.jsonPath = jp
		case TargetXMLPayload:
			if r.Target.Expression == "" {
				return nil, fmt.Errorf("regex rule %d: empty XPath expression", i)
			}
			xp, err := compileXPath(r.Target.Expression)
			if err != nil {
				return nil, fmt.Errorf("regex rule %d: %w", i, err)
			}
			cr.xpath = xp
		default:
			return nil, fmt.Errorf("regex rule %d: unknown target kind %d", i, r.Target.Kind)
		}
		out.rules = append(out.rules, cr)
	}
	return out, nil
}

// RequestView is the part of a request the regex rules read.
type RequestView struct {
	// Method is the HTTP method (request.verb).
	Method string
	// Path is the request path as sent, without the query, still
	// percent-encoded.
	Path string
	// RawQuery is the query as sent, without '?'. When it is set, query
	// parameters are read from it, so each value is tested raw and decoded;
	// otherwise from Query.
	RawQuery string
	// Query holds parsed (once-decoded) parameters, used when RawQuery is
	// empty.
	Query url.Values
	// Header holds the request headers.
	Header http.Header
	// ContentType is the body's media type, with parameters.
	ContentType string
	// Body is the whole request body.
	Body []byte
	// Vars resolves flow variables other than the request.* ones the engine
	// knows (request.content, request.uri, request.path, request.querystring,
	// request.verb, request.header.NAME, request.queryparam.NAME,
	// request.formparam.NAME).
	Vars map[string]string
}

// RegexViolation is a RegularExpressionProtection fault.
type RegexViolation struct {
	// Code is RegexThreatDetected, RegexExecutionFailed or
	// RegexVariableResolutionFailed.
	Code string
	// Target is the rule's target.
	Target Target
	// Pattern is the Java source of the pattern that matched.
	Pattern string
	// Input is the value that matched, in the form that matched.
	Input string
	// Decoded says Input is a decoded form of the value sent.
	Decoded bool
	// Reason explains an ExecutionFailed or VariableResolutionFailed fault.
	Reason string
}

// maxFaultInput bounds how much of the matching input a faultstring echoes.
const maxFaultInput = 512

// Error describes the violation for logs.
func (v *RegexViolation) Error() string {
	if v.Code == RegexThreatDetected {
		dec := ""
		if v.Decoded {
			dec = " (URL-decoded)"
		}
		return fmt.Sprintf("regex threat in %s%s: pattern %q matched %q", v.Target, dec, v.Pattern, truncate(v.Input, maxFaultInput))
	}
	return fmt.Sprintf("regex protection failed: %s", v.Reason)
}

// ErrorCode returns v.Code.
func (v *RegexViolation) ErrorCode() string { return v.Code }

// FaultString returns Apigee's faultstring for the violation, raised by the
// policy named policyName:
//
//	Regular Expression Threat Detected in REP: regex: <pattern> input: <input>
//
// The echoed input is cut to 512 bytes.
func (v *RegexViolation) FaultString(policyName string) string {
	switch v.Code {
	case RegexThreatDetected:
		return fmt.Sprintf("Regular Expression Threat Detected in %s: regex: %s input: %s", policyName, v.Pattern, truncate(v.Input, maxFaultInput))
	case RegexVariableResolutionFailed:
		return fmt.Sprintf("Failed to resolve variable %s", v.Target.Name)
	}
	return fmt.Sprintf("Failed to execute the RegularExpressionProtection StepDefinition %s. Reason: %s", policyName, v.Reason)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// Check tests the request against the rules in order and returns the first
// match, or nil. Patterns are searched for anywhere in a value
// (Matcher.find). Because attackers encode payloads, every value is tested
// as sent and decoded: a query or form field read off the wire raw, then as
// the application sees it ('+' as space), then percent-decoded once more (a
// double-encoded %253Cscript%253E is tested as <script>); any other value as
// given and percent-decoded once.
//
// JSONPayload rules apply only when ContentType is JSON (application/json or
// a +json type), XMLPayload rules only when it is XML and FormParam rules only
// when it is application/x-www-form-urlencoded, as in Apigee. A JSON or XML
// body that does not parse is an ExecutionFailed fault.
func (r *Rules) Check(req RequestView) *RegexViolation {
	st := checkState{req: req}
	for _, rule := range r.rules {
		var v *RegexViolation
		switch rule.Target.Kind {
		case TargetURIPath:
			v = matchValues(rule, []string{req.Path}, false)
		case TargetQueryParam:
			v = st.params(rule, st.query(), req.RawQuery != "")
		case TargetHeader:
			v = st.headers(rule)
		case TargetFormParam:
			if isMedia(req.ContentType, "application/x-www-form-urlencoded", "") {
				v = st.params(rule, st.form(), true)
			}
		case TargetVariable:
			val, ok := st.variable(rule.Target.Name)
			switch {
			case ok:
				v = matchValues(rule, []string{val}, false)
			case !r.IgnoreUnresolvedVariables:
				v = &RegexViolation{Code: RegexVariableResolutionFailed, Target: rule.Target, Reason: "failed to resolve variable " + rule.Target.Name}
			}
		case TargetJSONPayload:
			if !IsJSONBody(req.ContentType, req.Body) {
				continue
			}
			doc, err := st.json()
			if err != nil {
				return &RegexViolation{Code: RegexExecutionFailed, Target: rule.Target, Reason: "the JSON payload does not parse: " + err.Error()}
			}
			v = matchValues(rule, rule.jsonPath.Strings(doc), false)
		case TargetXMLPayload:
			if !isMedia(req.ContentType, "application/xml", "+xml") && !isMedia(req.ContentType, "text/xml", "") {
				continue
			}
			vals, err := rule.xpath.eval(req.Body)
			if err != nil {
				return &RegexViolation{Code: RegexExecutionFailed, Target: rule.Target, Reason: "the XML payload does not parse: " + err.Error()}
			}
			v = matchValues(rule, vals, false)
		}
		if v != nil {
			return v
		}
	}
	return nil
}

// checkState caches what several rules read from one request.
type checkState struct {
	req        RequestView
	q, f       []param
	qDone      bool
	fDone      bool
	doc        any
	docErr     error
	docDecoded bool
}

// param is one query or form field: its decoded name and its value, as
// sent on the wire when split from a raw query or body, else as given.
type param struct {
	name string
	raw  string
}

func (s *checkState) query() []param {
	if !s.qDone {
		s.qDone = true
		if s.req.RawQuery != "" {
			s.q = splitParams(s.req.RawQuery)
		} else {
			for _, k := range sortedValueKeys(s.req.Query) {
				for _, v := range s.req.Query[k] {
					s.q = append(s.q, param{name: k, raw: v})
				}
			}
		}
	}
	return s.q
}

func (s *checkState) form() []param {
	if !s.fDone {
		s.fDone = true
		s.f = splitParams(string(s.req.Body))
	}
	return s.f
}

func sortedValueKeys(v url.Values) []string {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// splitParams splits a&b=c into fields without decoding the values.
func splitParams(s string) []param {
	var out []param
	for s != "" {
		var kv string
		kv, s, _ = strings.Cut(s, "&")
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		if dk, err := url.QueryUnescape(k); err == nil {
			k = dk
		}
		out = append(out, param{name: k, raw: v})
	}
	return out
}

func (s *checkState) params(rule compiledRule, ps []param, wire bool) *RegexViolation {
	var vals []string
	for _, p := range ps {
		if rule.Target.Name == "" || p.name == rule.Target.Name {
			vals = append(vals, p.raw)
		}
	}
	return matchValues(rule, vals, wire)
}

func (s *checkState) headers(rule compiledRule) *RegexViolation {
	var vals []string
	if rule.Target.Name == "" {
		keys := make([]string, 0, len(s.req.Header))
		for k := range s.req.Header {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			vals = append(vals, s.req.Header[k]...)
		}
	} else {
		vals = s.req.Header.Values(rule.Target.Name)
	}
	return matchValues(rule, vals, false)
}

func (s *checkState) json() (any, error) {
	if !s.docDecoded {
		s.docDecoded = true
		d := json.NewDecoder(bytes.NewReader(s.req.Body))
		d.UseNumber()
		s.docErr = d.Decode(&s.doc)
		if s.docErr == nil {
			if _, err := d.Token(); err != io.EOF {
				s.docErr = errors.New("data after the top-level value")
			}
		}
	}
	return s.doc, s.docErr
}

// variable resolves the request.* variables and then req.Vars.
func (s *checkState) variable(name string) (string, bool) {
	req := s.req
	switch name {
	case "request.content", "message.content":
		return string(req.Body), true
	case "request.path":
		return req.Path, true
	case "request.uri":
		if q := s.rawQuery(); q != "" {
			return req.Path + "?" + q, true
		}
		return req.Path, true
	case "request.querystring":
		return s.rawQuery(), true
	case "request.verb":
		return req.Method, true
	}
	first := func(ps []param, key string) (string, bool) {
		for _, p := range ps {
			if p.name == key {
				return p.raw, true
			}
		}
		return "", false
	}
	// A missing header or parameter resolves to "": the variable is known,
	// the request just does not carry it.
	switch {
	case strings.HasPrefix(name, "request.header."):
		return strings.Join(req.Header.Values(strings.TrimPrefix(name, "request.header.")), ", "), true
	case strings.HasPrefix(name, "request.queryparam."):
		v, _ := first(s.query(), strings.TrimPrefix(name, "request.queryparam."))
		return v, true
	case strings.HasPrefix(name, "request.formparam."):
		v, _ := first(s.form(), strings.TrimPrefix(name, "request.formparam."))
		return v, true
	}
	v, ok := req.Vars[name]
	return v, ok
}

func (s *checkState) rawQuery() string {
	if s.req.RawQuery != "" {
		return s.req.RawQuery
	}
	return s.req.Query.Encode()
}

// matchValues tests each value as given and then decoded: a value taken
// off the wire (wire is true: query and form fields split from the raw
// query or body) is tested raw, transport-decoded ('+' as space) and then
// percent-decoded once more; any other value is tested as given and
// percent-decoded once.
func matchValues(rule compiledRule, vals []string, wire bool) *RegexViolation {
	for _, val := range vals {
		forms := []string{val}
		if wire {
			if dec, err := url.QueryUnescape(val); err == nil && dec != val {
				forms = append(forms, dec)
			}
		}
		if dec, ok := decodeOnce(forms[len(forms)-1]); ok {
			forms = append(forms, dec)
		}
		for i, f := range forms {
			if v := matchOne(rule, f, i > 0); v != nil {
				return v
			}
		}
	}
	return nil
}

func matchOne(rule compiledRule, val string, decoded bool) *RegexViolation {
	folded, haveFolded := "", false
	for i, p := range rule.Patterns {
		if pre := rule.pre[i]; pre != nil {
			if !haveFolded {
				folded, haveFolded = foldString(val), true
			}
			if !pre.mayMatch(folded) {
				continue // it holds none of the literals every match needs
			}
		}
		if p.Regexp.MatchString(val) {
			return &RegexViolation{Code: RegexThreatDetected, Target: rule.Target, Pattern: p.Source, Input: val, Decoded: decoded}
		}
	}
	return nil
}

// decodeOnce percent-decodes s; ok is false when s has nothing to decode
// or is not valid percent-encoding.
func decodeOnce(s string) (string, bool) {
	if !strings.ContainsRune(s, '%') {
		return "", false
	}
	dec, err := url.PathUnescape(s)
	if err != nil || dec == s {
		return "", false
	}
	return dec, true
}

// isMedia reports whether contentType is typ or ends with suffix (e.g. +json).
// IsJSONBody reports whether a body is to be checked as JSON: its
// Content-Type says JSON, or it says something else (none, text/plain,
// application/octet-stream, ...) and the body is a valid JSON object or array.
// Apigee's policies look only at the Content-Type, but model servers parse
// the body as JSON whatever it says, so a check that trusted the header could
// be skipped by changing it. A body that is not valid JSON is no threat to a
// JSON parser (it refuses it), so a GraphQL document such as "{ models }" sent
// as text/plain is not taken for JSON. Form, XML and GraphQL bodies are never
// JSON.
func IsJSONBody(contentType string, body []byte) bool {
	if isMedia(contentType, "application/json", "+json") {
		return true
	}
	if isMedia(contentType, "application/x-www-form-urlencoded", "") || isMedia(contentType, "multipart/form-data", "") ||
		isMedia(contentType, "application/xml", "+xml") || isMedia(contentType, "text/xml", "") ||
		isMedia(contentType, "application/graphql", "") {
		return false
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	return len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') && json.Valid(trimmed)
}

func isMedia(contentType, typ, suffix string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(strings.Split(contentType, ";")[0]))
	}
	return mt == typ || (suffix != "" && strings.HasSuffix(mt, suffix))
}

// xpathExpr is the tiny XPath subset XMLPayload rules support:
//
//	/a/b       the text of b elements under a root a
//	//b        the text of b elements anywhere
//	/a//b      mixes of both
//	.../text() the same as without text()
//	.../@id    an attribute of the selected elements
//
// Names match the local name; namespace prefixes in the expression are
// ignored rather than resolved (Apigee's <Namespaces> are not needed). An
// element's text is all the character data inside it, descendants included.
type xpathExpr struct {
	steps []xpathStep
	attr  string
}

type xpathStep struct {
	name string // "*" for any
	deep bool   // preceded by //
}

func compileXPath(expr string) (*xpathExpr, error) {
	if !strings.HasPrefix(expr, "/") {
		return nil, fmt.Errorf("xpath %q: only absolute paths (/a/b or //b) are supported", expr)
	}
	x := &xpathExpr{}
	rest := expr
	for rest != "" {
		deep := false
		switch {
		case strings.HasPrefix(rest, "//"):
			deep, rest = true, rest[2:]
		case strings.HasPrefix(rest, "/"):
			rest = rest[1:]
		default:
			return nil, fmt.Errorf("xpath %q: expected '/'", expr)
		}
		name := rest
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			name, rest = rest[:i], rest[i:]
		} else {
			rest = ""
		}
		switch {
		case name == "text()" && rest == "":
			continue
		case strings.HasPrefix(name, "@") && rest == "" && !deep:
			x.attr = localName(name[1:])
			continue
		case name == "" || strings.ContainsAny(name, "[]()=@"):
			return nil, fmt.Errorf("xpath %q: step %q is outside the supported subset (element names, *, //, text(), a final @attr)", expr, name)
		}
		x.steps = append(x.steps, xpathStep{name: localName(name), deep: deep})
	}
	if len(x.steps) == 0 {
		return nil, fmt.Errorf("xpath %q: no element step", expr)
	}
	return x, nil
}

func localName(n string) string {
	if i := strings.LastIndexByte(n, ':'); i >= 0 {
		return n[i+1:]
	}
	return n
}

// matches reports whether the element path (root first) is selected.
func (x *xpathExpr) matches(path []string) bool {
	return matchSteps(x.steps, path)
}

func matchSteps(steps []xpathStep, path []string) bool {
	if len(steps) == 0 {
		return len(path) == 0
	}
	st := steps[0]
	if !st.deep {
		return len(path) > 0 && (st.name == "*" || st.name == path[0]) && matchSteps(steps[1:], path[1:])
	}
	for i := range path {
		if (st.name == "*" || st.name == path[i]) && matchSteps(steps[1:], path[i+1:]) {
			return true
		}
	}
	return false
}

// eval streams the document and collects the selected text.
func (x *xpathExpr) eval(body []byte) ([]string, error) {
	d := xml.NewDecoder(bytes.NewReader(body))
	var path []string
	type open struct {
		buf *strings.Builder
	}
	var opens []open // one per open element: the builder collecting its text, or nil
	var out []string
	var collecting []*strings.Builder
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			path = append(path, t.Name.Local)
			var b *strings.Builder
			if x.matches(path) {
				if x.attr != "" {
					for _, a := range t.Attr {
						if a.Name.Local == x.attr {
							out = append(out, a.Value)
						}
					}
				} else {
					b = &strings.Builder{}
					collecting = append(collecting, b)
				}
			}
			opens = append(opens, open{buf: b})
		case xml.EndElement:
			if n := len(opens); n > 0 {
				if b := opens[n-1].buf; b != nil {
					out = append(out, b.String())
					collecting = collecting[:len(collecting)-1]
				}
				opens = opens[:n-1]
				path = path[:len(path)-1]
			}
		case xml.CharData:
			for _, b := range collecting {
				b.Write(t)
			}
		}
	}
	if len(path) > 0 {
		return nil, errors.New("unexpected end of document")
	}
	return out, nil
}
