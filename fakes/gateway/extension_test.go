package gateway_test

import (
	"bytes"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/gatecheck/gatecheck/fakes/gateway"
	"github.com/gatecheck/gatecheck/internal/extproc"
	"github.com/gatecheck/gatecheck/manifests"
)

// extTopology routes /v1 to Service "a" behind extensions e (named ext0,
// ext1, ...), all fail-closed with the default timeout.
func extTopology(t *testing.T, upstream string, es ...*ext) (*resolver, *manifests.Snapshot) {
	t.Helper()
	res := newResolver().service("a", upstream)
	var exts []*manifests.Extension
	for i, e := range es {
		name := "ext" + string(rune('0'+i))
		res.service(name, e.start(t))
		exts = append(exts, extension(name, false, 0))
	}
	return res, topology([]*manifests.RouteRule{prefixRule("/v1", svc("a", 1))}, exts)
}

func TestExtensionHeaderMutations(t *testing.T) {
	t.Parallel()
	e := &ext{requestHeaders: func(h map[string][]string) *extprocv3.ProcessingResponse {
		if h[":path"][0] != "/v1/chat?x=1" || h[":method"][0] != "POST" || h[":authority"][0] == "" {
			return extproc.ImmediateResponse(500, nil, []byte("bad pseudo headers"))
		}
		key := h["x-api-key"]
		m := extproc.SetHeaders(map[string]string{"x-apigee-app": "app-for-" + key[0]}, "x-api-key")
		m.SetHeaders = append(m.SetHeaders,
			&corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: "x-multi", RawValue: []byte("two")},
				AppendAction: corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD, Append: wrapperspb.Bool(true)},
			&corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: "x-replaced", Value: "new"}}, // default: overwrite
			&corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: "x-absent", RawValue: []byte("kept")},
				AppendAction: corev3.HeaderValueOption_ADD_IF_ABSENT},
			&corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: "x-only-if", RawValue: []byte("no")},
				AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS},
			&corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: ":method", RawValue: []byte("DELETE")}},
			&corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: "x-envoy-original-path", RawValue: []byte("x")}},
		)
		return extproc.ContinueRequestHeaders(m)
	}}
	res, snap := extTopology(t, startEcho(t, "a"), e)
	_, url := startGateway(t, snap, res, gateway.Options{})
	r := do(t, "POST", url+"/v1/chat?x=1", map[string]string{
		"x-api-key": "k1", "x-multi": "one", "x-replaced": "old", "x-absent": "client",
	}, `{"model":"m"}`)
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	got := r.echo(t)
	h := got.Header
	if h.Get("X-Api-Key") != "" {
		t.Errorf("the credential reached the upstream")
	}
	if h.Get("X-Apigee-App") != "app-for-k1" {
		t.Errorf("x-apigee-app %q", h.Get("X-Apigee-App"))
	}
	if v := h.Values("X-Multi"); !slices.Equal(v, []string{"one", "two"}) {
		t.Errorf("append: %q", v)
	}
	if h.Get("X-Replaced") != "new" || h.Get("X-Absent") != "client" || h.Get("X-Only-If") != "" {
		t.Errorf("append actions: replaced %q absent %q only-if %q", h.Get("X-Replaced"), h.Get("X-Absent"), h.Get("X-Only-If"))
	}
	if got.Method != "POST" || h.Get("X-Envoy-Original-Path") != "" {
		t.Errorf("protected headers changed: method %s", got.Method)
	}
	if got.Body != `{"model":"m"}` {
		t.Errorf("body %q", got.Body)
	}
	want := []string{"request_headers", "request_body", "response_headers", "response_body"}
	if phases := e.saw(); !slices.Equal(phases[:4], want) {
		t.Errorf("phases %v, want %v then end of stream", phases, want)
	}
}

func TestExtensionBodyAndPathMutation(t *testing.T) {
	t.Parallel()
	e := &ext{
		requestBody: func(body []byte) *extprocv3.ProcessingResponse {
			return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{
				RequestBody: &extprocv3.BodyResponse{Response: &extprocv3.CommonResponse{
					HeaderMutation: extproc.SetHeaders(map[string]string{":path": "/v1/rewritten"}),
					BodyMutation:   extproc.ReplaceBody(bytes.ToUpper(body)),
				}}}}
		},
	}
	res, snap := extTopology(t, startEcho(t, "a"), e)
	_, url := startGateway(t, snap, res, gateway.Options{})
	// /other has no route; the extension's :path rewrite routes it to /v1.
	r := do(t, "POST", url+"/other", nil, `{"prompt":"hello"}`)
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	got := r.echo(t)
	if got.URI != "/v1/rewritten" || got.Body != `{"PROMPT":"HELLO"}` {
		t.Errorf("uri %q body %q", got.URI, got.Body)
	}
}

func TestExtensionImmediateResponse(t *testing.T) {
	t.Parallel()
	upstreamCalled := make(chan struct{}, 1)
	up := startHandler(t, func(w http.ResponseWriter, r *http.Request) { upstreamCalled <- struct{}{} })
	fault := `{"fault":{"faultstring":"Invalid ApiKey","detail":{"errorcode":"oauth.v2.InvalidApiKey"}}}`
	first := &ext{} // sees the 401 on its response phase
	deny := &ext{requestHeaders: func(map[string][]string) *extprocv3.ProcessingResponse {
		return extproc.ImmediateResponse(http.StatusUnauthorized, map[string]string{"content-type": "application/json"}, []byte(fault))
	}}
	later := &ext{}
	res, snap := extTopology(t, up, first, deny, later)
	_, url := startGateway(t, snap, res, gateway.Options{})
	r := do(t, "POST", url+"/v1/chat", map[string]string{"x-api-key": "bad"}, `{"model":"m"}`)
	if r.status != http.StatusUnauthorized || string(r.body) != fault || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d content-type %q body %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	select {
	case <-upstreamCalled:
		t.Error("the upstream was called")
	default:
	}
	if p := later.saw(); len(p) != 0 {
		t.Errorf("a later extension was called: %v", p)
	}
	if p := first.saw(); !slices.Contains(p, "response_headers") {
		t.Errorf("the earlier extension did not see the local reply: %v", p)
	}
}

func TestExtensionSeesNoRoute(t *testing.T) {
	t.Parallel()
	statuses := make(chan string, 1)
	e := &ext{responseHeaders: func(h map[string][]string) *extprocv3.ProcessingResponse {
		statuses <- h[":status"][0]
		return extproc.ContinueResponseHeaders(extproc.SetHeaders(map[string]string{"x-seen-by": "ext"}))
	}}
	res, snap := extTopology(t, startEcho(t, "a"), e)
	_, url := startGateway(t, snap, res, gateway.Options{})
	r := do(t, "GET", url+"/nowhere", nil, "")
	if r.status != http.StatusNotFound || r.header.Get("X-Seen-By") != "ext" {
		t.Fatalf("status %d, x-seen-by %q", r.status, r.header.Get("X-Seen-By"))
	}
	if status := <-statuses; status != "404" || !slices.Contains(e.saw(), "request_headers") {
		t.Errorf("extension saw status %q, phases %v", status, e.saw())
	}
}

func TestExtensionResponseHeaders(t *testing.T) {
	t.Parallel()
	e := &ext{responseHeaders: func(h map[string][]string) *extprocv3.ProcessingResponse {
		return extproc.ContinueResponseHeaders(extproc.SetHeaders(map[string]string{":status": "203", "x-quota-remaining": "9"}, "x-backend"))
	}}
	res, snap := extTopology(t, startEcho(t, "a"), e)
	_, url := startGateway(t, snap, res, gateway.Options{})
	r := do(t, "GET", url+"/v1/x", nil, "")
	if r.status != 203 || r.header.Get("X-Quota-Remaining") != "9" || r.header.Get("X-Backend") != "" {
		t.Fatalf("status %d headers %v", r.status, r.header)
	}
	r.echo(t) // the body is intact
}

func TestExtensionModeOverrideSkipsResponseBody(t *testing.T) {
	t.Parallel()
	e := &ext{
		requestHeaders: func(map[string][]string) *extprocv3.ProcessingResponse {
			resp := extproc.ContinueRequestHeaders(nil)
			resp.ModeOverride = &extprocfilter.ProcessingMode{
				RequestBodyMode:  extprocfilter.ProcessingMode_BUFFERED,
				ResponseBodyMode: extprocfilter.ProcessingMode_NONE,
			}
			return resp
		},
		responseBody: func(chunk []byte, eos bool) *extprocv3.ProcessingResponse {
			return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{
				ResponseBody: &extprocv3.BodyResponse{Response: &extprocv3.CommonResponse{BodyMutation: extproc.ReplaceBody(nil)}}}}
		},
	}
	res, snap := extTopology(t, startEcho(t, "a"), e)
	_, url := startGateway(t, snap, res, gateway.Options{})
	r := do(t, "POST", url+"/v1/x", nil, `{"a":1}`)
	if r.status != http.StatusOK {
		t.Fatalf("status %d", r.status)
	}
	if r.echo(t).Body != `{"a":1}` {
		t.Errorf("request body lost")
	}
	want := []string{"request_headers", "request_body", "response_headers"}
	if p := e.saw(); !slices.Equal(p, want) {
		t.Errorf("phases %v, want %v", p, want)
	}
	if r.header.Get("Content-Length") == "" {
		t.Errorf("with no body phase the upstream's Content-Length should stay")
	}
}

func TestExtensionDown(t *testing.T) {
	t.Parallel()
	a := startEcho(t, "a")
	for _, open := range []bool{false, true} {
		name := map[bool]string{false: "closed", true: "open"}[open]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			res := newResolver().service("a", a).service("apigee", refusedAddr(t))
			snap := topology([]*manifests.RouteRule{prefixRule("/", svc("a", 1))},
				[]*manifests.Extension{extension("apigee", open, 0)})
			_, url := startGateway(t, snap, res, gateway.Options{})
			r := do(t, "POST", url+"/v1/chat", map[string]string{"x-api-key": "k"}, `{}`)
			if open {
				if r.status != http.StatusOK || r.echo(t).Header.Get("X-Api-Key") != "k" {
					t.Fatalf("fail-open: status %d: %s", r.status, r.body)
				}
				return
			}
			if r.status != http.StatusInternalServerError || errorReason(t, r) != "ExtensionUnavailable" {
				t.Fatalf("fail-closed: status %d: %s", r.status, r.body)
			}
		})
	}
}

func TestExtensionUnresolvable(t *testing.T) {
	t.Parallel()
	res := newResolver().service("a", startEcho(t, "a"))
	snap := topology([]*manifests.RouteRule{prefixRule("/", svc("a", 1))},
		[]*manifests.Extension{extension("missing", false, 0)})
	_, url := startGateway(t, snap, res, gateway.Options{})
	if r := do(t, "GET", url+"/", nil, ""); r.status != http.StatusInternalServerError {
		t.Fatalf("status %d: never a silent allow when fail-closed", r.status)
	}
}

func TestExtensionSlowerThanTimeout(t *testing.T) {
	t.Parallel()
	a := startEcho(t, "a")
	for _, open := range []bool{false, true} {
		name := map[bool]string{false: "closed", true: "open"}[open]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			hold := make(chan struct{})
			t.Cleanup(func() { close(hold) })
			e := &ext{hold: hold}
			res := newResolver().service("a", a).service("apigee", e.start(t))
			snap := topology([]*manifests.RouteRule{prefixRule("/", svc("a", 1))},
				[]*manifests.Extension{extension("apigee", open, 100*time.Millisecond)})
			_, url := startGateway(t, snap, res, gateway.Options{})
			r := do(t, "GET", url+"/", nil, "")
			if open {
				if r.status != http.StatusOK {
					t.Fatalf("fail-open: status %d: %s", r.status, r.body)
				}
				return
			}
			if r.status != http.StatusGatewayTimeout || errorReason(t, r) != "ExtensionUnavailableTimeout" {
				t.Fatalf("fail-closed: status %d: %s", r.status, r.body)
			}
		})
	}
}

func TestExtensionThenPicker(t *testing.T) {
	t.Parallel()
	a := startEcho(t, "a")
	servedCh := make(chan string, 1)
	e := &ext{
		requestHeaders: func(map[string][]string) *extprocv3.ProcessingResponse {
			return extproc.ContinueRequestHeaders(extproc.SetHeaders(map[string]string{"x-apigee-product": "gold"}))
		},
		responseHeaders: func(h map[string][]string) *extprocv3.ProcessingResponse {
			servedCh <- strings.Join(h["x-gateway-destination-endpoint-served"], ",")
			return extproc.ContinueResponseHeaders(nil)
		},
		responseBody: func(chunk []byte, eos bool) *extprocv3.ProcessingResponse {
			return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{
				ResponseBody: &extprocv3.BodyResponse{Response: &extprocv3.CommonResponse{
					BodyMutation: extproc.ReplaceBody(bytes.ReplaceAll(chunk, []byte("gold"), []byte("****")))}}}}
		},
	}
	pk := &picker{dest: a, viaMetadata: true}
	res := newResolver().pool("p", a).service("epp", pk.start(t)).service("apigee", e.start(t))
	snap := topology([]*manifests.RouteRule{prefixRule("/", poolBackend("p"))},
		[]*manifests.Extension{extension("apigee", false, 0)}, pool("p", "epp", manifests.FailClose))
	_, url := startGateway(t, snap, res, gateway.Options{})
	r := do(t, "POST", url+"/v1/chat", nil, `{"model":"m"}`)
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if served := <-servedCh; served != a {
		t.Errorf("the extension saw served endpoint %q, want %q (it runs after the picker on the way back)", served, a)
	}
	if !strings.Contains(string(r.body), `"X-Apigee-Product":["****"]`) {
		t.Errorf("the extension's header did not reach the upstream, or its redaction the client: %s", r.body)
	}
}

func TestExtensionBufferedResponseByOverride(t *testing.T) {
	t.Parallel()
	up, release := heldStream(t, "application/x-ndjson", `{"n":1}`+"\n", `{"n":2}`+"\n")
	close(release)
	e := &ext{
		responseHeaders: func(map[string][]string) *extprocv3.ProcessingResponse {
			resp := extproc.ContinueResponseHeaders(nil)
			resp.ModeOverride = &extprocfilter.ProcessingMode{ResponseBodyMode: extprocfilter.ProcessingMode_BUFFERED}
			return resp
		},
		responseBody: func(body []byte, eos bool) *extprocv3.ProcessingResponse {
			return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{
				ResponseBody: &extprocv3.BodyResponse{Response: &extprocv3.CommonResponse{
					HeaderMutation: extproc.SetHeaders(map[string]string{
						"x-lines": strings.Repeat("|", bytes.Count(body, []byte("\n"))), ":status": "299"}),
					BodyMutation: extproc.ReplaceBody([]byte(`{"summary":true}`)),
				}}}}
		},
	}
	res, snap := extTopology(t, up, e)
	_, url := startGateway(t, snap, res, gateway.Options{})
	r := do(t, "GET", url+"/v1/x", nil, "")
	// The headers waited for the buffered body's answer, which changed them.
	if r.status != 299 || r.header.Get("X-Lines") != "||" || string(r.body) != `{"summary":true}` {
		t.Fatalf("status %d x-lines %q body %q", r.status, r.header.Get("X-Lines"), r.body)
	}
	if p := e.saw(); slices.Index(p, "response_body") != len(p)-1 {
		t.Errorf("want one buffered response_body message, saw %v", p)
	}
}
