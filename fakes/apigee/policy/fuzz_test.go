package policy

import (
	"context"
	"net/http"
	"testing"
)

// FuzzParse: no policy XML makes Parse panic, and whatever parses can be
// applied to a message without panicking.
func FuzzParse(f *testing.F) {
	for _, x := range referenceXML {
		f.Add([]byte(x))
	}
	f.Add([]byte(`<Quota name="Q" type="flexi"><Allow count="1"/><Interval ref="x">1</Interval><TimeUnit>month</TimeUnit></Quota>`))
	f.Add([]byte(`<AccessControl name="A"><IPRules noRuleMatchAction="DENY"><MatchRule action="ALLOW"><SourceAddress>::/0</SourceAddress></MatchRule></IPRules><ValidateBasedOn>X_FORWARDED_FOR_ALL_IP</ValidateBasedOn></AccessControl>`))
	f.Add([]byte(`<VerifyJWT name="J"><Algorithm>ES256</Algorithm><PublicKey><JWKS>{"keys":[{"kty":"EC","crv":"P-256","x":"","y":""}]}</JWKS></PublicKey></VerifyJWT>`))
	// Threat protection shapes beyond the reference ones.
	f.Add([]byte(`<RegularExpressionProtection name="R"><Source>message</Source><IgnoreUnresolvedVariables>true</IgnoreUnresolvedVariables>
  <URIPath><Pattern>\.\./</Pattern></URIPath><QueryParam name="*"><Pattern>(?i)union\s+select</Pattern></QueryParam>
  <Header name="x"><Pattern>[&lt;&gt;]</Pattern></Header><FormParam name="f"><Pattern>a</Pattern></FormParam>
  <Variable name="request.content"><Pattern>\p{Alpha}+</Pattern></Variable>
  <JSONPayload escapeSlashCharacter="true"><JSONPath><Expression>$..content</Expression><Pattern>(?&lt;name&gt;x)</Pattern></JSONPath></JSONPayload>
  <XMLPayload><Namespaces/><XPath><Expression>//a/@b</Expression><Type>string</Type><Pattern>y</Pattern></XPath></XMLPayload>
  <FaultStatus>403</FaultStatus></RegularExpressionProtection>`))
	f.Add([]byte(`<GraphQL name="G"><Action>parse_verify</Action><ResourceURL>graphql://gatecheck-models.graphql</ResourceURL><MaxDepth>2</MaxDepth><OperationType>query</OperationType></GraphQL>`))
	f.Add([]byte(`<JSONThreatProtection name="J"><Source>message</Source><ContainerDepth>-1</ContainerDepth><StringValueLength>1</StringValueLength><FaultStatus>500</FaultStatus></JSONThreatProtection>`))
	f.Add([]byte(`<SanitizeUserPrompt name="S"><IgnoreUnresolvedVariables>true</IgnoreUnresolvedVariables><UserPromptSource>{jsonPath('$.messages[-1].content',request.content,true)}</UserPromptSource><ModelArmor><TemplateName>strict</TemplateName></ModelArmor><Action>flag</Action></SanitizeUserPrompt>`))
	f.Add([]byte(`<SanitizeModelResponse name="S" continueOnError="true"><LLMResponseSource>{jsonPath('$.choices[0].message.content',response.content,true)}</LLMResponseSource><ModelArmor><TemplateName>pii-only</TemplateName></ModelArmor><Action>block</Action></SanitizeModelResponse>`))
	f.Add([]byte(`<SanitizeModelResponse name="S"><Action>block</Action></SanitizeModelResponse>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fx := newFixture(t)
		fx.env.HTTPClient = &http.Client{Transport: failingTransport{}}
		p, err := Parse(data, fx.env)
		if err != nil {
			return
		}
		m := fx.msg("POST", "/v1/chat/completions", `{"model":"m","messages":[{"content":"hi"}]}`,
			"x-api-key", "k", "Authorization", "Bearer a.b.c", "X-Forwarded-For", "10.0.0.1", "Content-Type", "application/json")
		_, _ = p.Apply(context.Background(), m)
		m.Phase = Response
		m.ResponseBody = []byte(openAISSE)
		_, _ = p.Apply(context.Background(), m)
		// A response filter takes any answer chunk by chunk without panicking.
		if rf, ok := p.(ResponseFilter); ok {
			for _, ct := range []string{"text/event-stream", "application/json", "application/x-ndjson"} {
				m.ResponseHeader = http.Header{"Content-Type": {ct}}
				cf, ok := rf.NewResponseFilter(m)
				if !ok {
					continue
				}
				done := false
				for _, piece := range []string{openAISSE[:7], openAISSE[7:], ollamaNDJSON, openAIJSON} {
					if _, f, err := cf.Write([]byte(piece)); f != nil || err != nil {
						done = true
						break
					}
				}
				if !done {
					_, _, _ = cf.Close()
				}
			}
		}
	})
}

// failingTransport keeps fuzzed JWKS URIs off the network.
type failingTransport struct{}

func (failingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, http.ErrNotSupported
}

// FuzzResolve: no expression or body makes Resolve (or TokenUsage, or
// CountTokens) panic.
func FuzzResolve(f *testing.F) {
	for _, seed := range []struct{ expr, body string }{
		{"{jsonPath('$.usage.total_tokens',response.content,true)}", openAIJSON},
		{"{jsonPath('$.messages[-1].content',request.content,true)}", `{"messages":[{"content":"x"}]}`},
		{"{jsonPath('$.a[*].b',request.content)} and {client_id}", `{"a":[{"b":1},{"b":[2]}]}`},
		{"request.header.x-api-key", ""},
		{"{jsonPath('$[\"a\"][0]',response.content,false)}", `{"a":[null]}`},
		{"{", "{"},
		{"}{", ollamaNDJSON},
	} {
		f.Add(seed.expr, seed.body)
	}
	f.Fuzz(func(t *testing.T, expr, body string) {
		m := &Message{Phase: Response, Method: "POST", Path: "/p", RawQuery: body, Header: http.Header{"X-Api-Key": {body}},
			Body: []byte(body), ResponseBody: []byte(body), Vars: NewVars()}
		m.Vars.Set("client_id", body)
		_, _ = Resolve(expr, m)
		_, _, _, _ = TokenUsage([]byte(body), "")
		_, _, _, _ = TokenUsage([]byte(body), "text/event-stream")
		_ = CountTokens(body)
	})
}
