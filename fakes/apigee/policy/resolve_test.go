package policy

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func resolveMsg() *Message {
	m := &Message{
		Phase: Response, Method: "POST", Path: "/v1/chat/completions", RawQuery: "apikey=k1&x=1&x=2",
		Header:   http.Header{"X-Api-Key": {"key-1"}, "Accept": {"a", "b"}, "Content-Type": {"application/json"}},
		ClientIP: "10.0.0.7",
		Body:     []byte(`{"model":"qwen3","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi there"}],"n":2.50}`),
		Status:   200, ResponseHeader: http.Header{"Content-Type": {"application/json"}},
		ResponseBody: []byte(`{"usage":{"prompt_tokens":7,"completion_tokens":5,"total_tokens":12},"choices":[{"message":{"content":"A"}},{"message":{"content":"B"}}]}`),
		Vars:         NewVars(),
	}
	m.Vars.Set("client_id", "cid")
	m.Vars.Set("verifyapikey.VA-1.apiproduct.developer.quota.limit", "100")
	return m
}

func TestLookup(t *testing.T) {
	t.Parallel()
	m := resolveMsg()
	for _, tc := range []struct {
		name, want string
		ok         bool
	}{
		{"request.header.x-api-key", "key-1", true},
		{"request.header.X-API-KEY", "key-1", true},
		{"REQUEST.HEADER.x-api-key", "key-1", true},
		{"request.header.accept", "a,b", true},
		{"request.header.missing", "", false},
		{"request.queryparam.apikey", "k1", true},
		{"request.queryparam.x", "1", true},
		{"request.queryparam.nope", "", false},
		{"request.verb", "POST", true},
		{"request.path", "/v1/chat/completions", true},
		{"proxy.pathsuffix", "/v1/chat/completions", true},
		{"request.uri", "/v1/chat/completions?apikey=k1&x=1&x=2", true},
		{"request.querystring", "apikey=k1&x=1&x=2", true},
		{"client.ip", "10.0.0.7", true},
		{"response.status.code", "200", true},
		{"response.header.content-type", "application/json", true},
		{"client_id", "cid", true},
		{"verifyapikey.VA-1.apiproduct.developer.quota.limit", "100", true},
		{"Client_ID", "", false}, // flow variables are case-sensitive
		{"nothing.here", "", false},
	} {
		got, ok := Lookup(tc.name, m)
		require.Equal(t, tc.want, got, tc.name)
		require.Equal(t, tc.ok, ok, tc.name)
	}
	// Response variables do not resolve in the request phase.
	m.Phase = Request
	_, ok := Lookup("response.content", m)
	require.False(t, ok)
	got, _ := Lookup("message.content", m)
	require.Equal(t, string(m.Body), got)
}

func TestLookupFormParam(t *testing.T) {
	t.Parallel()
	m := &Message{Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded; charset=utf-8"}},
		Body: []byte("grant_type=client_credentials&scope=a+b")}
	v, ok := Lookup("request.formparam.scope", m)
	require.True(t, ok)
	require.Equal(t, "a b", v)
	m.Header.Set("Content-Type", "application/json")
	_, ok = Lookup("request.formparam.scope", m)
	require.False(t, ok, "a JSON body has no form fields")
}

func TestResolve(t *testing.T) {
	t.Parallel()
	m := resolveMsg()
	for _, tc := range []struct{ expr, want string }{
		{"client_id", "cid"},
		{"unknown.variable", ""},
		{"{jsonPath('$.usage.total_tokens',response.content,true)}", "12"},
		{"{jsonPath('$.model',request.content,true)}", "qwen3"},
		{"{jsonPath('$.messages[-1].content',request.content,true)}", "hi there"},
		{"{jsonPath('$.messages[0].content',request.content)}", "be brief"},
		{"{jsonPath('$.messages[*].content',request.content,true)}", "be brief\nhi there"},
		{"{jsonPath('$.choices[*].message.content',response.content,false)}", "A\nB"},
		{"{jsonPath('$.usage',response.content,true)}", `{"completion_tokens":5,"prompt_tokens":7,"total_tokens":12}`},
		{"{jsonPath('$[\"n\"]',request.content,true)}", "2.50"},
		{"{jsonPath('$.messages[9].content',request.content,true)}", ""},
		{"{jsonPath('$.model',nothing,true)}", ""},
		{"{jsonPath('$.model',request.header.accept,true)}", ""}, // not JSON: null
		{"app {client_id} used {jsonPath('$.usage.total_tokens',response.content,true)} tokens", "app cid used 12 tokens"},
		{"{request.header.x-api-key}/{request.verb}", "key-1/POST"},
		{"{missing}x", "x"},
		{"plain text with no braces", ""}, // a bare name that is not a variable
	} {
		got, err := Resolve(tc.expr, m)
		require.NoError(t, err, tc.expr)
		require.Equal(t, tc.want, got, tc.expr)
	}
}

func TestResolveErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ expr, err string }{
		{"{client_id", `template "{client_id": unclosed {`},
		{"client_id}", `template "client_id}": unexpected }`},
		{"{}", `template "{}": empty {}`},
		{"{a b}", `template "{a b}": {a b}: not a variable name`},
		{"{upper(client_id)}", `template "{upper(client_id)}": {upper(client_id)}: unknown function "upper" (supported: jsonPath)`},
		{"{jsonPath('$.a')}", `template "{jsonPath('$.a')}": {jsonPath('$.a')}: jsonPath takes 2 or 3 arguments (path, variable[, want-array]), got 1`},
		{"{jsonPath($.a,request.content)}", `template "{jsonPath($.a,request.content)}": {jsonPath($.a,request.content)}: the jsonPath path must be a quoted string`},
		{"{jsonPath('a.b',request.content)}", `template "{jsonPath('a.b',request.content)}": {jsonPath('a.b',request.content)}: JSONPath "a.b" must start with $`},
		{"{jsonPath('$..a',request.content)}", `template "{jsonPath('$..a',request.content)}": {jsonPath('$..a',request.content)}: JSONPath "$..a": recursive descent (..) is not supported`},
		{"{jsonPath('$.a[x]',request.content)}", `template "{jsonPath('$.a[x]',request.content)}": {jsonPath('$.a[x]',request.content)}: JSONPath "$.a[x]": [x] is not an index, '*' or a quoted name`},
		{"{jsonPath('$.a','lit')}", `template "{jsonPath('$.a','lit')}": {jsonPath('$.a','lit')}: the jsonPath input must be a variable name`},
		{"{jsonPath('$.a',request.content,maybe)}", `template "{jsonPath('$.a',request.content,maybe)}": {jsonPath('$.a',request.content,maybe)}: the third jsonPath argument must be true or false`},
	} {
		_, err := Resolve(tc.expr, resolveMsg())
		require.EqualError(t, err, tc.err, tc.expr)
	}
}

func TestVars(t *testing.T) {
	t.Parallel()
	var nilVars *Vars
	_, ok := nilVars.Get("x")
	require.False(t, ok)
	require.Nil(t, nilVars.Names())
	v := NewVars()
	v.Set("b", "2")
	v.Set("a", "1")
	require.Equal(t, []string{"a", "b"}, v.Names())
	m := &Message{}
	m.vars().Set("k", "v")
	require.Equal(t, "v", varOf(m, "k"))
}
