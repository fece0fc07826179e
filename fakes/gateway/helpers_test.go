package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"

	"github.com/gatecheck/gatecheck/fakes/gateway"
	"github.com/gatecheck/gatecheck/internal/extproc"
	"github.com/gatecheck/gatecheck/manifests"
)

func ref(name string) manifests.Ref { return manifests.Ref{Namespace: "default", Name: name} }

var gwRef = ref("gw")

// resolver is a hand-written Resolver over fixed addresses.
type resolver struct {
	mu       sync.Mutex
	services map[string][]string
	pools    map[manifests.Ref][]string
}

func newResolver() *resolver {
	return &resolver{services: map[string][]string{}, pools: map[manifests.Ref][]string{}}
}

func svcKey(r manifests.Ref, port int32) string { return fmt.Sprintf("%s:%d", r, port) }

func (r *resolver) service(name string, addrs ...string) *resolver {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.services[svcKey(ref(name), 80)] = addrs
	return r
}

func (r *resolver) pool(name string, addrs ...string) *resolver {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pools[ref(name)] = addrs
	return r
}

func (r *resolver) ServiceAddrs(svc manifests.Ref, port int32) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a, ok := r.services[svcKey(svc, port)]
	if !ok {
		return nil, fmt.Errorf("no service %s", svcKey(svc, port))
	}
	return a, nil
}

func (r *resolver) PoolEndpoints(pool manifests.Ref) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a, ok := r.pools[pool]
	if !ok {
		return nil, fmt.Errorf("no pool %s", pool)
	}
	return a, nil
}

// svc and poolBackend are weighted backendRefs.
func svc(name string, weight int32) manifests.Backend {
	return manifests.Backend{Kind: manifests.BackendService, Ref: ref(name), Port: 80, Weight: weight}
}

func poolBackend(name string) manifests.Backend {
	return manifests.Backend{Kind: manifests.BackendInferencePool, Ref: ref(name), Weight: 1}
}

func prefixRule(prefix string, bs ...manifests.Backend) *manifests.RouteRule {
	return &manifests.RouteRule{Route: ref("route"), PathType: manifests.PathPrefix, PathValue: prefix, Backends: bs}
}

// topology is a Snapshot with one Gateway, gwRef, listening on any host.
func topology(rules []*manifests.RouteRule, exts []*manifests.Extension, pools ...*manifests.Pool) *manifests.Snapshot {
	s := &manifests.Snapshot{
		Gateways: []*manifests.Gateway{{
			Ref:        gwRef,
			ClassName:  "gatecheck",
			Listeners:  []manifests.Listener{{Name: "http", Port: 80, Protocol: "HTTP"}},
			Rules:      rules,
			Extensions: exts,
		}},
		Pools: map[manifests.Ref]*manifests.Pool{},
	}
	for _, p := range pools {
		s.Pools[p.Ref] = p
	}
	return s
}

func pool(name string, picker string, mode manifests.FailureMode) *manifests.Pool {
	p := &manifests.Pool{Ref: ref(name), TargetPorts: []int32{8000}, AppProtocol: "http"}
	if picker != "" {
		p.Picker = &manifests.PickerRef{Service: ref(picker), Port: 80, FailureMode: mode}
	}
	return p
}

func extension(name string, failOpen bool, timeout time.Duration) *manifests.Extension {
	return &manifests.Extension{Name: name, Service: ref(name), Port: 80, FailOpen: failOpen, Timeout: timeout}
}

// startGateway serves gwRef of snap on a loopback port and returns its URL.
func startGateway(t testing.TB, snap *manifests.Snapshot, res gateway.Resolver, opts gateway.Options) (*gateway.Gateway, string) {
	t.Helper()
	opts.Resolver = res
	g, err := gateway.New(snap, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	srv := httptest.NewServer(g.Handler(gwRef))
	t.Cleanup(srv.Close)
	return g, srv.URL
}

// echoed is what an echo backend saw.
type echoed struct {
	Backend string      `json:"backend"`
	Method  string      `json:"method"`
	URI     string      `json:"uri"`
	Host    string      `json:"host"`
	Header  http.Header `json:"header"`
	Body    string      `json:"body"`
}

// startEcho starts a backend that answers with what it received, named in the
// X-Backend header and the JSON body. It returns its host:port.
func startEcho(t testing.TB, name string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Backend", name)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(echoed{Backend: name, Method: r.Method, URI: r.RequestURI, Host: r.Host, Header: r.Header, Body: string(body)})
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func startHandler(t testing.TB, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// refusedAddr is a loopback address nothing listens on.
func refusedAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// result is a finished client request.
type result struct {
	status int
	header http.Header
	body   []byte
}

func (r result) echo(t testing.TB) echoed {
	t.Helper()
	var e echoed
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("status %d, body %q is not an echo: %v", r.status, r.body, err)
	}
	return e
}

var client = &http.Client{Timeout: 10 * time.Second}

func do(t testing.TB, method, url string, header map[string]string, body string) result {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		if strings.EqualFold(k, "host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return result{status: resp.StatusCode, header: resp.Header, body: b}
}

// errorReason reads the gateway's JSON error body.
func errorReason(t testing.TB, r result) string {
	t.Helper()
	var e struct {
		Error struct {
			Status int    `json:"status"`
			Reason string `json:"reason"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("status %d: body %q is not the gateway's JSON error: %v", r.status, r.body, err)
	}
	if e.Error.Status != r.status {
		t.Fatalf("JSON status %d, HTTP status %d", e.Error.Status, r.status)
	}
	return e.Error.Reason
}

// ---- in-test ext_proc servers ----

type procServer struct {
	extprocv3.UnimplementedExternalProcessorServer
	newProc func() extproc.Processor
}

func (s *procServer) Process(stream extprocv3.ExternalProcessor_ProcessServer) error {
	return extproc.Serve(stream, s.newProc())
}

// startProcessor serves an ext_proc server on a loopback port; newProc makes
// the Processor of each stream. It returns host:port.
func startProcessor(t testing.TB, newProc func() extproc.Processor) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	extprocv3.RegisterExternalProcessorServer(s, &procServer{newProc: newProc})
	go func() { _ = s.Serve(l) }()
	t.Cleanup(s.Stop)
	return l.Addr().String()
}

func one(r *extprocv3.ProcessingResponse) []*extprocv3.ProcessingResponse {
	return []*extprocv3.ProcessingResponse{r}
}

func streamedRequestBody(chunk []byte, eos bool) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{
		RequestBody: &extprocv3.BodyResponse{Response: &extprocv3.CommonResponse{BodyMutation: extproc.StreamedBody(chunk, eos)}}}}
}

func streamedResponseBody(chunk []byte, eos bool) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{
		ResponseBody: &extprocv3.BodyResponse{Response: &extprocv3.CommonResponse{BodyMutation: extproc.StreamedBody(chunk, eos)}}}}
}

// picker is a fake endpoint picker speaking the EPP protocol in full duplex:
// it holds its headers answer until it has the whole body, then sends it with
// the destination, then the body back in outChunk pieces; response chunks are
// echoed one for one.
type picker struct {
	dest        string
	viaHeader   bool
	viaMetadata bool
	outChunk    int
	// hold, when set, delays the headers answer until it is closed or the
	// stream ends (a slow picker).
	hold <-chan struct{}
	// immediate, when set, is the answer instead of a destination.
	immediate *extprocv3.ProcessingResponse
	// served receives the served-endpoint header of each response.
	served chan string
	// gotBody receives the request body the picker saw.
	gotBody chan []byte
}

func (c *picker) start(t testing.TB) string {
	return startProcessor(t, func() extproc.Processor { return &pickerStream{c: c} })
}

type pickerStream struct {
	c    *picker
	body []byte
}

func (p *pickerStream) Process(ctx context.Context, req *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error) {
	switch v := req.GetRequest().(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		if req.GetProtocolConfig().GetRequestBodyMode().String() != "FULL_DUPLEX_STREAMED" {
			return nil, errors.New("picker: expected FULL_DUPLEX_STREAMED in protocol_config")
		}
		if !v.RequestHeaders.GetEndOfStream() {
			return nil, nil
		}
		return p.decide(ctx)
	case *extprocv3.ProcessingRequest_RequestBody:
		p.body = append(p.body, v.RequestBody.GetBody()...)
		if !v.RequestBody.GetEndOfStream() {
			return nil, nil
		}
		return p.decide(ctx)
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		if p.c.served != nil {
			s, _ := extproc.HeaderValue(v.ResponseHeaders.GetHeaders(), "x-gateway-destination-endpoint-served")
			select {
			case p.c.served <- s:
			default:
			}
		}
		return one(extproc.ContinueResponseHeaders(nil)), nil
	case *extprocv3.ProcessingRequest_ResponseBody:
		return one(streamedResponseBody(v.ResponseBody.GetBody(), v.ResponseBody.GetEndOfStream())), nil
	}
	return nil, nil
}

func (p *pickerStream) decide(ctx context.Context) ([]*extprocv3.ProcessingResponse, error) {
	c := p.c
	if c.hold != nil {
		select {
		case <-c.hold:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if c.gotBody != nil {
		select {
		case c.gotBody <- bytes.Clone(p.body):
		default:
		}
	}
	if c.immediate != nil {
		return one(c.immediate), nil
	}
	var hm *extprocv3.HeaderMutation
	if c.viaHeader {
		hm = extproc.SetHeaders(map[string]string{"x-gateway-destination-endpoint": c.dest})
	}
	hdr := extproc.ContinueRequestHeaders(hm)
	if c.viaMetadata {
		hdr.DynamicMetadata = extproc.Metadata("envoy.lb", map[string]string{"x-gateway-destination-endpoint": c.dest})
	}
	out := one(hdr)
	if len(p.body) > 0 {
		size := c.outChunk
		if size <= 0 {
			size = len(p.body)
		}
		for b := p.body; len(b) > 0; {
			n := min(size, len(b))
			out = append(out, streamedRequestBody(b[:n], n == len(b)))
			b = b[n:]
		}
	}
	return out, nil
}

// ext is a fake extension: each phase answers through its hook, or carries on
// unchanged when the hook is nil. It records the phases it saw.
type ext struct {
	requestHeaders  func(h map[string][]string) *extprocv3.ProcessingResponse
	requestBody     func(body []byte) *extprocv3.ProcessingResponse
	responseHeaders func(h map[string][]string) *extprocv3.ProcessingResponse
	responseBody    func(chunk []byte, eos bool) *extprocv3.ProcessingResponse
	// hold, when set, delays the request-headers answer (a slow extension).
	hold <-chan struct{}

	mu     sync.Mutex
	phases []string
}

func (e *ext) start(t testing.TB) string {
	return startProcessor(t, func() extproc.Processor { return e })
}

func (e *ext) saw() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.phases...)
}

func (e *ext) note(p string) {
	e.mu.Lock()
	e.phases = append(e.phases, p)
	e.mu.Unlock()
}

func (e *ext) Process(ctx context.Context, req *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error) {
	switch v := req.GetRequest().(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		e.note("request_headers")
		if e.hold != nil {
			select {
			case <-e.hold:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if e.requestHeaders != nil {
			return one(e.requestHeaders(extproc.Headers(v.RequestHeaders.GetHeaders()))), nil
		}
		return one(extproc.ContinueRequestHeaders(nil)), nil
	case *extprocv3.ProcessingRequest_RequestBody:
		e.note("request_body")
		if e.requestBody != nil {
			return one(e.requestBody(v.RequestBody.GetBody())), nil
		}
		return one(extproc.ContinueRequestBody()), nil
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		e.note("response_headers")
		if e.responseHeaders != nil {
			return one(e.responseHeaders(extproc.Headers(v.ResponseHeaders.GetHeaders()))), nil
		}
		return one(extproc.ContinueResponseHeaders(nil)), nil
	case *extprocv3.ProcessingRequest_ResponseBody:
		e.note("response_body")
		if e.responseBody != nil {
			return one(e.responseBody(v.ResponseBody.GetBody(), v.ResponseBody.GetEndOfStream())), nil
		}
		return one(extproc.ContinueResponseBody()), nil
	}
	return nil, nil
}

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

func mustRequest(t testing.TB, method, target string) *http.Request {
	t.Helper()
	return httptest.NewRequest(method, target, nil)
}

type ctxT = context.Context

func readAll(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}
