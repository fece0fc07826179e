package policy

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// referenceXML is every policy shape of reference/apigee.md §4, as written
// there (PORT and "..." filled in where the reference elides them).
var referenceXML = []string{
	`<VerifyAPIKey name="VA-VerifyAPIKey"><APIKey ref="request.header.x-api-key"/></VerifyAPIKey>`,
	`<OAuthV2 name="OA-Verify"><Operation>VerifyAccessToken</Operation><Scope>write</Scope></OAuthV2>`,
	`<OAuthV2 name="OA-Generate"><Operation>GenerateAccessToken</Operation>
  <SupportedGrantTypes><GrantType>client_credentials</GrantType></SupportedGrantTypes>
  <ExpiresIn>3600000</ExpiresIn></OAuthV2>`,
	`<VerifyJWT name="JWT-Verify"><Algorithm>RS256</Algorithm>
  <PublicKey><JWKS uri="http://127.0.0.1:8089/jwks.json"/></PublicKey>
  <Issuer>https://issuer.example</Issuer><Audience>inference</Audience><TimeAllowance>30s</TimeAllowance></VerifyJWT>`,
	`<Quota name="Q-Requests" type="calendar">
  <Identifier ref="client_id"/><Allow count="100" countRef="verifyapikey.VA-VerifyAPIKey.apiproduct.developer.quota.limit"/>
  <Interval ref="verifyapikey.VA-VerifyAPIKey.apiproduct.developer.quota.interval">1</Interval><TimeUnit ref="verifyapikey.VA-VerifyAPIKey.apiproduct.developer.quota.timeunit">minute</TimeUnit>
  <Distributed>true</Distributed><Synchronous>true</Synchronous>
  <MessageWeight ref="total_token_count"/><EnforceOnly>true</EnforceOnly>
  <SharedName>token-quota</SharedName><StartTime>2026-01-01 00:00:00</StartTime></Quota>`,
	`<SpikeArrest name="SA"><Rate>10ps</Rate><Identifier ref="client_id"/><UseEffectiveCount>true</UseEffectiveCount></SpikeArrest>`,
	`<LLMTokenQuota name="LTQ" type="calendar"><Allow count="1000"/><Interval>1</Interval><TimeUnit>minute</TimeUnit>
  <LLMTokenUsageSource>{jsonPath('$.usage.total_tokens',response.content,true)}</LLMTokenUsageSource>
  <LLMModelSource>{jsonPath('$.model',request.content,true)}</LLMModelSource>
  <CountOnly>true</CountOnly><SharedName>llm</SharedName><StartTime>2026-01-01 00:00:00</StartTime></LLMTokenQuota>`,
	`<PromptTokenLimit name="PTL"><Identifier ref="client_id"/><Rate>1000pm</Rate>
  <UserPromptSource>{jsonPath('$.messages[-1].content',request.content,true)}</UserPromptSource></PromptTokenLimit>`,
	`<AccessControl name="AC"><IPRules noRuleMatchAction="ALLOW">
  <MatchRule action="DENY"><SourceAddress mask="32">10.1.2.3</SourceAddress></MatchRule></IPRules></AccessControl>`,
	// The threat protection kinds.
	`<JSONThreatProtection name="JTP"><Source>request</Source><ContainerDepth>10</ContainerDepth>
  <ObjectEntryCount>25</ObjectEntryCount><ArrayElementCount>50</ArrayElementCount>
  <ObjectEntryNameLength>64</ObjectEntryNameLength><StringValueLength>32000</StringValueLength></JSONThreatProtection>`,
	`<RegularExpressionProtection name="REP"><Source>request</Source>
  <QueryParam name="q"><Pattern>x</Pattern></QueryParam>
  <Header name="x-user"><Pattern>y</Pattern></Header>
  <JSONPayload><JSONPath><Expression>$.messages[*].content</Expression><Pattern>z</Pattern></JSONPath></JSONPayload>
</RegularExpressionProtection>`,
	`<GraphQL name="GQL"><Source>request</Source><OperationType>query_mutation</OperationType>
  <MaxDepth>4</MaxDepth><MaxCount>10</MaxCount><MaxPayloadSizeInBytes>10240</MaxPayloadSizeInBytes>
  <Action>parse_verify</Action><ResourceURL>graphql://schema.graphql</ResourceURL></GraphQL>`,
	`<SanitizeUserPrompt name="SUP"><UserPromptSource>{jsonPath('$.messages[-1].content',request.content,true)}</UserPromptSource><ModelArmor><TemplateName>projects/p/locations/us-central1/templates/default</TemplateName></ModelArmor></SanitizeUserPrompt>`,
	`<SanitizeModelResponse name="SMR"><LLMResponseSource>{jsonPath('$.choices[0].message.content',response.content,true)}</LLMResponseSource><ModelArmor><TemplateName>pii-only</TemplateName></ModelArmor></SanitizeModelResponse>`,
}

func TestParseReferenceShapes(t *testing.T) {
	t.Parallel()
	for _, x := range referenceXML {
		root, err := rootElement([]byte(x))
		require.NoError(t, err)
		p, err := Parse([]byte(x), Env{})
		if _, known := parsers[root.Name.Local]; !known {
			require.ErrorContains(t, err, "unknown policy kind <"+root.Name.Local+">")
			continue
		}
		require.NoError(t, err, root.Name.Local)
		require.Equal(t, root.Name.Local, p.Kind())
		require.NotEmpty(t, p.Name())
	}
}

func TestParseDispatch(t *testing.T) {
	t.Parallel()
	_, err := Parse([]byte(`<Foo name="x"/>`), Env{})
	require.EqualError(t, err, "unknown policy kind <Foo> (supported: AccessControl, GraphQL, JSONThreatProtection, LLMTokenQuota, OAuthV2, PromptTokenLimit, Quota, RegularExpressionProtection, SanitizeModelResponse, SanitizeUserPrompt, SpikeArrest, VerifyAPIKey, VerifyJWT)")
	_, err = Parse([]byte(`  <?xml version="1.0"?><!-- c --><VerifyAPIKey name="V"><APIKey ref="request.queryparam.apikey"/></VerifyAPIKey>`), Env{})
	require.NoError(t, err)
	_, err = Parse([]byte(`<VerifyAPIKey xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:foo="x" name="V"><APIKey ref="request.header.k"/></VerifyAPIKey>`), Env{})
	require.NoError(t, err, "namespace declarations are not unknown attributes")
	_, err = Parse(nil, Env{})
	require.EqualError(t, err, "policy XML: no root element")
	_, err = Parse([]byte("hello <Quota/>"), Env{})
	require.EqualError(t, err, "policy XML: text before the root element")
	_, err = Parse([]byte("<Quota"), Env{})
	require.ErrorContains(t, err, "policy XML: XML syntax error")
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	quota := func(inner string) string { return `<Quota name="Q-1">` + inner + `</Quota>` }
	okQuota := `<Allow count="5"/><Interval>1</Interval><TimeUnit>minute</TimeUnit>`
	for _, tc := range []struct{ xml, err string }{
		// Common.
		{`<Quota>` + okQuota + `</Quota>`, `Quota: the name attribute is required`},
		{quota(okQuota + `<Alow count="1"/>`), `Quota "Q-1": unknown or unsupported element <Alow> (supported: Allow, AsynchronousConfiguration, CountOnly, Description, DisplayName, Distributed, EnforceOnly, Identifier, Interval, MessageWeight, Properties, SharedName, StartTime, Synchronous, TimeUnit)`},
		{`<Quota name="Q-1" tpye="flexi">` + okQuota + `</Quota>`, `Quota "Q-1": unknown attribute tpye (supported: name, enabled, continueOnError, async, type)`},
		{`<Quota name="Q-1" enabled="yes">` + okQuota + `</Quota>`, `Quota "Q-1": enabled="yes" is not true or false`},
		// Quota.
		{`<Quota name="Q-1" type="weekly">` + okQuota + `</Quota>`, `Quota "Q-1": type "weekly" is not calendar, rollingwindow or flexi (or absent, for the default)`},
		{quota(`<Allow count="abc"/><Interval>1</Interval><TimeUnit>minute</TimeUnit>`), `Quota "Q-1": <Allow>: count "abc" is not an integer`},
		{quota(`<Allow count="-2"/><Interval>1</Interval><TimeUnit>minute</TimeUnit>`), `Quota "Q-1": <Allow>: count -2 is negative`},
		{quota(`<Allow/><Interval>1</Interval><TimeUnit>minute</TimeUnit>`), `Quota "Q-1": <Allow>: count or countRef is required`},
		{quota(`<Allow count="1" max="2"/><Interval>1</Interval><TimeUnit>minute</TimeUnit>`), `Quota "Q-1": <Allow>: unknown attribute max (supported: count, countRef)`},
		{quota(`<Allow><Class ref="x"/></Allow><Interval>1</Interval><TimeUnit>minute</TimeUnit>`), `Quota "Q-1": <Allow>: unknown or unsupported element <Class>`},
		{quota(`<Interval>1</Interval><TimeUnit>minute</TimeUnit>`), `Quota "Q-1": <Allow>: required`},
		{quota(`<Allow count="1"/><TimeUnit>minute</TimeUnit>`), `Quota "Q-1": <Interval>: required`},
		{quota(`<Allow count="1"/><Interval>0</Interval><TimeUnit>minute</TimeUnit>`), `Quota "Q-1": <Interval>: "0" is not a positive integer`},
		{quota(`<Allow count="1"/><Interval/><TimeUnit>minute</TimeUnit>`), `Quota "Q-1": <Interval>: a value or a ref is required`},
		{quota(`<Allow count="1"/><Interval>1</Interval><TimeUnit>fortnight</TimeUnit>`), `Quota "Q-1": <TimeUnit>: "fortnight" is not one of minute, hour, day, week, month`},
		{quota(`<Allow count="1"/><Interval>1</Interval>`), `Quota "Q-1": <TimeUnit>: required`},
		{`<Quota name="Q-1" type="calendar">` + okQuota + `</Quota>`, `Quota "Q-1": <StartTime>: required when type is calendar`},
		{`<Quota name="Q-1" type="calendar">` + okQuota + `<StartTime>2026-01-01T00:00:00Z</StartTime></Quota>`, `Quota "Q-1": <StartTime>: "2026-01-01T00:00:00Z" is not a time like 2026-01-01 00:00:00 (UTC)`},
		{quota(okQuota + `<StartTime>2026-01-01 00:00:00</StartTime>`), `Quota "Q-1": <StartTime>: only applies to type="calendar"`},
		{quota(okQuota + `<Distributed>yes</Distributed>`), `Quota "Q-1": <Distributed>: "yes" is not true or false`},
		{quota(okQuota + `<EnforceOnly>true</EnforceOnly><CountOnly>true</CountOnly>`), `Quota "Q-1": <CountOnly>: cannot be true together with <EnforceOnly>`},
		{quota(okQuota + `<MessageWeight/>`), `Quota "Q-1": <MessageWeight>: the ref attribute is required`},
		{quota(okQuota + `<MessageWeight ref="{jsonPath('$.x')}"/>`), `Quota "Q-1": <MessageWeight>: ref: template "{jsonPath('$.x')}": {jsonPath('$.x')}: jsonPath takes 2 or 3 arguments (path, variable[, want-array]), got 1`},
		{quota(okQuota + `<Identifier/>`), `Quota "Q-1": <Identifier>: the ref attribute is required`},
		{quota(okQuota + `<SharedName> </SharedName>`), `Quota "Q-1": <SharedName>: empty`},
		// VerifyAPIKey.
		{`<VerifyAPIKey name="VA"/>`, `VerifyAPIKey "VA": <APIKey>: required`},
		{`<VerifyAPIKey name="VA"><APIKey/></VerifyAPIKey>`, `VerifyAPIKey "VA": <APIKey>: the ref attribute is required (for example request.header.x-api-key)`},
		{`<VerifyAPIKey name="VA"><APIKey ref="{request.header.x}"/></VerifyAPIKey>`, `VerifyAPIKey "VA": <APIKey>: ref "{request.header.x}" must be a variable name, not a template`},
		{`<VerifyAPIKey name="VA"><APIKey reff="x"/></VerifyAPIKey>`, `VerifyAPIKey "VA": <APIKey>: unknown attribute reff`},
		// OAuthV2.
		{`<OAuthV2 name="OA"/>`, `OAuthV2 "OA": <Operation>: required (GenerateAccessToken or VerifyAccessToken)`},
		{`<OAuthV2 name="OA"><Operation>RefreshAccessToken</Operation></OAuthV2>`, `OAuthV2 "OA": <Operation>: "RefreshAccessToken" is not supported (supported: GenerateAccessToken, VerifyAccessToken)`},
		{`<OAuthV2 name="OA"><Operation>GenerateAccessToken</Operation></OAuthV2>`, `OAuthV2 "OA": <SupportedGrantTypes>: at least one <GrantType> is required (client_credentials)`},
		{`<OAuthV2 name="OA"><Operation>GenerateAccessToken</Operation><SupportedGrantTypes><GrantType>password</GrantType></SupportedGrantTypes></OAuthV2>`, `OAuthV2 "OA": <SupportedGrantTypes><GrantType>: "password" is not supported (supported: client_credentials)`},
		{`<OAuthV2 name="OA"><Operation>GenerateAccessToken</Operation><SupportedGrantTypes><GrantType>client_credentials</GrantType></SupportedGrantTypes><ExpiresIn>soon</ExpiresIn></OAuthV2>`, `OAuthV2 "OA": <ExpiresIn>: "soon" is not a positive number of milliseconds (or -1 for never)`},
		{`<OAuthV2 name="OA"><Operation>VerifyAccessToken</Operation><ExpiresIn>1000</ExpiresIn></OAuthV2>`, `OAuthV2 "OA": <ExpiresIn>: only applies to Operation GenerateAccessToken`},
		{`<OAuthV2 name="OA"><Operation>GenerateAccessToken</Operation><SupportedGrantTypes><GrantType>client_credentials</GrantType></SupportedGrantTypes><AccessToken>x</AccessToken></OAuthV2>`, `OAuthV2 "OA": <AccessToken>: only applies to Operation VerifyAccessToken`},
		{`<OAuthV2 name="OA"><Operation>GenerateAccessToken</Operation><SupportedGrantTypes><GrantType>client_credentials</GrantType></SupportedGrantTypes><GenerateResponse enabled="maybe"/></OAuthV2>`, `OAuthV2 "OA": <GenerateResponse>: enabled "maybe" is not true or false`},
		// VerifyJWT.
		{`<VerifyJWT name="J"><PublicKey><JWKS uri="http://x/j"/></PublicKey></VerifyJWT>`, `VerifyJWT "J": <Algorithm>: required (RS256, ES256)`},
		{`<VerifyJWT name="J"><Algorithm>HS256</Algorithm><PublicKey><JWKS uri="http://x/j"/></PublicKey></VerifyJWT>`, `VerifyJWT "J": <Algorithm>: "HS256" is not supported (supported: RS256, ES256)`},
		{`<VerifyJWT name="J"><Algorithm>RS256</Algorithm></VerifyJWT>`, `VerifyJWT "J": <PublicKey>: required (<JWKS uri="..."/>, <JWKS>{...}</JWKS> or <Value>PEM</Value>)`},
		{`<VerifyJWT name="J"><Algorithm>RS256</Algorithm><PublicKey><JWKS uri="ftp://x/j"/></PublicKey></VerifyJWT>`, `VerifyJWT "J": <PublicKey><JWKS>: uri "ftp://x/j" is not an http(s) URL`},
		{`<VerifyJWT name="J"><Algorithm>RS256</Algorithm><PublicKey><JWKS>{"keys":</JWKS></PublicKey></VerifyJWT>`, `VerifyJWT "J": <PublicKey><JWKS>: not a JWKS: unexpected end of JSON input`},
		{`<VerifyJWT name="J"><Algorithm>RS256</Algorithm><PublicKey><Value>nope</Value></PublicKey></VerifyJWT>`, `VerifyJWT "J": <PublicKey><Value>: not a PEM public key`},
		{`<VerifyJWT name="J"><Algorithm>RS256</Algorithm><PublicKey><Certificate/></PublicKey></VerifyJWT>`, `VerifyJWT "J": <PublicKey>: unknown or unsupported element <Certificate> (supported: JWKS, Value)`},
		{`<VerifyJWT name="J"><Algorithm>RS256</Algorithm><PublicKey><JWKS uri="http://x/j"/></PublicKey><TimeAllowance>soon</TimeAllowance></VerifyJWT>`, `VerifyJWT "J": <TimeAllowance>: "soon" is not a duration like 30s, 5m, 1h, or milliseconds`},
		{`<VerifyJWT name="J"><Algorithm>RS256</Algorithm><PublicKey><JWKS uri="http://x/j"/></PublicKey><AdditionalClaims/></VerifyJWT>`, `VerifyJWT "J": unknown or unsupported element <AdditionalClaims> (supported: Algorithm, Audience, Description, DisplayName, IgnoreUnresolvedVariables, Issuer, Properties, PublicKey, Source, Subject, TimeAllowance)`},
		// AccessControl.
		{`<AccessControl name="AC"/>`, `AccessControl "AC": <IPRules>: required`},
		{`<AccessControl name="AC"><IPRules noRuleMatchAction="MAYBE"/></AccessControl>`, `AccessControl "AC": <IPRules>: noRuleMatchAction "MAYBE" is not ALLOW or DENY`},
		{`<AccessControl name="AC"><IPRules noRuleMatchAction="ALLOW"><MatchRule action="DENY"><SourceAddress mask="33">10.0.0.1</SourceAddress></MatchRule></IPRules></AccessControl>`, `AccessControl "AC": <MatchRule><SourceAddress>: mask "33" is not between 0 and 32`},
		{`<AccessControl name="AC"><IPRules noRuleMatchAction="ALLOW"><MatchRule action="DENY"><SourceAddress mask="8">10.0.0.300</SourceAddress></MatchRule></IPRules></AccessControl>`, `AccessControl "AC": <MatchRule><SourceAddress>: "10.0.0.300" is not an IP address`},
		{`<AccessControl name="AC"><IPRules noRuleMatchAction="ALLOW"><MatchRule action="DENY"/></IPRules></AccessControl>`, `AccessControl "AC": <MatchRule>: at least one <SourceAddress> is required`},
		{`<AccessControl name="AC"><IPRules noRuleMatchAction="ALLOW"/><ValidateBasedOn>XFF</ValidateBasedOn></AccessControl>`, `AccessControl "AC": <ValidateBasedOn>: "XFF" is not one of X_FORWARDED_FOR_ALL_IP, X_FORWARDED_FOR_FIRST_IP, X_FORWARDED_FOR_LAST_IP`},
		// SpikeArrest.
		{`<SpikeArrest name="SA"/>`, `SpikeArrest "SA": <Rate>: required`},
		{`<SpikeArrest name="SA"><Rate>30.1ps</Rate></SpikeArrest>`, `SpikeArrest "SA": <Rate>: "30.1ps" is not a rate like 10ps or 100pm (a positive integer per second or per minute)`},
		{`<SpikeArrest name="SA"><Rate>30s</Rate></SpikeArrest>`, `SpikeArrest "SA": <Rate>: "30s" is not a rate like 10ps or 100pm (a positive integer per second or per minute)`},
		{`<SpikeArrest name="SA"><Rate>10ps</Rate><UseEffectiveCount>1</UseEffectiveCount></SpikeArrest>`, `SpikeArrest "SA": <UseEffectiveCount>: "1" is not true or false`},
		// LLMTokenQuota and PromptTokenLimit.
		{`<LLMTokenQuota name="L">` + okQuota + `<LLMTokenUsageSource>{jsonPath('$.usage',response.content</LLMTokenUsageSource></LLMTokenQuota>`, `LLMTokenQuota "L": <LLMTokenUsageSource>: template "{jsonPath('$.usage',response.content": unclosed {`},
		{`<LLMTokenQuota name="L"><Allow count="x"/></LLMTokenQuota>`, `LLMTokenQuota "L": <Allow>: count "x" is not an integer`},
		{`<PromptTokenLimit name="P"><Rate>100</Rate></PromptTokenLimit>`, `PromptTokenLimit "P": <Rate>: "100" is not a rate like 10ps or 100pm (a positive integer per second or per minute)`},
		{`<PromptTokenLimit name="P"><Rate>100pm</Rate><UserPromptSource></UserPromptSource></PromptTokenLimit>`, `PromptTokenLimit "P": <UserPromptSource>: empty`},
	} {
		_, err := Parse([]byte(tc.xml), Env{})
		require.EqualError(t, err, tc.err, tc.xml)
	}
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	off := f.parse(t, `<VerifyAPIKey name="VA" enabled="false"><APIKey ref="request.header.x-api-key"/></VerifyAPIKey>`)
	require.Equal(t, "VA", off.Name())
	require.Equal(t, "VerifyAPIKey", off.Kind())
	require.Nil(t, apply(t, off, f.msg("GET", "/", "")), "a disabled policy does nothing")

	coe := f.parse(t, `<VerifyAPIKey name="VA" continueOnError="true"><APIKey ref="request.header.x-api-key"/></VerifyAPIKey>`)
	m := f.msg("GET", "/", "")
	require.Nil(t, apply(t, coe, m))
	require.Equal(t, "steps.oauth.v2.FailedToResolveAPIKey", varOf(m, "gatecheck.fault.VA"))
}

func TestFaultTable(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, d := range FaultTable() {
		require.NotZero(t, d.Status, d.Code)
		require.NotEmpty(t, d.FaultString, d.Code)
		require.Contains(t, []string{"apigee-docs", "apigee-code", "observed", "unconfirmed", "gatecheck"}, d.Source, d.Code)
		key := d.Code + "|" + d.FaultString
		require.False(t, seen[key], "duplicate %s", key)
		seen[key] = true
		if strings.HasPrefix(d.Code, "gatecheck.") {
			require.Equal(t, "gatecheck", d.Source)
		}
	}
}

func TestNoStore(t *testing.T) {
	t.Parallel()
	p, err := Parse([]byte(referenceXML[0]), Env{})
	require.NoError(t, err)
	m := &Message{Header: map[string][]string{"X-Api-Key": {"k"}}}
	_, err = p.Apply(context.Background(), m)
	require.EqualError(t, err, `VerifyAPIKey "VA-VerifyAPIKey": no state store configured`)
}
