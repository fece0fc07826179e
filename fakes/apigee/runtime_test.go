package apigee

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/gatecheck/gatecheck/fakes/apigee/policy"
	"github.com/gatecheck/gatecheck/fakes/apigee/state"
	"github.com/gatecheck/gatecheck/internal/apigeeapi"
	"github.com/gatecheck/gatecheck/internal/extproc"
	"github.com/gatecheck/gatecheck/manifests"
)

const (
	testKey   = "test-consumer-key-0123456789"
	testEmail = "alice@example.com"
	testApp   = "alice-app"
	testProd  = "everything"
)

// serveRuntime runs a runtime for flow on a loopback port and returns an
// ext_proc client connected to it over gRPC, as the gateway connects.
func serveRuntime(t *testing.T, flow *Flow) (extprocv3.ExternalProcessorClient, *Traces) {
	t.Helper()
	traces := NewTraces(16)
	rt := New(Options{Flow: flow, Traces: traces})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = rt.Serve(lis)
	}()
	t.Cleanup(func() { rt.Stop(); <-done })
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return extprocv3.NewExternalProcessorClient(conn), traces
}

// securedFlow is the operator's default security over a store holding one
// active developer with one approved app whose key has a product granting
// everything.
func securedFlow(t *testing.T) *Flow {
	t.Helper()
	flow, err := BuildFlow(&manifests.Extension{Name: "apim", DefaultSecurity: true}, policy.Env{Store: securedStore(t)})
	require.NoError(t, err)
	return flow
}

// securedStore holds one active developer with one approved app whose key
// has a product granting everything.
func securedStore(t *testing.T) state.Store {
	t.Helper()
	ctx := context.Background()
	st := state.NewMemory()
	require.NoError(t, st.PutProduct(ctx, apigeeapi.APIProduct{Name: testProd, ApprovalType: "auto"}))
	require.NoError(t, st.PutDeveloper(ctx, apigeeapi.Developer{Email: testEmail, FirstName: "Alice", LastName: "Example",
		UserName: "alice", DeveloperID: "dev-1", Status: "active"}))
	require.NoError(t, st.PutApp(ctx, testEmail, apigeeapi.DeveloperApp{Name: testApp, AppID: "app-1", DeveloperID: "dev-1",
		Status: "approved", APIProducts: []string{testProd}, Credentials: []apigeeapi.Credential{{
			ConsumerKey: testKey, ConsumerSecret: "secret", Status: "approved", ExpiresAt: "-1",
			APIProducts: []apigeeapi.APIProductRef{{APIProduct: testProd, Status: "approved"}},
		}}}))
	return st
}

// exchange opens one ext_proc stream (one HTTP request), sends each message
// and reads the one answer each gets.
func exchange(t *testing.T, c extprocv3.ExternalProcessorClient, msgs ...*extprocv3.ProcessingRequest) []*extprocv3.ProcessingResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := c.Process(ctx)
	require.NoError(t, err)
	var out []*extprocv3.ProcessingResponse
	for _, m := range msgs {
		require.NoError(t, stream.Send(m))
		resp, err := stream.Recv()
		require.NoError(t, err)
		out = append(out, resp)
		if resp.GetImmediateResponse() != nil {
			break
		}
	}
	require.NoError(t, stream.CloseSend())
	return out
}

func requestHeaders(h map[string][]string, endOfStream bool) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{
		RequestHeaders: &extprocv3.HttpHeaders{Headers: extproc.HeaderMap(h), EndOfStream: endOfStream}}}
}

func requestBody(body string) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{
		RequestBody: &extprocv3.HttpBody{Body: []byte(body), EndOfStream: true}}}
}

func responseHeaders(status string) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{
		ResponseHeaders: &extprocv3.HttpHeaders{Headers: extproc.HeaderMap(map[string][]string{
			":status": {status}, "content-type": {"application/json"}}), EndOfStream: true}}}
}

// apply applies a header mutation as Envoy does (removals, then sets that
// overwrite) to a copy of the request's headers: what the backend receives.
func apply(h map[string][]string, m *extprocv3.HeaderMutation) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		out[strings.ToLower(k)] = v[0]
	}
	for _, k := range m.GetRemoveHeaders() {
		delete(out, strings.ToLower(k))
	}
	for _, o := range m.GetSetHeaders() {
		v := o.GetHeader().GetValue()
		if len(o.GetHeader().GetRawValue()) > 0 {
			v = string(o.GetHeader().GetRawValue())
		}
		out[strings.ToLower(o.GetHeader().GetKey())] = v
	}
	return out
}

// TestRuntimeForwardsIdentity drives the runtime over a real gRPC ext_proc
// stream: an allowed request reaches the backend with the identity headers
// the runtime set, without the API key, and without the x-apigee-* headers
// the client tried to set itself.
func TestRuntimeForwardsIdentity(t *testing.T) {
	t.Parallel()
	client, traces := serveRuntime(t, securedFlow(t))
	sent := map[string][]string{
		":method": {"POST"}, ":path": {"/v1/chat/completions"}, ":authority": {"gateway"},
		"content-type":       {"application/json"},
		"x-api-key":          {testKey},
		"x-apigee-developer": {"mallory@evil.example"},
		"X-Apigee-Debug":     {"1"},
		"x-request-id":       {"r-1"},
	}
	resps := exchange(t, client, requestHeaders(sent, false), requestBody(`{"model":"m","messages":[]}`), responseHeaders("200"))
	require.Len(t, resps, 3)

	// The decision waits for the body: the headers go on untouched.
	hr := resps[0].GetRequestHeaders()
	require.NotNil(t, hr, "headers answered with a headers response: %v", resps[0])
	assert.Empty(t, hr.GetResponse().GetHeaderMutation().GetSetHeaders())
	assert.Empty(t, hr.GetResponse().GetHeaderMutation().GetRemoveHeaders())

	br := resps[1].GetRequestBody()
	require.NotNil(t, br, "body answered with a body response: %v", resps[1])
	backend := apply(sent, br.GetResponse().GetHeaderMutation())
	assert.Equal(t, testApp, backend["x-apigee-app"])
	assert.Equal(t, testEmail, backend["x-apigee-developer"], "the runtime's identity, not the client's")
	assert.Equal(t, testProd, backend["x-apigee-product"])
	assert.NotContains(t, backend, "x-api-key", "the credential does not reach the backend")
	assert.NotContains(t, backend, "x-apigee-debug", "x-apigee-* the client sent is dropped")
	assert.Equal(t, "r-1", backend["x-request-id"], "other headers go on")
	assert.Contains(t, br.GetResponse().GetHeaderMutation().GetRemoveHeaders(), "x-api-key")
	assert.NotContains(t, br.GetResponse().GetHeaderMutation().GetRemoveHeaders(), "x-apigee-developer",
		"the runtime's own identity header is set, not removed")

	rh := resps[2].GetResponseHeaders()
	require.NotNil(t, rh)
	id := apply(nil, rh.GetResponse().GetHeaderMutation())[TraceHeader]
	require.NotEmpty(t, id, "the answer carries its trace id")
	tr, ok := traces.Get(id)
	require.True(t, ok)
	assert.Equal(t, "allowed", tr.Outcome)
	assert.Equal(t, http.StatusOK, tr.Status)
	raw, err := json.Marshal(tr)
	require.NoError(t, err)
	assert.NotContains(t, string(raw), testKey, "no full key in the trace")
}

// TestRuntimeBodylessRequest decides on the headers of a request without a
// body.
func TestRuntimeBodylessRequest(t *testing.T) {
	t.Parallel()
	client, _ := serveRuntime(t, securedFlow(t))
	sent := map[string][]string{":method": {"GET"}, ":path": {"/v1/models"}, "x-api-key": {testKey}, "x-apigee-app": {"spoofed"}}
	resps := exchange(t, client, requestHeaders(sent, true))
	require.Len(t, resps, 1)
	hr := resps[0].GetRequestHeaders()
	require.NotNil(t, hr, "%v", resps[0])
	backend := apply(sent, hr.GetResponse().GetHeaderMutation())
	assert.Equal(t, testApp, backend["x-apigee-app"])
	assert.Equal(t, testEmail, backend["x-apigee-developer"])
	assert.NotContains(t, backend, "x-api-key")
}

// TestRuntimeDropsSpoofsWithoutIdentity: a flow that verifies nobody (no
// policies) still drops every x-apigee-* header the client sent, so the
// backend never trusts a forged one.
func TestRuntimeDropsSpoofsWithoutIdentity(t *testing.T) {
	t.Parallel()
	client, _ := serveRuntime(t, &Flow{Name: "open"})
	sent := map[string][]string{":method": {"POST"}, ":path": {"/v1/chat/completions"},
		"x-apigee-developer": {"mallory@evil.example"}, "x-apigee-app": {"evil"}, "x-apigee-product": {"gold"}}
	resps := exchange(t, client, requestHeaders(sent, false), requestBody(`{}`))
	require.Len(t, resps, 2)
	backend := apply(sent, resps[1].GetRequestBody().GetResponse().GetHeaderMutation())
	for _, h := range []string{"x-apigee-developer", "x-apigee-app", "x-apigee-product"} {
		assert.NotContains(t, backend, h)
	}
}

// TestRuntimeRefusal answers a refused request with Apigee's fault JSON as
// an immediate response, and never forwards it.
func TestRuntimeRefusal(t *testing.T) {
	t.Parallel()
	client, traces := serveRuntime(t, securedFlow(t))
	sent := map[string][]string{":method": {"POST"}, ":path": {"/v1/chat/completions"}, "x-apigee-developer": {testEmail}}
	resps := exchange(t, client, requestHeaders(sent, false), requestBody(`{"model":"m"}`))
	require.Len(t, resps, 2)
	ir := resps[1].GetImmediateResponse()
	require.NotNil(t, ir, "%v", resps[1])
	assert.Equal(t, http.StatusUnauthorized, extproc.ImmediateStatus(ir))
	var f apigeeapi.Fault
	require.NoError(t, json.Unmarshal(ir.GetBody(), &f))
	assert.Equal(t, "steps.oauth.v2.FailedToResolveAPIKey", f.Fault.Detail.ErrorCode)
	assert.Equal(t, "Failed to resolve API Key variable request.header.x-api-key", f.Fault.FaultString)
	h := apply(nil, ir.GetHeaders())
	assert.Equal(t, "application/json", h["content-type"])
	tr, ok := traces.Get(h[TraceHeader])
	require.True(t, ok)
	assert.Equal(t, "denied", tr.Outcome)
}

// TestRuntimeClientIP: the client's address is the X-Forwarded-For entry
// the gateway appended (the last), not one the client wrote before it.
func TestRuntimeClientIP(t *testing.T) {
	t.Parallel()
	deny, err := policy.Parse([]byte(`<AccessControl name="AC"><IPRules noRuleMatchAction="ALLOW">
  <MatchRule action="DENY"><SourceAddress mask="32">192.0.2.7</SourceAddress></MatchRule></IPRules></AccessControl>`), policy.Env{})
	require.NoError(t, err)
	client, _ := serveRuntime(t, &Flow{Name: "acl", Request: []policy.Policy{deny}})
	for _, xff := range [][]string{{"192.0.2.7"}, {"203.0.113.1, 192.0.2.7"}, {"203.0.113.1", "192.0.2.7"}} {
		sent := map[string][]string{":method": {"GET"}, ":path": {"/"}, "x-forwarded-for": xff}
		resps := exchange(t, client, requestHeaders(sent, true))
		require.Len(t, resps, 1)
		ir := resps[0].GetImmediateResponse()
		require.NotNil(t, ir, "X-Forwarded-For %q: the gateway saw 192.0.2.7", xff)
		assert.Equal(t, http.StatusForbidden, extproc.ImmediateStatus(ir))
	}
	sent := map[string][]string{":method": {"GET"}, ":path": {"/"}, "x-forwarded-for": {"192.0.2.7, 203.0.113.1"}}
	resps := exchange(t, client, requestHeaders(sent, true))
	require.Len(t, resps, 1)
	assert.NotNil(t, resps[0].GetRequestHeaders(), "a forged first entry is not the client")
}

// TestRuntimeDropsQueryKey: a key read from a query parameter does not reach
// the backend either; the rest of the query does.
func TestRuntimeDropsQueryKey(t *testing.T) {
	t.Parallel()
	va, err := policy.Parse([]byte(`<VerifyAPIKey name="VA-Query"><APIKey ref="request.queryparam.apikey"/></VerifyAPIKey>`), policy.Env{Store: securedStore(t)})
	require.NoError(t, err)
	client, _ := serveRuntime(t, &Flow{Name: "apim", Request: []policy.Policy{va}})
	sent := map[string][]string{
		":method": {"POST"}, ":path": {"/v1/chat/completions?stream=1&apikey=" + testKey + "&x=y"}, ":authority": {"gateway"},
		"content-type": {"application/json"},
	}
	resps := exchange(t, client, requestHeaders(sent, false), requestBody(`{"model":"m","messages":[]}`))
	require.Len(t, resps, 2)
	backend := apply(sent, resps[1].GetRequestBody().GetResponse().GetHeaderMutation())
	assert.Equal(t, "/v1/chat/completions?stream=1&x=y", backend[":path"])
	assert.Equal(t, testApp, backend["x-apigee-app"])
}

func TestWithoutQueryParam(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, name, want string }{
		{"/a?apikey=k", "apikey", "/a"},
		{"/a?x=1&apikey=k&apikey=j&y=2", "apikey", "/a?x=1&y=2"},
		{"/a?api%6Bey=k&z", "apikey", "/a?z"},
		{"/a?x=1", "apikey", "/a?x=1"},
		{"/a", "apikey", "/a"},
	} {
		got, _ := withoutQueryParam(tt.in, tt.name)
		assert.Equal(t, tt.want, got, tt.in)
	}
}
