package threat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxJSONPathDepth is how far below the root recursive descent ($..name)
// looks. Deeper values are not visited, so a hostile document cannot make an
// evaluation recurse without bound. (encoding/json itself refuses documents
// nested deeper than 10,000 levels.)
const MaxJSONPathDepth = 1000

// MaxJSONPathNodes bounds the nodes one evaluation may visit. Chained
// recursive descents ($..a..b..c) revisit subtrees and could otherwise grow
// with the cube of the document; an evaluation that reaches the bound returns
// what it found so far.
const MaxJSONPathNodes = 1_000_000

// JSONPath is a compiled JSONPath expression. It supports the subset Apigee
// users write in RegularExpressionProtection and in jsonPath() templates:
//
//	$                 the root
//	.name  ['name']   a member ("name" with double quotes too; \' and \\ escape)
//	.*  [*]           every member or element
//	[0]  [-1]         an element, negative from the end
//	[0,2]  ['a','b']  a union of indexes or names
//	[1:3]  [:-1]      a slice (start inclusive, end exclusive)
//	..name  ..*  ..[0]  recursive descent: the selector applied at every level
//	[?(@.role == 'user')]  a filter on members or elements: @ or @.path
//	                  compared (==, !=, <, <=, >, >=) with a string, number,
//	                  true, false or null, or a bare @.path testing existence
//
// Evaluation runs over values decoded by encoding/json (map[string]any,
// []any, string, float64 or json.Number, bool, nil). Object members are
// visited in sorted key order, so results are deterministic.
type JSONPath struct {
	expr  string
	steps []pathStep
}

type selKind int

const (
	selNames    selKind = iota // one or more member names
	selWildcard                // every member/element
	selIndexes                 // one or more indexes
	selSlice
	selFilter
)

type pathStep struct {
	descend bool // recursive descent before selecting
	fold    bool // member names match keys without case (FoldCase)
	kind    selKind
	names   []string
	indexes []int
	// slice bounds; has* false means open.
	start, end       int
	hasStart, hasEnd bool
	filter           *pathFilter
}

type pathFilter struct {
	path  []string // member names below @; empty means @ itself
	op    string   // "" means existence
	value any      // string, float64, bool or nil
}

// String returns the expression as compiled.
func (p *JSONPath) String() string { return p.expr }

// CompileJSONPath compiles a JSONPath expression. Errors name the 1-based
// column where the expression went wrong.
func CompileJSONPath(expr string) (*JSONPath, error) {
	c := pathCompiler{expr: expr}
	steps, err := c.compile()
	if err != nil {
		return nil, err
	}
	return &JSONPath{expr: expr, steps: steps}, nil
}

type pathCompiler struct {
	expr string
	pos  int
}

func (c *pathCompiler) errorf(format string, args ...any) error {
	return fmt.Errorf("jsonpath %q: column %d: %s", c.expr, c.pos+1, fmt.Sprintf(format, args...))
}

func (c *pathCompiler) peek() byte {
	if c.pos < len(c.expr) {
		return c.expr[c.pos]
	}
	return 0
}

func (c *pathCompiler) skipSpace() {
	for c.pos < len(c.expr) && (c.expr[c.pos] == ' ' || c.expr[c.pos] == '\t') {
		c.pos++
	}
}

func (c *pathCompiler) compile() ([]pathStep, error) {
	c.skipSpace()
	if c.peek() != '$' {
		return nil, c.errorf("expected '$' at the start")
	}
	c.pos++
	var steps []pathStep
	for {
		c.skipSpace()
		if c.pos >= len(c.expr) {
			return steps, nil
		}
		var st pathStep
		switch c.peek() {
		case '.':
			c.pos++
			if c.peek() == '.' {
				c.pos++
				st.descend = true
				if c.peek() == '[' {
					if err := c.bracket(&st); err != nil {
						return nil, err
					}
					break
				}
			}
			if c.peek() == '*' {
				c.pos++
				st.kind = selWildcard
				break
			}
			name, err := c.dotName()
			if err != nil {
				return nil, err
			}
			st.kind, st.names = selNames, []string{name}
		case '[':
			if err := c.bracket(&st); err != nil {
				return nil, err
			}
		default:
			return nil, c.errorf("unexpected %q, expected '.' or '['", c.expr[c.pos])
		}
		steps = append(steps, st)
	}
}

func isNameRune(r rune) bool {
	return r == '_' || r == '-' || r == '$' || unicode.IsLetter(r) || unicode.IsDigit(r)
}

func (c *pathCompiler) dotName() (string, error) {
	start := c.pos
	for c.pos < len(c.expr) {
		r, size := utf8.DecodeRuneInString(c.expr[c.pos:])
		if !isNameRune(r) {
			break
		}
		c.pos += size
	}
	if c.pos == start {
		if c.pos >= len(c.expr) {
			return "", c.errorf("expected a member name after '.'")
		}
		return "", c.errorf("unexpected %q, expected a member name", c.expr[c.pos])
	}
	return c.expr[start:c.pos], nil
}

// bracket compiles [...] into st.
func (c *pathCompiler) bracket(st *pathStep) error {
	c.pos++ // '['
	c.skipSpace()
	switch ch := c.peek(); {
	case ch == '*':
		c.pos++
		st.kind = selWildcard
	case ch == '?':
		c.pos++
		f, err := c.filter()
		if err != nil {
			return err
		}
		st.kind, st.filter = selFilter, f
	case ch == '\'' || ch == '"':
		st.kind = selNames
		for {
			c.skipSpace()
			name, err := c.quoted()
			if err != nil {
				return err
			}
			st.names = append(st.names, name)
			c.skipSpace()
			if c.peek() != ',' {
				break
			}
			c.pos++
		}
	case ch == '-' || ch == ':' || (ch >= '0' && ch <= '9'):
		if err := c.indexes(st); err != nil {
			return err
		}
	case ch == 0:
		return c.errorf("unterminated '['")
	default:
		return c.errorf("unexpected %q inside '[]'", ch)
	}
	c.skipSpace()
	if c.peek() != ']' {
		if c.pos >= len(c.expr) {
			return c.errorf("expected ']'")
		}
		return c.errorf("unexpected %q, expected ']'", c.expr[c.pos])
	}
	c.pos++
	return nil
}

func (c *pathCompiler) integer() (int, bool, error) {
	start := c.pos
	if c.peek() == '-' {
		c.pos++
	}
	for c.pos < len(c.expr) && c.expr[c.pos] >= '0' && c.expr[c.pos] <= '9' {
		c.pos++
	}
	if c.pos == start {
		return 0, false, nil
	}
	n, err := strconv.Atoi(c.expr[start:c.pos])
	if err != nil {
		c.pos = start
		return 0, false, c.errorf("bad index %q", c.expr[start:c.pos])
	}
	return n, true, nil
}

func (c *pathCompiler) indexes(st *pathStep) error {
	first, ok, err := c.integer()
	if err != nil {
		return err
	}
	c.skipSpace()
	if c.peek() == ':' {
		c.pos++
		c.skipSpace()
		st.kind = selSlice
		st.start, st.hasStart = first, ok
		end, ok, err := c.integer()
		if err != nil {
			return err
		}
		st.end, st.hasEnd = end, ok
		return nil
	}
	if !ok {
		return c.errorf("expected an index")
	}
	st.kind, st.indexes = selIndexes, []int{first}
	for c.peek() == ',' {
		c.pos++
		c.skipSpace()
		n, ok, err := c.integer()
		if err != nil {
			return err
		}
		if !ok {
			return c.errorf("expected an index after ','")
		}
		st.indexes = append(st.indexes, n)
		c.skipSpace()
	}
	return nil
}

func (c *pathCompiler) quoted() (string, error) {
	q := c.peek()
	if q != '\'' && q != '"' {
		return "", c.errorf("expected a quoted name")
	}
	c.pos++
	var b strings.Builder
	for c.pos < len(c.expr) {
		ch := c.expr[c.pos]
		switch {
		case ch == q:
			c.pos++
			return b.String(), nil
		case ch == '\\' && c.pos+1 < len(c.expr):
			b.WriteByte(c.expr[c.pos+1])
			c.pos += 2
		default:
			b.WriteByte(ch)
			c.pos++
		}
	}
	return "", c.errorf("unterminated quoted name")
}

// filter compiles (@... op value) after '?'.
func (c *pathCompiler) filter() (*pathFilter, error) {
	c.skipSpace()
	if c.peek() != '(' {
		return nil, c.errorf("expected '(' after '?'")
	}
	c.pos++
	c.skipSpace()
	if c.peek() != '@' {
		return nil, c.errorf("expected '@' in filter")
	}
	c.pos++
	f := &pathFilter{}
	for {
		if c.peek() == '.' {
			c.pos++
			name, err := c.dotName()
			if err != nil {
				return nil, err
			}
			f.path = append(f.path, name)
			continue
		}
		if c.peek() == '[' && c.pos+1 < len(c.expr) && (c.expr[c.pos+1] == '\'' || c.expr[c.pos+1] == '"') {
			c.pos++
			name, err := c.quoted()
			if err != nil {
				return nil, err
			}
			if c.peek() != ']' {
				return nil, c.errorf("expected ']'")
			}
			c.pos++
			f.path = append(f.path, name)
			continue
		}
		break
	}
	c.skipSpace()
	for _, op := range []string{"==", "!=", "<=", ">=", "<", ">"} {
		if strings.HasPrefix(c.expr[c.pos:], op) {
			f.op = op
			c.pos += len(op)
			break
		}
	}
	if f.op != "" {
		c.skipSpace()
		v, err := c.literal()
		if err != nil {
			return nil, err
		}
		f.value = v
		if _, isNum := v.(float64); !isNum && f.op != "==" && f.op != "!=" {
			return nil, c.errorf("operator %s needs a number", f.op)
		}
	}
	c.skipSpace()
	if c.peek() != ')' {
		if c.pos >= len(c.expr) {
			return nil, c.errorf("expected ')'")
		}
		return nil, c.errorf("unexpected %q in filter, expected ')'", c.expr[c.pos])
	}
	c.pos++
	return f, nil
}

func (c *pathCompiler) literal() (any, error) {
	switch ch := c.peek(); {
	case ch == '\'' || ch == '"':
		return c.quoted()
	case ch == '-' || (ch >= '0' && ch <= '9'):
		start := c.pos
		c.pos++
		for c.pos < len(c.expr) && strings.IndexByte("0123456789.eE+-", c.expr[c.pos]) >= 0 {
			c.pos++
		}
		f, err := strconv.ParseFloat(c.expr[start:c.pos], 64)
		if err != nil {
			c.pos = start
			return nil, c.errorf("bad number %q", c.expr[start:c.pos])
		}
		return f, nil
	}
	for _, w := range []struct {
		word string
		v    any
	}{{"true", true}, {"false", false}, {"null", nil}} {
		if strings.HasPrefix(c.expr[c.pos:], w.word) {
			c.pos += len(w.word)
			return w.v, nil
		}
	}
	return nil, c.errorf("expected a string, number, true, false or null")
}

// FoldCase makes the path's member names match keys without regard to case,
// preferring an exact match, as Go's encoding/json decodes: a policy that
// guards what a Go-based model server (Ollama) reads must see "Messages" as
// "messages". It returns p.
func (p *JSONPath) FoldCase() *JSONPath {
	for i := range p.steps {
		p.steps[i].fold = true
	}
	return p
}

// Eval returns the values the path selects in doc, in document order.
func (p *JSONPath) Eval(doc any) []any {
	budget := MaxJSONPathNodes
	cur := []pathNode{{v: doc}}
	for _, st := range p.steps {
		var next []pathNode
		for _, n := range cur {
			if st.descend {
				next = descend(n, st, next, &budget)
			} else {
				next = st.apply(n, next, &budget)
			}
			if budget <= 0 {
				break
			}
		}
		cur = next
		if len(cur) == 0 || budget <= 0 {
			break
		}
	}
	out := make([]any, len(cur))
	for i, n := range cur {
		out[i] = n.v
	}
	return out
}

type pathNode struct {
	v     any
	depth int
}

// descend applies st at n and at every node below it, visiting in document
// order with an explicit stack.
func descend(n pathNode, st pathStep, out []pathNode, budget *int) []pathNode {
	stack := []pathNode{n}
	for len(stack) > 0 && *budget > 0 {
		top := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		*budget--
		out = st.apply(top, out, budget)
		if top.depth >= MaxJSONPathDepth {
			continue
		}
		children := childrenOf(top)
		for i := len(children) - 1; i >= 0; i-- {
			stack = append(stack, children[i])
		}
	}
	return out
}

func childrenOf(n pathNode) []pathNode {
	switch v := n.v.(type) {
	case map[string]any:
		keys := sortedKeys(v)
		out := make([]pathNode, len(keys))
		for i, k := range keys {
			out[i] = pathNode{v: v[k], depth: n.depth + 1}
		}
		return out
	case []any:
		out := make([]pathNode, len(v))
		for i, e := range v {
			out[i] = pathNode{v: e, depth: n.depth + 1}
		}
		return out
	}
	return nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (st pathStep) apply(n pathNode, out []pathNode, budget *int) []pathNode {
	child := func(v any) {
		if *budget > 0 {
			*budget--
			out = append(out, pathNode{v: v, depth: n.depth + 1})
		}
	}
	switch st.kind {
	case selNames:
		if m, ok := n.v.(map[string]any); ok {
			for _, name := range st.names {
				if v, ok := m[name]; ok {
					child(v)
					continue
				}
				if st.fold {
					for _, k := range sortedKeys(m) {
						if strings.EqualFold(k, name) {
							child(m[k])
						}
					}
				}
			}
		}
	case selWildcard:
		for _, c := range childrenOf(n) {
			child(c.v)
		}
	case selIndexes:
		if a, ok := n.v.([]any); ok {
			for _, i := range st.indexes {
				if i < 0 {
					i += len(a)
				}
				if i >= 0 && i < len(a) {
					child(a[i])
				}
			}
		}
	case selSlice:
		if a, ok := n.v.([]any); ok {
			start, end := 0, len(a)
			if st.hasStart {
				start = clampIndex(st.start, len(a))
			}
			if st.hasEnd {
				end = clampIndex(st.end, len(a))
			}
			for i := start; i < end; i++ {
				child(a[i])
			}
		}
	case selFilter:
		for _, c := range childrenOf(n) {
			if st.filter.match(c.v) {
				child(c.v)
			}
		}
	}
	return out
}

func clampIndex(i, n int) int {
	if i < 0 {
		i += n
	}
	return max(0, min(i, n))
}

func (f *pathFilter) match(v any) bool {
	for _, name := range f.path {
		m, ok := v.(map[string]any)
		if !ok {
			return false
		}
		if v, ok = m[name]; !ok {
			return false
		}
	}
	if f.op == "" {
		return true
	}
	if want, ok := f.value.(float64); ok {
		got, ok := toFloat(v)
		if !ok {
			return f.op == "!="
		}
		switch f.op {
		case "==":
			return got == want
		case "!=":
			return got != want
		case "<":
			return got < want
		case "<=":
			return got <= want
		case ">":
			return got > want
		case ">=":
			return got >= want
		}
		return false
	}
	eq := v == f.value
	if f.op == "!=" {
		return !eq
	}
	return eq
}

func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil && !math.IsInf(f, 0)
	}
	return 0, false
}

// Strings returns what Eval selects as text: strings as they are, other
// scalars as their JSON text (42, true, null) and objects and arrays as
// compact JSON without HTML escaping, so "<script>" stays "<script>" for the
// patterns that look for it.
func (p *JSONPath) Strings(doc any) []string {
	vals := p.Eval(doc)
	out := make([]string, 0, len(vals))
	for _, v := range vals {
		out = append(out, jsonText(v))
	}
	return out
}

func jsonText(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case json.Number:
		return s.String()
	case bool:
		return strconv.FormatBool(s)
	case nil:
		return "null"
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(b.String(), "\n")
}
