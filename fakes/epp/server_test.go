package epp_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/gatecheck/gatecheck/fakes/epp"
	"github.com/gatecheck/gatecheck/internal/extproc"
)

func TestFullDuplexFlow(t *testing.T) {
	t.Parallel()
	p := newPool(t, epp.Config{Fallbacks: 1}, vllm(0, 0, 0.1), vllm(0, 0, 0.1))
	big := strings.Repeat("a", 150_000) // more than two 62,000-byte chunks back
	body := `{"model":"base","messages":[{"role":"user","content":"` + big + `"}]}`

	x := p.open(t)
	x.headers(map[string]string{"x-request-id": "r1", "x-gateway-inference-objective": "chat"}, false)
	x.body(body[:10], false)
	x.body(body[10:100], false)
	x.body(body[100:], true)
	// The first answer is the held headers answer: nothing was answered
	// before the body ended.
	dest, md := x.routed()
	parts := strings.Split(dest, ",")
	require.Len(t, parts, 2, "the pick and one fallback")
	assert.ElementsMatch(t, []string{addr(0), addr(1)}, parts)
	assert.Equal(t, dest, md, "header and envoy.lb metadata agree")

	chunks := 0
	var got strings.Builder
	for {
		r := x.recv()
		sr := r.GetRequestBody().GetResponse().GetBodyMutation().GetStreamedResponse()
		require.NotNil(t, sr)
		assert.LessOrEqual(t, len(sr.GetBody()), 62000)
		got.Write(sr.GetBody())
		chunks++
		if sr.GetEndOfStream() {
			break
		}
	}
	assert.Equal(t, body, got.String(), "body streamed back unchanged")
	assert.Equal(t, 3, chunks)

	x.responseHeaders(false)
	r := x.recv()
	require.NotNil(t, r.GetResponseHeaders())
	assert.Equal(t, parts[0], setHeader(r.GetResponseHeaders().GetResponse().GetHeaderMutation(), epp.HeaderServed))

	x.responseBody("data: one\n\n", false)
	sr := x.recv().GetResponseBody().GetResponse().GetBodyMutation().GetStreamedResponse()
	assert.Equal(t, "data: one\n\n", string(sr.GetBody()))
	assert.False(t, sr.GetEndOfStream())
	x.responseBody("data: [DONE]\n\n", true)
	sr = x.recv().GetResponseBody().GetResponse().GetBodyMutation().GetStreamedResponse()
	assert.Equal(t, "data: [DONE]\n\n", string(sr.GetBody()))
	assert.True(t, sr.GetEndOfStream())
	x.close()

	for _, st := range p.epp.Snapshot() {
		assert.Zero(t, st.InFlight, "in-flight released at the end of the response")
	}
}

func TestRequestTrailersEndTheBody(t *testing.T) {
	t.Parallel()
	p := newPool(t, epp.Config{}, vllm(0, 0, 0))
	x := p.open(t)
	x.headers(nil, false)
	x.body(`{"model":"base"}`, false)
	x.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestTrailers{
		RequestTrailers: &extprocv3.HttpTrailers{}}})
	dest, _ := x.routed()
	assert.Equal(t, addr(0), dest)
	sr := x.recv().GetRequestBody().GetResponse().GetBodyMutation().GetStreamedResponse()
	assert.Equal(t, `{"model":"base"}`, string(sr.GetBody()))
	assert.False(t, sr.GetEndOfStream(), "trailers follow")
	assert.NotNil(t, x.recv().GetRequestTrailers())
	x.close()
}

func buffered(waitless bool) func(*extprocv3.ProcessingRequest) {
	return func(r *extprocv3.ProcessingRequest) {
		r.ProtocolConfig = &extprocv3.ProtocolConfiguration{
			RequestBodyMode:                         filterv3.ProcessingMode_BUFFERED,
			ResponseBodyMode:                        filterv3.ProcessingMode_BUFFERED,
			SendBodyWithoutWaitingForHeaderResponse: waitless,
		}
	}
}

func TestBufferedFlow(t *testing.T) {
	t.Parallel()
	p := newPool(t, epp.Config{}, vllm(0, 0, 0))
	body := `{"model":"base","prompt":"hello"}`

	x := p.open(t)
	x.headers(nil, false, buffered(false))
	// Envoy waits for the headers answer before it sends a buffered body.
	r := x.recv()
	require.NotNil(t, r.GetRequestHeaders())
	assert.True(t, r.GetRequestHeaders().GetResponse().GetClearRouteCache())
	assert.Empty(t, r.GetRequestHeaders().GetResponse().GetHeaderMutation().GetSetHeaders())
	x.body(body, true)
	r = x.recv()
	require.NotNil(t, r.GetRequestBody(), "got %v", r)
	common := r.GetRequestBody().GetResponse()
	assert.Nil(t, common.GetBodyMutation(), "buffered body left as it is")
	assert.Equal(t, addr(0), setHeader(common.GetHeaderMutation(), epp.HeaderDestination))
	md, _ := extproc.MetadataString(r.GetDynamicMetadata(), epp.MetadataNamespace, epp.HeaderDestination)
	assert.Equal(t, addr(0), md)

	x.responseHeaders(false)
	assert.Equal(t, addr(0), setHeader(x.recv().GetResponseHeaders().GetResponse().GetHeaderMutation(), epp.HeaderServed))
	x.responseBody("{}", true)
	r = x.recv()
	require.NotNil(t, r.GetResponseBody())
	assert.Nil(t, r.GetResponseBody().GetResponse().GetBodyMutation())
	x.close()
}

func TestBufferedWithoutWaitingHoldsHeaders(t *testing.T) {
	t.Parallel()
	p := newPool(t, epp.Config{}, vllm(0, 0, 0))
	x := p.open(t)
	x.headers(nil, false, buffered(true))
	x.body(`{"model":"base"}`, true)
	dest, md := x.routed()
	assert.Equal(t, addr(0), dest)
	assert.Equal(t, addr(0), md)
	r := x.recv()
	require.NotNil(t, r.GetRequestBody())
	assert.Nil(t, r.GetRequestBody().GetResponse().GetBodyMutation())
	x.close()
}

func TestBodylessRequest(t *testing.T) {
	t.Parallel()
	p := newPool(t, epp.Config{Fallbacks: -1}, vllm(0, 0, 0), vllm(0, 0, 0), vllm(0, 0, 0))
	seen := map[string]bool{}
	for range 30 {
		x := p.open(t)
		x.headers(map[string]string{":method": "GET", ":path": "/v1/models"}, true)
		dest, md := x.routed()
		assert.Equal(t, dest, md)
		assert.NotContains(t, dest, ",", "no fallbacks configured")
		seen[dest] = true
		x.responseHeaders(true)
		x.recv()
		x.close()
	}
	assert.Len(t, seen, 3, "body-less requests go to random endpoints")
}

func TestRejections(t *testing.T) {
	t.Parallel()
	p := newPool(t, epp.Config{}, vllm(0, 0, 0))
	for _, tc := range []struct {
		name, body string
		code       int
		want       string
		exact      bool
	}{
		{"missing model", `{"prompt":"hi"}`, 400, "model not found in request body", true},
		{"empty model", `{"model":""}`, 400, "model not found in request body", true},
		{"model not a string", `{"model":42}`, 400, "model not found in request body", true},
		{"empty body", ``, 400, "model not found in request body", true},
		{"bad JSON", `{"model":`, 400, "request body is not valid JSON", false},
		{"not an object", `["model"]`, 400, "request body is not a JSON object", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			x := p.open(t)
			x.headers(nil, false)
			x.body(tc.body, true)
			ir := x.immediate()
			assert.Equal(t, tc.code, extproc.ImmediateStatus(ir))
			if tc.exact {
				assert.Equal(t, tc.want, string(ir.GetBody()))
			} else {
				assert.Contains(t, string(ir.GetBody()), tc.want)
			}
			x.close()
		})
	}
}

func assert503(t *testing.T, ir *extprocv3.ImmediateResponse, want string) {
	t.Helper()
	assert.Equal(t, http.StatusServiceUnavailable, extproc.ImmediateStatus(ir))
	var e struct {
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal(ir.GetBody(), &e), "503 body is JSON: %s", ir.GetBody())
	assert.Equal(t, 503, e.Error.Code)
	assert.Contains(t, e.Error.Message, want)
	assert.Equal(t, "application/json", setHeader(ir.GetHeaders(), "content-type"))
}

func TestNoEndpoints503(t *testing.T) {
	t.Parallel()
	p := newPool(t, epp.Config{Pool: "empty"})
	assert.False(t, p.epp.Ready())
	x := p.open(t)
	x.headers(nil, false)
	x.body(`{"model":"base"}`, true)
	assert503(t, x.immediate(), `no ready endpoints in inference pool "empty"`)
	x.close()

	x = p.open(t)
	x.headers(nil, true)
	assert503(t, x.immediate(), "no ready endpoints")
	x.close()
}

func subsetString(v string) *corev3.Metadata {
	return &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
		epp.SubsetNamespace: {Fields: map[string]*structpb.Value{epp.SubsetKey: structpb.NewStringValue(v)}},
	}}
}

func subsetList(vs ...any) *corev3.Metadata {
	l, err := structpb.NewList(vs)
	if err != nil {
		panic(err)
	}
	return &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
		epp.SubsetNamespace: {Fields: map[string]*structpb.Value{epp.SubsetKey: structpb.NewListValue(l)}},
	}}
}

func TestSubsetHint(t *testing.T) {
	t.Parallel()
	// Endpoint 1 is the best by far, but the hint excludes it.
	p := newPool(t, epp.Config{Fallbacks: -1}, vllm(5, 5, 0.9), vllm(0, 0, 0), vllm(5, 5, 0.9))
	for _, tc := range []struct {
		name string
		md   *corev3.Metadata
		want []string
	}{
		{"string", subsetString(addr(0) + ", " + addr(2)), []string{addr(0), addr(2)}},
		{"list", subsetList(addr(2)), []string{addr(2)}},
		{"bare IP", subsetList("10.0.0.1"), []string{addr(0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for range 10 {
				x := p.open(t)
				x.headers(nil, false, withSubset(tc.md))
				x.body(`{"model":"base"}`, true)
				dest, _ := x.routed()
				assert.Contains(t, tc.want, dest)
				x.close()
			}
		})
	}
	for _, tc := range []struct {
		name string
		md   *corev3.Metadata
	}{
		{"unknown endpoint", subsetString("10.9.9.9:8000")},
		{"empty list", subsetList()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			x := p.open(t)
			x.headers(nil, false, withSubset(tc.md))
			x.body(`{"model":"base"}`, true)
			assert503(t, x.immediate(), "subset hinted by the proxy")
			x.close()
		})
	}
}

func TestUnknownMessageEndsStream(t *testing.T) {
	t.Parallel()
	p := newPool(t, epp.Config{}, vllm(0, 0, 0))
	x := p.open(t)
	x.send(&extprocv3.ProcessingRequest{})
	_, err := x.stream.Recv()
	assert.Equal(t, codes.InvalidArgument, status.Code(err))

	x = p.open(t)
	x.body(`{"model":"base"}`, true)
	_, err = x.stream.Recv()
	assert.Equal(t, codes.FailedPrecondition, status.Code(err), "body before headers")
}

func TestHealth(t *testing.T) {
	t.Parallel()
	p := newPool(t, epp.Config{})
	hc := healthpb.NewHealthClient(p.conn)
	for _, svc := range []string{"", epp.ExtProcServiceName} {
		resp, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: svc})
		require.NoError(t, err, svc)
		assert.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.GetStatus(), svc)
	}
}

func TestServeAfterClose(t *testing.T) {
	t.Parallel()
	s := epp.New(epp.Config{})
	s.Close()
	s.Close() // idempotent
	lis, err := newListener()
	require.NoError(t, err)
	assert.NoError(t, s.Serve(lis))
}
