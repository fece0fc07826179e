package policy

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatecheck/gatecheck/fakes/apigee/state"
	"github.com/gatecheck/gatecheck/internal/clock"
)

// Env is what policies need from the runtime. Zero fields get defaults (see
// each field); a policy that needs the Store fails its Apply with an error
// when there is none.
type Env struct {
	// Store holds the directory (developers, apps, keys, products, tokens)
	// and the counters.
	Store state.Store
	// Clock is used when a Message has no Now. nil: the wall clock.
	Clock clock.Clock
	// HTTPClient fetches JWKS. nil: a client with a 10 s timeout.
	HTTPClient *http.Client
	// Org is the organisation name in token answers. "": "gatecheck".
	Org string
	// APISource is the APIMExtensionPolicy the runtime serves: product
	// operation configs whose apiSource equals it (or is empty) apply. "":
	// every operation config applies.
	APISource string
	// Rand is the randomness for access tokens. nil: crypto/rand.
	Rand io.Reader
	// GraphQLSchemas are GraphQL schemas (SDL) the GraphQL policy's
	// <ResourceURL>graphql://NAME</ResourceURL> can name, by NAME, beside
	// the built-in ones (see GraphQL). An entry here wins over a built-in
	// one of the same name.
	GraphQLSchemas map[string]string
}

func (e Env) withDefaults() Env {
	if e.Clock == nil {
		e.Clock = clock.Real{}
	}
	if e.HTTPClient == nil {
		e.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if e.Org == "" {
		e.Org = "gatecheck"
	}
	if e.Rand == nil {
		e.Rand = rand.Reader
	}
	return e
}

// now is the time of a step: the message's, else the clock's.
func (e Env) now(m *Message) time.Time {
	if !m.Now.IsZero() {
		return m.Now
	}
	return e.Clock.Now()
}

var errNoStore = errors.New("no state store configured")

// parsers is the registry of policy kinds, by XML root element. Adding a
// kind is one line here.
var parsers = map[string]func(data []byte, env Env) (Policy, error){
	"AccessControl":               parseAccessControl,
	"GraphQL":                     parseGraphQL,
	"JSONThreatProtection":        parseJSONThreatProtection,
	"LLMTokenQuota":               parseLLMTokenQuota,
	"OAuthV2":                     parseOAuthV2,
	"PromptTokenLimit":            parsePromptTokenLimit,
	"Quota":                       parseQuota,
	"RegularExpressionProtection": parseRegularExpressionProtection,
	"SanitizeModelResponse":       parseSanitizeModelResponse,
	"SanitizeUserPrompt":          parseSanitizeUserPrompt,
	"SpikeArrest":                 parseSpikeArrest,
	"VerifyAPIKey":                parseVerifyAPIKey,
	"VerifyJWT":                   parseVerifyJWT,
}

// Kinds returns the policy kinds Parse understands, sorted.
func Kinds() []string {
	kinds := make([]string, 0, len(parsers))
	for k := range parsers {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	return kinds
}

// Parse parses one policy from its XML, dispatching on the root element, and
// validates it. Errors name the policy and the element at fault, for example
// `Quota "Q-1": <Allow>: count "abc" is not an integer`.
//
// The root's enabled="false" gives a policy whose Apply does nothing;
// continueOnError="true" gives one whose faults are recorded in the flow
// variable gatecheck.fault.{name} (the error code) instead of stopping the
// flow.
func Parse(data []byte, env Env) (Policy, error) {
	root, err := rootElement(data)
	if err != nil {
		return nil, err
	}
	parse, ok := parsers[root.Name.Local]
	if !ok {
		return nil, fmt.Errorf("unknown policy kind <%s> (supported: %s)", root.Name.Local, strings.Join(Kinds(), ", "))
	}
	p, err := parse(data, env.withDefaults())
	if err != nil {
		return nil, err
	}
	pe := perr{kind: p.Kind(), name: p.Name()}
	enabled, err := boolAttr(pe, root, "enabled", true)
	if err != nil {
		return nil, err
	}
	coe, err := boolAttr(pe, root, "continueOnError", false)
	if err != nil {
		return nil, err
	}
	if !enabled || coe {
		return flagged{Policy: p, disabled: !enabled, continueOnError: coe}, nil
	}
	return p, nil
}

func boolAttr(pe perr, root xml.StartElement, name string, def bool) (bool, error) {
	for _, a := range root.Attr {
		if a.Name.Local == name {
			b, ok := parseBool(a.Value)
			if !ok {
				return false, pe.errorf("%s=%q is not true or false", name, a.Value)
			}
			return b, nil
		}
	}
	return def, nil
}

// rootElement returns the first element of an XML document.
func rootElement(data []byte) (xml.StartElement, error) {
	dec := xml.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return xml.StartElement{}, errors.New("policy XML: no root element")
		}
		if err != nil {
			return xml.StartElement{}, fmt.Errorf("policy XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return t.Copy(), nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return xml.StartElement{}, errors.New("policy XML: text before the root element")
			}
		}
	}
}

// flagged applies the root's enabled and continueOnError attributes.
type flagged struct {
	Policy
	disabled        bool
	continueOnError bool
}

func (f flagged) Apply(ctx context.Context, m *Message) (*Fault, error) {
	if f.disabled {
		return nil, nil
	}
	fault, err := f.Policy.Apply(ctx, m)
	if fault != nil && f.continueOnError {
		m.vars().Set(VarFaultPrefix+f.Name(), fault.Code)
		return nil, err
	}
	return fault, err
}

// NewResponseFilter passes the wrapped policy's filter on. A disabled policy
// has none; neither has a continueOnError one: it must not interfere with
// the answer, so it runs at the end of the answer, where its fault is
// recorded in gatecheck.fault.{name}.
func (f flagged) NewResponseFilter(m *Message) (ChunkFilter, bool) {
	rf, ok := f.Policy.(ResponseFilter)
	if f.disabled || f.continueOnError || !ok {
		return nil, false
	}
	return rf.NewResponseFilter(m)
}

// xmlCommon is what every policy's root element may carry besides its own
// elements. Unknown elements and attributes are collected so validation can
// name them: a typo in a policy is an error, not a silently ignored setting.
type xmlCommon struct {
	Name            string     `xml:"name,attr"`
	Enabled         string     `xml:"enabled,attr"`
	ContinueOnError string     `xml:"continueOnError,attr"`
	Async           string     `xml:"async,attr"`
	DisplayName     string     `xml:"DisplayName"`
	Description     string     `xml:"Description"`
	Properties      *xmlAny    `xml:"Properties"`
	Unknown         []xmlAny   `xml:",any"`
	UnknownAttrs    []xml.Attr `xml:",any,attr"`
}

// xmlAny swallows an element and keeps its name.
type xmlAny struct {
	XMLName xml.Name
	Inner   []byte `xml:",innerxml"`
}

// xmlRef is an element with an optional ref attribute and text.
type xmlRef struct {
	Ref          string     `xml:"ref,attr"`
	Text         string     `xml:",chardata"`
	Unknown      []xmlAny   `xml:",any"`
	UnknownAttrs []xml.Attr `xml:",any,attr"`
}

// decodePolicy unmarshals data into v and checks the common part: the name
// attribute, unknown elements (elements lists the kind's own) and unknown
// attributes (attrs lists the kind's own besides the common ones).
func decodePolicy(kind string, data []byte, v any, c *xmlCommon, elements, attrs []string) (perr, error) {
	pe := perr{kind: kind}
	if err := xml.Unmarshal(data, v); err != nil {
		return pe, fmt.Errorf("%s: %w", kind, err)
	}
	pe.name = c.Name
	if strings.TrimSpace(c.Name) == "" {
		return pe, fmt.Errorf("%s: the name attribute is required", kind)
	}
	if len(c.Unknown) > 0 {
		supported := append([]string{"DisplayName", "Description", "Properties"}, elements...)
		slices.Sort(supported)
		return pe, pe.errorf("unknown or unsupported element <%s> (supported: %s)",
			c.Unknown[0].XMLName.Local, strings.Join(supported, ", "))
	}
	for _, a := range c.UnknownAttrs {
		if a.Name.Space != "" || a.Name.Local == "xmlns" {
			continue // namespace declarations and namespaced attributes (xsi:...)
		}
		if !slices.Contains(attrs, a.Name.Local) {
			supported := append([]string{"name", "enabled", "continueOnError", "async"}, attrs...)
			return pe, pe.errorf("unknown attribute %s (supported: %s)", a.Name.Local, strings.Join(supported, ", "))
		}
	}
	return pe, nil
}

// perr builds errors that name the policy and the element.
type perr struct{ kind, name string }

func (p perr) errorf(format string, args ...any) error {
	return fmt.Errorf("%s %q: %s", p.kind, p.name, fmt.Sprintf(format, args...))
}

func (p perr) elem(elem, format string, args ...any) error {
	return fmt.Errorf("%s %q: <%s>: %s", p.kind, p.name, elem, fmt.Sprintf(format, args...))
}

// checkRef validates an element's nested unknowns and its ref.
func (p perr) checkRef(elem string, r *xmlRef, attrs ...string) error {
	if r == nil {
		return nil
	}
	if len(r.Unknown) > 0 {
		return p.elem(elem, "unknown element <%s>", r.Unknown[0].XMLName.Local)
	}
	for _, a := range r.UnknownAttrs {
		if !slices.Contains(attrs, a.Name.Local) {
			return p.elem(elem, "unknown attribute %s", a.Name.Local)
		}
	}
	if r.Ref != "" {
		if _, err := parseTemplate(r.Ref); err != nil {
			return p.elem(elem, "ref: %v", err)
		}
	}
	return nil
}

func parseBool(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

// optBool parses an optional boolean element.
func (p perr) optBool(elem string, s *string) (bool, error) {
	if s == nil {
		return false, nil
	}
	b, ok := parseBool(*s)
	if !ok {
		return false, p.elem(elem, "%q is not true or false", strings.TrimSpace(*s))
	}
	return b, nil
}

// compile parses a template and names the element on error.
func (p perr) compile(elem, src string) (template, error) {
	t, err := parseTemplate(strings.TrimSpace(src))
	if err != nil {
		return t, p.elem(elem, "%v", err)
	}
	return t, nil
}

// parseInt64 parses a decimal integer with surrounding space.
func parseInt64(s string) (int64, error) {
	return strconv.ParseInt(strings.TrimSpace(s), 10, 64)
}
