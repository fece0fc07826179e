package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Lookup returns the value of one flow variable for m, and whether it
// resolved. Built-in message variables come first, then the flow variables in
// m.Vars:
//
//	request.header.NAME      a request header (name without case; values joined by ",")
//	request.queryparam.NAME  a query parameter (the first value)
//	request.formparam.NAME   a form field of an application/x-www-form-urlencoded body
//	request.verb             the method
//	request.path             the path, without the query
//	proxy.pathsuffix         the path (the runtime has no base path)
//	request.uri              the path and the query
//	request.querystring      the query
//	request.content          the request body
//	client.ip                the client's address
//	response.status.code     the response status (response phase)
//	response.header.NAME     a response header (response phase)
//	response.content         the response body (response phase)
//	message.content          the body of the current phase's message
//
// An unknown variable resolves to "" and false, as Apigee treats it as null.
func Lookup(name string, m *Message) (string, bool) {
	if m == nil {
		return "", false
	}
	if h, ok := cutPrefixFold(name, "request.header."); ok {
		return headerValue(m.Header, h)
	}
	if q, ok := cutPrefixFold(name, "request.queryparam."); ok {
		vals, err := url.ParseQuery(m.RawQuery)
		if err != nil {
			return "", false
		}
		if v, ok := vals[q]; ok && len(v) > 0 {
			return v[0], true
		}
		return "", false
	}
	if f, ok := cutPrefixFold(name, "request.formparam."); ok {
		return formValue(m, f)
	}
	if h, ok := cutPrefixFold(name, "response.header."); ok {
		if m.Phase != Response {
			return "", false
		}
		return headerValue(m.ResponseHeader, h)
	}
	switch name {
	case "request.verb":
		return m.Method, m.Method != ""
	case "request.path", "proxy.pathsuffix":
		return m.Path, m.Path != ""
	case "request.uri":
		if m.RawQuery == "" {
			return m.Path, m.Path != ""
		}
		return m.Path + "?" + m.RawQuery, true
	case "request.querystring":
		return m.RawQuery, m.RawQuery != ""
	case "request.content":
		return string(m.Body), m.Body != nil
	case "client.ip", "proxy.client.ip":
		return m.ClientIP, m.ClientIP != ""
	case "response.status.code":
		if m.Phase != Response || m.Status == 0 {
			return "", false
		}
		return strconv.Itoa(m.Status), true
	case "response.content":
		if m.Phase != Response {
			return "", false
		}
		return string(m.ResponseBody), m.ResponseBody != nil
	case "message.content":
		if m.Phase == Response {
			return string(m.ResponseBody), m.ResponseBody != nil
		}
		return string(m.Body), m.Body != nil
	}
	return m.Vars.Get(name)
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) > len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return "", false
}

func headerValue(h http.Header, name string) (string, bool) {
	if h == nil {
		return "", false
	}
	vals := h.Values(name)
	if len(vals) == 0 {
		return "", false
	}
	return strings.Join(vals, ","), true
}

func formValue(m *Message, name string) (string, bool) {
	ct := m.Header.Get("Content-Type")
	if ct == "" {
		return "", false
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return "", false
	}
	vals, err := url.ParseQuery(string(m.Body))
	if err != nil {
		return "", false
	}
	if v, ok := vals[name]; ok && len(v) > 0 {
		return v[0], true
	}
	return "", false
}

// Resolve evaluates expr for m. expr is either a bare variable name
// (request.header.x-api-key, client_id, verifyapikey.VA.apiproduct.name) or
// a message template: text with {variable} and
// {jsonPath('$.path',variable,true)} substitutions. Unresolved variables give
// "" (Apigee's null); only a malformed template is an error.
func Resolve(expr string, m *Message) (string, error) {
	t, err := parseTemplate(expr)
	if err != nil {
		return "", err
	}
	s, _ := t.eval(m)
	return s, nil
}

// template is a parsed Resolve expression: literal text and substitutions.
type template struct {
	src   string
	parts []tmplPart
}

type tmplPart struct {
	text string // literal text, when ref and fn are empty
	ref  string // a variable
	fn   *jsonPathCall
}

type jsonPathCall struct {
	path  jsonPath
	input string // the variable holding the JSON
}

// parseTemplate parses a Resolve expression. An expression without "{" is a
// bare variable name.
func parseTemplate(src string) (template, error) {
	t := template{src: src}
	if !strings.Contains(src, "{") {
		if strings.Contains(src, "}") {
			return t, fmt.Errorf("template %q: unexpected }", src)
		}
		if s := strings.TrimSpace(src); s != "" {
			t.parts = append(t.parts, tmplPart{ref: s})
		}
		return t, nil
	}
	rest := src
	for rest != "" {
		open := strings.IndexAny(rest, "{}")
		if open < 0 {
			t.parts = append(t.parts, tmplPart{text: rest})
			break
		}
		if rest[open] == '}' {
			return t, fmt.Errorf("template %q: unexpected }", src)
		}
		if open > 0 {
			t.parts = append(t.parts, tmplPart{text: rest[:open]})
		}
		end := closingBrace(rest, open+1)
		if end < 0 {
			return t, fmt.Errorf("template %q: unclosed {", src)
		}
		p, err := parseSubstitution(strings.TrimSpace(rest[open+1 : end]))
		if err != nil {
			return t, fmt.Errorf("template %q: %w", src, err)
		}
		t.parts = append(t.parts, p)
		rest = rest[end+1:]
	}
	return t, nil
}

// closingBrace finds the } that closes a substitution starting at i, skipping
// quoted strings.
func closingBrace(s string, i int) int {
	var quote byte
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '{':
			return -1
		case c == '}':
			return i
		}
	}
	return -1
}

func parseSubstitution(expr string) (tmplPart, error) {
	if expr == "" {
		return tmplPart{}, errors.New("empty {}")
	}
	paren := strings.IndexByte(expr, '(')
	if paren < 0 {
		if strings.ContainsAny(expr, " \t\r\n,)'\"") {
			return tmplPart{}, fmt.Errorf("{%s}: not a variable name", expr)
		}
		return tmplPart{ref: expr}, nil
	}
	name := strings.TrimSpace(expr[:paren])
	if !strings.HasSuffix(expr, ")") {
		return tmplPart{}, fmt.Errorf("{%s}: missing )", expr)
	}
	if name != "jsonPath" {
		return tmplPart{}, fmt.Errorf("{%s}: unknown function %q (supported: jsonPath)", expr, name)
	}
	args, err := splitArgs(expr[paren+1 : len(expr)-1])
	if err != nil {
		return tmplPart{}, fmt.Errorf("{%s}: %w", expr, err)
	}
	if len(args) < 2 || len(args) > 3 {
		return tmplPart{}, fmt.Errorf("{%s}: jsonPath takes 2 or 3 arguments (path, variable[, want-array]), got %d", expr, len(args))
	}
	pathSrc, quoted := unquote(args[0])
	if !quoted {
		return tmplPart{}, fmt.Errorf("{%s}: the jsonPath path must be a quoted string", expr)
	}
	path, err := parseJSONPath(pathSrc)
	if err != nil {
		return tmplPart{}, fmt.Errorf("{%s}: %w", expr, err)
	}
	input := args[1]
	if _, q := unquote(input); q || input == "" {
		return tmplPart{}, fmt.Errorf("{%s}: the jsonPath input must be a variable name", expr)
	}
	if len(args) == 3 && args[2] != "true" && args[2] != "false" {
		return tmplPart{}, fmt.Errorf("{%s}: the third jsonPath argument must be true or false", expr)
	}
	return tmplPart{fn: &jsonPathCall{path: path, input: input}}, nil
}

func splitArgs(s string) ([]string, error) {
	var args []string
	var quote byte
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == ',':
			args = append(args, strings.TrimSpace(s[start:i]))
			start = i + 1
		}
	}
	if quote != 0 {
		return nil, errors.New("unclosed quote")
	}
	args = append(args, strings.TrimSpace(s[start:]))
	return args, nil
}

func unquote(s string) (string, bool) {
	if len(s) >= 2 && (s[0] == '\'' || s[0] == '"') && s[len(s)-1] == s[0] {
		return s[1 : len(s)-1], true
	}
	return s, false
}

// eval substitutes the template for m. ok is false when a substitution did
// not resolve (for a bare variable: when the variable is unset).
func (t template) eval(m *Message) (string, bool) {
	if len(t.parts) == 1 {
		return t.parts[0].eval(m)
	}
	var b strings.Builder
	ok := true
	for _, p := range t.parts {
		s, pok := p.eval(m)
		ok = ok && pok
		b.WriteString(s)
	}
	return b.String(), ok
}

func (p tmplPart) eval(m *Message) (string, bool) {
	switch {
	case p.ref != "":
		return Lookup(p.ref, m)
	case p.fn != nil:
		in, ok := Lookup(p.fn.input, m)
		if !ok {
			return "", false
		}
		return p.fn.path.evalString([]byte(in))
	}
	return p.text, true
}

// jsonPath is a parsed JSONPath: $ followed by .name, ['name'], [N] (N < 0
// counts from the end), [*] and .* steps.
type jsonPath []jsonStep

type jsonStep struct {
	field    string
	index    int
	isIndex  bool
	wildcard bool
}

func parseJSONPath(src string) (jsonPath, error) {
	if !strings.HasPrefix(src, "$") {
		return nil, fmt.Errorf("JSONPath %q must start with $", src)
	}
	var p jsonPath
	s := src[1:]
	for s != "" {
		switch s[0] {
		case '.':
			s = s[1:]
			if strings.HasPrefix(s, ".") {
				return nil, fmt.Errorf("JSONPath %q: recursive descent (..) is not supported", src)
			}
			if strings.HasPrefix(s, "*") {
				p = append(p, jsonStep{wildcard: true})
				s = s[1:]
				continue
			}
			end := strings.IndexAny(s, ".[")
			if end < 0 {
				end = len(s)
			}
			if end == 0 {
				return nil, fmt.Errorf("JSONPath %q: empty name after .", src)
			}
			p = append(p, jsonStep{field: s[:end]})
			s = s[end:]
		case '[':
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return nil, fmt.Errorf("JSONPath %q: unclosed [", src)
			}
			in := strings.TrimSpace(s[1:end])
			s = s[end+1:]
			if in == "*" {
				p = append(p, jsonStep{wildcard: true})
				continue
			}
			if name, quoted := unquote(in); quoted {
				p = append(p, jsonStep{field: name})
				continue
			}
			n, err := strconv.Atoi(in)
			if err != nil {
				return nil, fmt.Errorf("JSONPath %q: [%s] is not an index, '*' or a quoted name", src, in)
			}
			p = append(p, jsonStep{index: n, isIndex: true})
		default:
			return nil, fmt.Errorf("JSONPath %q: unexpected %q", src, s[:1])
		}
	}
	return p, nil
}

// evalString applies the path to a JSON document. One match gives its value
// (strings without quotes, numbers as written, objects and arrays as compact
// JSON); several matches (from wildcards) are joined with newlines; no match,
// null, or a document that is not JSON gives "" and false.
func (p jsonPath) evalString(doc []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var root any
	if err := dec.Decode(&root); err != nil {
		return "", false
	}
	nodes := []any{root}
	wild := false
	for _, st := range p {
		var next []any
		for _, n := range nodes {
			switch {
			case st.wildcard:
				wild = true
				switch v := n.(type) {
				case []any:
					next = append(next, v...)
				case map[string]any:
					for _, k := range sortedMapKeys(v) {
						next = append(next, v[k])
					}
				}
			case st.isIndex:
				if a, ok := n.([]any); ok {
					i := st.index
					if i < 0 {
						i += len(a)
					}
					if i >= 0 && i < len(a) {
						next = append(next, a[i])
					}
				}
			default:
				if o, ok := n.(map[string]any); ok {
					if v, ok := o[st.field]; ok {
						next = append(next, v)
					}
				}
			}
		}
		nodes = next
	}
	var out []string
	for _, n := range nodes {
		if n == nil {
			continue
		}
		out = append(out, jsonScalar(n))
	}
	if len(out) == 0 {
		return "", false
	}
	if !wild {
		return out[0], true
	}
	return strings.Join(out, "\n"), true
}

func jsonScalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

func sortedMapKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// Insertion order is lost by encoding/json; sorted keys keep the output
	// deterministic.
	slices.Sort(keys)
	return keys
}
