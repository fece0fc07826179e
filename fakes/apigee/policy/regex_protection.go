package policy

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gatecheck/gatecheck/fakes/apigee/threat"
)

// RegularExpressionProtection refuses a message when one of its patterns
// matches a part of it: <URIPath>, <QueryParam name="">, <Header name="">,
// <FormParam name="">, <Variable name=""> (a flow variable),
// <JSONPayload><JSONPath><Expression>$.a[*].b</Expression> and
// <XMLPayload><XPath><Expression>/a/b</Expression>, each with one or more
// <Pattern>. Patterns are Java regular expressions, as Apigee users write
// them, translated to Go's RE2 by threat.TranslateJavaRegex; one that
// cannot be translated (a back reference, a lookaround) is a parse error
// naming the element, the pattern and why. A pattern matches anywhere in a
// value (Java's Matcher.find); values are tested as sent and decoded once
// (see threat.Rules.Check).
//
// gatecheck extensions: name="*" on QueryParam, Header and FormParam tests
// every parameter or header (Apigee needs one element per name), and
// <FaultStatus>. JSONPayload's escapeSlashCharacter attribute and
// XMLPayload's <Namespaces> and XPath's <Type> are accepted and have no
// effect (the XPath subset matches local names).
//
// JSONPayload rules apply only to a JSON message, XMLPayload rules only to
// an XML one and FormParam rules only to a form body, as in Apigee. A match
// is steps.regexprotection.ThreatDetected; a JSON or XML payload that does
// not parse is steps.regexprotection.ExecutionFailed; a Variable that does
// not resolve is steps.regexprotection.VariableResolutionFailed unless
// <IgnoreUnresolvedVariables>true</IgnoreUnresolvedVariables>. Status 400 on
// a request, 500 on a response, or <FaultStatus>.
//
// Source is request, response or message (the default). URIPath,
// QueryParam and FormParam read the request only, so they cannot be used
// with Source response. With Source response (or message, in the response
// flow) the policy is a ResponseFilter for JSON and XML answers, refusing
// them before they go out.
//
// Sets regularexpressionprotection.{name}.failed, and on a violation
// .target (the element that matched, "QueryParam q").
type RegularExpressionProtection struct {
	name   string
	src    source
	rules  *threat.Rules
	vars   []string // Variable names, resolved from the flow
	status int
	// payload says the rules read a JSON or XML body (for the filter).
	jsonRules, xmlRules bool
}

type xmlRegexNamed struct {
	Name         *string    `xml:"name,attr"`
	Patterns     []string   `xml:"Pattern"`
	Unknown      []xmlAny   `xml:",any"`
	UnknownAttrs []xml.Attr `xml:",any,attr"`
}

type xmlRegexExpr struct {
	Expression *string  `xml:"Expression"`
	Type       *string  `xml:"Type"`
	Patterns   []string `xml:"Pattern"`
	Unknown    []xmlAny `xml:",any"`
}

type xmlRegexJSONPayload struct {
	EscapeSlash  string         `xml:"escapeSlashCharacter,attr"`
	JSONPath     []xmlRegexExpr `xml:"JSONPath"`
	Unknown      []xmlAny       `xml:",any"`
	UnknownAttrs []xml.Attr     `xml:",any,attr"`
}

type xmlRegexXMLPayload struct {
	Namespaces   *xmlAny        `xml:"Namespaces"`
	XPath        []xmlRegexExpr `xml:"XPath"`
	Unknown      []xmlAny       `xml:",any"`
	UnknownAttrs []xml.Attr     `xml:",any,attr"`
}

type xmlRegularExpressionProtection struct {
	xmlCommon
	Source                    *string               `xml:"Source"`
	IgnoreUnresolvedVariables *string               `xml:"IgnoreUnresolvedVariables"`
	URIPath                   []xmlRegexNamed       `xml:"URIPath"`
	QueryParam                []xmlRegexNamed       `xml:"QueryParam"`
	Header                    []xmlRegexNamed       `xml:"Header"`
	FormParam                 []xmlRegexNamed       `xml:"FormParam"`
	Variable                  []xmlRegexNamed       `xml:"Variable"`
	JSONPayload               []xmlRegexJSONPayload `xml:"JSONPayload"`
	XMLPayload                []xmlRegexXMLPayload  `xml:"XMLPayload"`
	FaultStatus               *string               `xml:"FaultStatus"`
}

func parseRegularExpressionProtection(data []byte, _ Env) (Policy, error) {
	var x xmlRegularExpressionProtection
	pe, err := decodePolicy("RegularExpressionProtection", data, &x, &x.xmlCommon,
		[]string{"Source", "IgnoreUnresolvedVariables", "URIPath", "QueryParam", "Header", "FormParam", "Variable",
			"JSONPayload", "XMLPayload", "FaultStatus"}, nil)
	if err != nil {
		return nil, err
	}
	p := &RegularExpressionProtection{name: x.Name}
	if p.src, err = parseSource(pe, x.Source, srcMessage); err != nil {
		return nil, err
	}
	ignore, err := pe.optBool("IgnoreUnresolvedVariables", x.IgnoreUnresolvedVariables)
	if err != nil {
		return nil, err
	}
	if p.status, err = parseFaultStatus(pe, x.FaultStatus); err != nil {
		return nil, err
	}
	var rules []threat.Rule
	named := func(elem string, kind threat.TargetKind, xs []xmlRegexNamed, nameRule string) error {
		for _, n := range xs {
			label := elem
			if n.Name != nil {
				label = fmt.Sprintf("%s name=%q", elem, *n.Name)
			}
			if len(n.Unknown) > 0 {
				return pe.elem(label, "unknown element <%s> (supported: Pattern)", n.Unknown[0].XMLName.Local)
			}
			if len(n.UnknownAttrs) > 0 {
				return pe.elem(label, "unknown attribute %s", n.UnknownAttrs[0].Name.Local)
			}
			t := threat.Target{Kind: kind}
			switch nameRule {
			case "none":
				if n.Name != nil {
					return pe.elem(label, "takes no name attribute")
				}
			case "required", "star":
				name := ""
				if n.Name != nil {
					name = strings.TrimSpace(*n.Name)
				}
				if name == "" {
					if nameRule == "star" {
						return pe.elem(elem, `the name attribute is required (name="*" for every one, a gatecheck extension)`)
					}
					return pe.elem(elem, "the name attribute is required")
				}
				if name != "*" || nameRule != "star" {
					t.Name = name
				}
			}
			pats, err := compilePatterns(pe, label, n.Patterns)
			if err != nil {
				return err
			}
			rules = append(rules, threat.Rule{Target: t, Patterns: pats})
			if kind == threat.TargetVariable && !slices.Contains(p.vars, t.Name) {
				p.vars = append(p.vars, t.Name)
			}
		}
		return nil
	}
	if err := named("URIPath", threat.TargetURIPath, x.URIPath, "none"); err != nil {
		return nil, err
	}
	if err := named("QueryParam", threat.TargetQueryParam, x.QueryParam, "star"); err != nil {
		return nil, err
	}
	if err := named("Header", threat.TargetHeader, x.Header, "star"); err != nil {
		return nil, err
	}
	if err := named("FormParam", threat.TargetFormParam, x.FormParam, "star"); err != nil {
		return nil, err
	}
	if err := named("Variable", threat.TargetVariable, x.Variable, "required"); err != nil {
		return nil, err
	}
	if p.src == srcResponse && (len(x.URIPath) > 0 || len(x.QueryParam) > 0 || len(x.FormParam) > 0) {
		return nil, pe.elem("Source", "response: URIPath, QueryParam and FormParam read the request only")
	}
	exprs := func(elem, sub string, kind threat.TargetKind, xs []xmlRegexExpr) error {
		for _, e := range xs {
			label := elem + "><" + sub
			if len(e.Unknown) > 0 {
				return pe.elem(label, "unknown element <%s> (supported: Expression, Pattern)", e.Unknown[0].XMLName.Local)
			}
			if e.Type != nil && kind == threat.TargetJSONPayload {
				return pe.elem(label, "unknown element <Type> (supported: Expression, Pattern)")
			}
			if e.Expression == nil || strings.TrimSpace(*e.Expression) == "" {
				return pe.elem(label, "<Expression> is required")
			}
			expr := strings.TrimSpace(*e.Expression)
			pats, err := compilePatterns(pe, label, e.Patterns)
			if err != nil {
				return err
			}
			r := threat.Rule{Target: threat.Target{Kind: kind, Expression: expr}, Patterns: pats}
			if _, err := threat.NewRules(r); err != nil {
				return pe.elem(label, "<Expression> %q: %v", expr, unwrapRuleErr(err))
			}
			rules = append(rules, r)
		}
		return nil
	}
	for _, j := range x.JSONPayload {
		if len(j.Unknown) > 0 {
			return nil, pe.elem("JSONPayload", "unknown element <%s> (supported: JSONPath)", j.Unknown[0].XMLName.Local)
		}
		if len(j.UnknownAttrs) > 0 {
			return nil, pe.elem("JSONPayload", "unknown attribute %s (supported: escapeSlashCharacter)", j.UnknownAttrs[0].Name.Local)
		}
		if j.EscapeSlash != "" {
			if _, ok := parseBool(j.EscapeSlash); !ok {
				return nil, pe.elem("JSONPayload", "escapeSlashCharacter %q is not true or false", j.EscapeSlash)
			}
		}
		if len(j.JSONPath) == 0 {
			return nil, pe.elem("JSONPayload", "at least one <JSONPath> is required")
		}
		if err := exprs("JSONPayload", "JSONPath", threat.TargetJSONPayload, j.JSONPath); err != nil {
			return nil, err
		}
		p.jsonRules = true
	}
	for _, j := range x.XMLPayload {
		if len(j.Unknown) > 0 {
			return nil, pe.elem("XMLPayload", "unknown element <%s> (supported: Namespaces, XPath)", j.Unknown[0].XMLName.Local)
		}
		if len(j.UnknownAttrs) > 0 {
			return nil, pe.elem("XMLPayload", "unknown attribute %s", j.UnknownAttrs[0].Name.Local)
		}
		if len(j.XPath) == 0 {
			return nil, pe.elem("XMLPayload", "at least one <XPath> is required")
		}
		if err := exprs("XMLPayload", "XPath", threat.TargetXMLPayload, j.XPath); err != nil {
			return nil, err
		}
		p.xmlRules = true
	}
	if len(rules) == 0 {
		return nil, pe.errorf("at least one of URIPath, QueryParam, Header, FormParam, Variable, JSONPayload, XMLPayload is required")
	}
	if p.rules, err = threat.NewRules(rules...); err != nil {
		return nil, pe.errorf("%v", err)
	}
	p.rules.IgnoreUnresolvedVariables = ignore
	return p, nil
}

// compilePatterns translates an element's <Pattern>s.
func compilePatterns(pe perr, label string, src []string) ([]threat.Pattern, error) {
	if len(src) == 0 {
		return nil, pe.elem(label, "at least one <Pattern> is required")
	}
	out := make([]threat.Pattern, 0, len(src))
	for _, s := range src {
		s = strings.TrimSpace(s)
		if s == "" {
			return nil, pe.elem(label+"><Pattern", "empty")
		}
		pat, err := threat.CompilePattern(s)
		if err != nil {
			var je *threat.JavaRegexError
			if errors.As(err, &je) {
				return nil, pe.elem(label+"><Pattern", "%v", je)
			}
			return nil, pe.elem(label+"><Pattern", "pattern %q: %v", s, err)
		}
		out = append(out, pat)
	}
	return out, nil
}

// unwrapRuleErr drops the engine's "regex rule N: " prefix.
func unwrapRuleErr(err error) string {
	s := err.Error()
	if i := strings.Index(s, ": "); strings.HasPrefix(s, "regex rule ") && i > 0 {
		return s[i+2:]
	}
	return s
}

// Name returns the policy's name.
func (p *RegularExpressionProtection) Name() string { return p.name }

// Kind returns "RegularExpressionProtection".
func (p *RegularExpressionProtection) Kind() string { return "RegularExpressionProtection" }

// Apply tests the Source message against the rules.
func (p *RegularExpressionProtection) Apply(_ context.Context, m *Message) (*Fault, error) {
	msg, ok := p.src.part(m)
	if !ok {
		return nil, nil
	}
	view := threat.RequestView{Header: msg.header, ContentType: msg.contentType(), Body: msg.body}
	if !msg.response {
		view.Method, view.Path, view.RawQuery = m.Method, m.Path, m.RawQuery
	}
	if len(p.vars) > 0 {
		view.Vars = make(map[string]string, len(p.vars))
		for _, n := range p.vars {
			if v, ok := Lookup(n, m); ok {
				view.Vars[n] = v
			}
		}
	}
	v := p.rules.Check(view)
	pre := "regularexpressionprotection." + p.name + "."
	m.vars().Set(pre+"failed", boolString(v != nil))
	if v == nil {
		return nil, nil
	}
	m.vars().Set(pre+"target", v.Target.String())
	def := faultRegexThreat
	switch v.Code {
	case threat.RegexExecutionFailed:
		def = faultRegexExecution
	case threat.RegexVariableResolutionFailed:
		def = faultRegexVariable
	}
	return threatFault(def, p.status, msg.response, v.FaultString(p.name)), nil
}

// NewResponseFilter refuses a JSON or XML answer one of the payload rules
// matches, before it goes out.
func (p *RegularExpressionProtection) NewResponseFilter(m *Message) (ChunkFilter, bool) {
	ct := contentTypeOf(m.ResponseHeader)
	if !p.src.checksResponse() || !(p.jsonRules && isJSONMedia(ct) || p.xmlRules && isXMLMedia(ct)) {
		return nil, false
	}
	return newWholeFilter(p, m), true
}
