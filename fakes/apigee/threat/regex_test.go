package threat

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

func TestTranslateJavaRegex(t *testing.T) {
	t.Parallel()
	tests := []struct {
		java    string
		match   []string
		nomatch []string
	}{
		{`(?i)select\s+\*`, []string{"SELECT  *", "select\x0b*"}, []string{"selectx*"}},
		{`\p{Alpha}+\d`, []string{"abc1"}, []string{"__1"}},
		{`[\p{Upper}_]{3}`, []string{"A_B"}, []string{"a_b"}},
		{`\P{Digit}{2}`, []string{"ab"}, []string{"12"}},
		{`\p{IsLatin}`, []string{"é"}, []string{"ж"}},
		{`\p{L}\p{Lu}`, []string{"aB"}, []string{"ab"}},
		{`\Qa.b*\E`, []string{"a.b*"}, []string{"axbb"}},
		{`[\Q]\E]`, []string{"]"}, []string{"a"}},
		{`\u0041\x42\x{43}\0104`, []string{"ABCD"}, []string{"abcd"}},
		{`\e\cA`, []string{"\x1b\x01"}, []string{"e"}},
		{`a.b`, []string{"axb", "a\nb\x00"[:0] + "a\tb"}, []string{"a\rb", "a\nb", "a\u2028b"}},
		{`(?s)a.b`, []string{"a\rb", "a\nb"}, nil},
		{`end$`, []string{"the end", "the end\n", "the end\r\n"}, []string{"end of it", "end\n\n"}},
		{`(?m)^x$`, []string{"a\nx\nb", "a\rx\rb"}, []string{"axb"}},
		{`a\h+b`, []string{"a \u00a0b"}, []string{"a\nb"}},
		{`a\v`, []string{"a\u2028", "a\x0b"}, []string{"a "}},
		{`a\Rb`, []string{"a\r\nb", "a\nb"}, []string{"ab"}},
		{`[a-d[m-p]]+`, []string{"bn"}, []string{"xyz"}},
		{`(?<word>ab)c`, []string{"abc"}, []string{"acb"}},
		{`x\d++`, []string{"x12"}, []string{"xa"}},
		{`(x(?>ab|a))`, []string{"xab"}, []string{"xb"}},
		{`(?iu)straße`, []string{"STRASSE"[:0] + "Straße"}, []string{"strasse"}},
		{`(/(@?[\w_?\w:\*]+(\[[^]]+\])*)?)+`, []string{"/a/b[1]"}, []string{"abc"}},
		{`<\s*script\b[^>]*>[^<]+<\s*/\s*script\s*>`, []string{"<script>alert(1)</script>"}, []string{"<script></script>"}},
		{`a\ b\<`, []string{"a b<"}, nil},
	}
	for _, tt := range tests {
		re, err := TranslateJavaRegex(tt.java)
		if err != nil {
			t.Errorf("TranslateJavaRegex(%q): %v", tt.java, err)
			continue
		}
		for _, s := range tt.match {
			if !re.MatchString(s) {
				t.Errorf("%q (as %q) does not match %q", tt.java, re, s)
			}
		}
		for _, s := range tt.nomatch {
			if re.MatchString(s) {
				t.Errorf("%q (as %q) matches %q", tt.java, re, s)
			}
		}
	}
}

func TestTranslateJavaRegexRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct{ java, want string }{
		{`(a)\1`, `back reference \1`},
		{`(?<n>a)\k<n>`, "named back reference"},
		{`foo(?=bar)`, "lookahead \"(?=\""},
		{`foo(?!bar)`, "lookahead \"(?!\""},
		{`(?<=a)b`, "lookbehind \"(?<=\""},
		{`(?<!a)b`, "lookbehind \"(?<!\""},
		{`(?>a+)b`, "atomic group"},
		{`a*+a`, "possessive quantifier \"*+\""},
		{`[a-z&&[^aeiou]]`, "intersection &&"},
		{`[a[^b]]`, "negated nested character class"},
		{`(?x) a b`, "flag x (COMMENTS)"},
		{`(?U)\w`, "flag U"},
		{`\Ga`, `\G`},
		{`\p{InGreek}`, "block property"},
		{`\p{javaLowerCase}`, "java.lang.Character property"},
		{`\q`, "unknown escape \\q"},
		{`a{x}`, "valid repetition"},
		{`(`, "not a valid regular expression"},
	}
	for _, tt := range tests {
		_, err := TranslateJavaRegex(tt.java)
		var jerr *JavaRegexError
		if !errors.As(err, &jerr) {
			t.Errorf("TranslateJavaRegex(%q) error = %v, want a *JavaRegexError", tt.java, err)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), strconv.Quote(tt.java)) {
			t.Errorf("TranslateJavaRegex(%q) error = %q, want it to name the pattern and %q", tt.java, err, tt.want)
		}
	}
}

func mustPattern(t testing.TB, java string) Pattern {
	t.Helper()
	p, err := CompilePattern(java)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRulesCheck(t *testing.T) {
	t.Parallel()
	sqli := mustPattern(t, `(?i)'\s*or\s+'1'\s*=\s*'1`)
	xss := mustPattern(t, `(?i)<\s*script\b`)
	rules, err := NewRules(
		Rule{Target: Target{Kind: TargetURIPath}, Patterns: []Pattern{xss}},
		Rule{Target: Target{Kind: TargetQueryParam, Name: "q"}, Patterns: []Pattern{sqli}},
		Rule{Target: Target{Kind: TargetHeader, Name: "X-User"}, Patterns: []Pattern{sqli}},
		Rule{Target: Target{Kind: TargetFormParam, Name: "name"}, Patterns: []Pattern{xss}},
		Rule{Target: Target{Kind: TargetJSONPayload, Expression: "$.messages[*].content"}, Patterns: []Pattern{xss, sqli}},
		Rule{Target: Target{Kind: TargetXMLPayload, Expression: "/order/note"}, Patterns: []Pattern{xss}},
		Rule{Target: Target{Kind: TargetVariable, Name: "request.header.x-trace"}, Patterns: []Pattern{xss}},
	)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		req     RequestView
		want    Target // zero: no violation
		decoded bool
	}{
		{"clean", RequestView{Path: "/v1/chat", RawQuery: "q=hello", Header: http.Header{"X-User": {"bob"}}}, Target{}, false},
		{"path encoded", RequestView{Path: "/v1/%3Cscript%3E"}, Target{Kind: TargetURIPath}, true},
		{"query raw", RequestView{Path: "/", RawQuery: "q=x'%20or%20'1'='1"}, Target{Kind: TargetQueryParam, Name: "q"}, true},
		{"query plus", RequestView{Path: "/", RawQuery: "q=x'+or+'1'%3D'1"}, Target{Kind: TargetQueryParam, Name: "q"}, true},
		{"query other name", RequestView{Path: "/", RawQuery: "z=x'+or+'1'%3D'1"}, Target{}, false},
		{"query parsed double encoded", RequestView{Path: "/", Query: url.Values{"q": {"x%27%20or%20%271%27%3D%271"}}}, Target{Kind: TargetQueryParam, Name: "q"}, true},
		{"header", RequestView{Path: "/", Header: http.Header{"X-User": {"' or '1'='1"}}}, Target{Kind: TargetHeader, Name: "X-User"}, false},
		{"form", RequestView{Path: "/", ContentType: "application/x-www-form-urlencoded", Body: []byte("a=1&name=%3Cscript%3Ealert(1)")}, Target{Kind: TargetFormParam, Name: "name"}, true},
		{"form ignored for json", RequestView{Path: "/", ContentType: "application/json", Body: []byte(`{"name":"<script>"}`)}, Target{}, false},
		{"json", RequestView{Path: "/", ContentType: "application/json; charset=utf-8", Body: []byte(`{"messages":[{"role":"user","content":"hi <script>"}]}`)}, Target{Kind: TargetJSONPayload, Expression: "$.messages[*].content"}, false},
		{"json parts", RequestView{Path: "/", ContentType: "application/json", Body: []byte(`{"messages":[{"role":"user","content":[{"type":"text","text":"<script>"}]}]}`)}, Target{Kind: TargetJSONPayload, Expression: "$.messages[*].content"}, false},
		{"xml", RequestView{Path: "/", ContentType: "text/xml", Body: []byte(`<order><id>1</id><note>x <b>&lt;script&gt;</b></note></order>`)}, Target{Kind: TargetXMLPayload, Expression: "/order/note"}, false},
		{"xml other element", RequestView{Path: "/", ContentType: "application/xml", Body: []byte(`<order><id>&lt;script&gt;</id></order>`)}, Target{}, false},
		{"variable", RequestView{Path: "/", Header: http.Header{"X-Trace": {"<script>"}}}, Target{Kind: TargetVariable, Name: "request.header.x-trace"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := rules.Check(tt.req)
			if tt.want == (Target{}) {
				if v != nil {
					t.Fatalf("Check = %v, want nil", v)
				}
				return
			}
			if v == nil {
				t.Fatalf("Check = nil, want a match in %s", tt.want)
			}
			if v.Code != RegexThreatDetected || v.Target != tt.want || v.Decoded != tt.decoded {
				t.Fatalf("Check = %+v, want ThreatDetected in %s decoded=%v", v, tt.want, tt.decoded)
			}
		})
	}
}

func TestRulesFaults(t *testing.T) {
	t.Parallel()
	p := mustPattern(t, `(?i)drop\s+table`)
	rules, err := NewRules(
		Rule{Target: Target{Kind: TargetVariable, Name: "custom.var"}, Patterns: []Pattern{p}},
	)
	if err != nil {
		t.Fatal(err)
	}
	v := rules.Check(RequestView{})
	if v == nil || v.Code != RegexVariableResolutionFailed || v.FaultString("REP") != "Failed to resolve variable custom.var" {
		t.Fatalf("unresolved variable: %+v", v)
	}
	rules.IgnoreUnresolvedVariables = true
	if v := rules.Check(RequestView{}); v != nil {
		t.Fatalf("ignored unresolved variable: %+v", v)
	}
	if v := rules.Check(RequestView{Vars: map[string]string{"custom.var": "x; DROP TABLE users"}}); v == nil || v.Code != RegexThreatDetected {
		t.Fatalf("resolved variable: %+v", v)
	}
	if got, want := rules.Check(RequestView{Vars: map[string]string{"custom.var": "DROP TABLE t"}}).FaultString("REP"), `Regular Expression Threat Detected in REP: regex: (?i)drop\s+table input: DROP TABLE t`; got != want {
		t.Errorf("FaultString = %q, want %q", got, want)
	}

	jr, _ := NewRules(Rule{Target: Target{Kind: TargetJSONPayload, Expression: "$.a"}, Patterns: []Pattern{p}})
	v = jr.Check(RequestView{ContentType: "application/json", Body: []byte(`{"a":`)})
	if v == nil || v.Code != RegexExecutionFailed || !strings.HasPrefix(v.FaultString("REP"), "Failed to execute the RegularExpressionProtection StepDefinition REP. Reason: ") {
		t.Fatalf("bad JSON: %+v", v)
	}
}

func TestNewRulesErrors(t *testing.T) {
	t.Parallel()
	p := mustPattern(t, `x`)
	tests := []struct {
		rules []Rule
		want  string
	}{
		{nil, "at least one of"},
		{[]Rule{{Target: Target{Kind: TargetURIPath}}}, "no patterns"},
		{[]Rule{{Target: Target{Kind: TargetJSONPayload}, Patterns: []Pattern{p}}}, "empty JSONPath"},
		{[]Rule{{Target: Target{Kind: TargetJSONPayload, Expression: "$.a["}, Patterns: []Pattern{p}}}, "column 5"},
		{[]Rule{{Target: Target{Kind: TargetXMLPayload, Expression: "a/b"}, Patterns: []Pattern{p}}}, "absolute paths"},
		{[]Rule{{Target: Target{Kind: TargetXMLPayload, Expression: "/a[1]"}, Patterns: []Pattern{p}}}, "outside the supported subset"},
		{[]Rule{{Target: Target{Kind: TargetVariable}, Patterns: []Pattern{p}}}, "needs a name"},
		{[]Rule{{Target: Target{Kind: TargetURIPath}, Patterns: []Pattern{{Source: "x"}}}}, "not compiled"},
	}
	for _, tt := range tests {
		_, err := NewRules(tt.rules...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewRules(%+v) error = %v, want %q", tt.rules, err, tt.want)
		}
	}
}

func TestXPathSubset(t *testing.T) {
	t.Parallel()
	doc := []byte(`<s:Envelope xmlns:s="urn:s"><s:Body><a id="7"><b>one</b><c><b>two</b></c></a></s:Body></s:Envelope>`)
	tests := []struct {
		expr string
		want string
	}{
		{"/s:Envelope/s:Body/a/b", "one"},
		{"//b", "one|two"},
		{"/Envelope//c/b/text()", "two"},
		{"/Envelope/Body/a/@id", "7"},
		{"/Envelope/Body/a", "onetwo"},
		{"/*/*/a/c", "two"},
	}
	for _, tt := range tests {
		x, err := compileXPath(tt.expr)
		if err != nil {
			t.Fatal(err)
		}
		got, err := x.eval(doc)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, "|") != tt.want {
			t.Errorf("%s = %q, want %q", tt.expr, got, tt.want)
		}
	}
}
