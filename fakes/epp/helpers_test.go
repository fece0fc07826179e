package epp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/gatecheck/gatecheck/fakes/epp"
	"github.com/gatecheck/gatecheck/internal/extproc"
)

// waitFor is how long a test polls for a state to converge.
const waitFor = 5 * time.Second

// metricsServer is a model server's /metrics whose answer the test changes.
type metricsServer struct {
	*httptest.Server
	mu   sync.Mutex
	code int
	text string
}

func newMetricsServer(t testing.TB, text string) *metricsServer {
	t.Helper()
	m := &metricsServer{code: http.StatusOK, text: text}
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		m.mu.Lock()
		code, text := m.code, m.text
		m.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, text)
	}))
	t.Cleanup(m.Close)
	return m
}

func (m *metricsServer) set(code int, text string) {
	m.mu.Lock()
	m.code, m.text = code, text
	m.mu.Unlock()
}

// vllm renders vLLM metrics for base model "base".
func vllm(waiting, running int, kv float64) string {
	return fmt.Sprintf(`# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{model_name="base"} %d
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="base"} %d
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{model_name="base"} %g
# TYPE vllm:cache_config_info gauge
vllm:cache_config_info{block_size="16",num_gpu_blocks="2048"} 1
`, waiting, running, kv)
}

// lora renders vllm:lora_requests_info.
func lora(maxLoRA int, running, waiting string) string {
	return fmt.Sprintf(`# TYPE vllm:lora_requests_info gauge
vllm:lora_requests_info{max_lora="%d",running_lora_adapters="%s",waiting_lora_adapters="%s"} 1.7e9
`, maxLoRA, running, waiting)
}

// pool is a picker under test with its model servers and a client.
type pool struct {
	epp     *epp.Server
	client  extprocv3.ExternalProcessorClient
	conn    *grpc.ClientConn
	metrics map[string]*metricsServer // by endpoint address
}

// addr is the fake address of endpoint i: what the picker routes to.
func addr(i int) string { return fmt.Sprintf("10.0.0.%d:8000", i+1) }

// newPool starts a picker serving on loopback over len(texts) endpoints whose
// /metrics answer texts[i], and waits until all are ready.
func newPool(t testing.TB, cfg epp.Config, texts ...string) *pool {
	t.Helper()
	p := &pool{metrics: map[string]*metricsServer{}}
	var eps []epp.Endpoint
	for i, text := range texts {
		m := newMetricsServer(t, text)
		p.metrics[addr(i)] = m
		eps = append(eps, epp.Endpoint{Address: addr(i), MetricsURL: m.URL + "/metrics"})
	}
	if cfg.Pool == "" {
		cfg.Pool = "test-pool"
	}
	p.epp = epp.New(cfg)
	p.epp.SetEndpoints(eps)
	ctx, cancel := context.WithCancel(context.Background())
	p.epp.Start(ctx)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- p.epp.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	p.conn = conn
	p.client = extprocv3.NewExternalProcessorClient(conn)
	t.Cleanup(func() {
		_ = conn.Close()
		p.epp.Close()
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve returned %v after Close", err)
		}
	})
	if len(texts) > 0 {
		p.waitReady(t, len(texts))
	}
	return p
}

// waitReady polls until n endpoints are ready.
func (p *pool) waitReady(t testing.TB, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return readyCount(p.epp) == n }, waitFor, 5*time.Millisecond,
		"want %d ready endpoints", n)
}

func readyCount(s *epp.Server) int {
	n := 0
	for _, st := range s.Snapshot() {
		if st.Ready {
			n++
		}
	}
	return n
}

// exchange is one ext_proc stream driven by a test.
type exchange struct {
	t      testing.TB
	stream extprocv3.ExternalProcessor_ProcessClient
	cancel context.CancelFunc
}

// open opens a stream that ends with the test.
func (p *pool) open(t testing.TB) *exchange {
	t.Helper()
	x := p.openUntil(t)
	t.Cleanup(x.cancel)
	return x
}

// openUntil opens a stream that the caller ends with x.cancel.
func (p *pool) openUntil(t testing.TB) *exchange {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	st, err := p.client.Process(ctx)
	if err != nil {
		cancel()
		require.NoError(t, err)
	}
	return &exchange{t: t, stream: st, cancel: cancel}
}

func (x *exchange) send(req *extprocv3.ProcessingRequest) {
	x.t.Helper()
	require.NoError(x.t, x.stream.Send(req))
}

func (x *exchange) recv() *extprocv3.ProcessingResponse {
	x.t.Helper()
	r, err := x.stream.Recv()
	require.NoError(x.t, err)
	return r
}

// headers sends request headers; opts may add protocol config and metadata.
func (x *exchange) headers(h map[string]string, eos bool, opts ...func(*extprocv3.ProcessingRequest)) {
	x.t.Helper()
	hm := map[string][]string{":method": {"POST"}, ":path": {"/v1/chat/completions"}}
	for k, v := range h {
		hm[k] = []string{v}
	}
	req := &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{
		RequestHeaders: &extprocv3.HttpHeaders{Headers: extproc.HeaderMap(hm), EndOfStream: eos}}}
	for _, o := range opts {
		o(req)
	}
	x.send(req)
}

func (x *exchange) body(chunk string, eos bool) {
	x.t.Helper()
	x.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{
		RequestBody: &extprocv3.HttpBody{Body: []byte(chunk), EndOfStream: eos}}})
}

func (x *exchange) responseHeaders(eos bool) {
	x.t.Helper()
	x.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{
		ResponseHeaders: &extprocv3.HttpHeaders{Headers: extproc.HeaderMap(map[string][]string{":status": {"200"}}), EndOfStream: eos}}})
}

func (x *exchange) responseBody(chunk string, eos bool) {
	x.t.Helper()
	x.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{
		ResponseBody: &extprocv3.HttpBody{Body: []byte(chunk), EndOfStream: eos}}})
}

// close ends the client side and waits for the server to end the stream.
func (x *exchange) close() {
	x.t.Helper()
	require.NoError(x.t, x.stream.CloseSend())
	for {
		_, err := x.stream.Recv()
		if errors.Is(err, io.EOF) {
			return
		}
		require.NoError(x.t, err)
	}
}

// routed reads the headers answer of a routed request and returns the
// destination header and the envoy.lb metadata value.
func (x *exchange) routed() (header, metadata string) {
	x.t.Helper()
	r := x.recv()
	require.NotNil(x.t, r.GetRequestHeaders(), "want a request headers answer, got %v", r)
	common := r.GetRequestHeaders().GetResponse()
	require.True(x.t, common.GetClearRouteCache())
	header = setHeader(common.GetHeaderMutation(), epp.HeaderDestination)
	metadata, _ = extproc.MetadataString(r.GetDynamicMetadata(), epp.MetadataNamespace, epp.HeaderDestination)
	return header, metadata
}

// streamedBody reads streamed request body answers up to the one with
// end_of_stream and returns what they carried.
func (x *exchange) streamedBody() string {
	x.t.Helper()
	var b strings.Builder
	for {
		r := x.recv()
		require.NotNil(x.t, r.GetRequestBody(), "want a request body answer, got %v", r)
		sr := r.GetRequestBody().GetResponse().GetBodyMutation().GetStreamedResponse()
		require.NotNil(x.t, sr, "want a streamed body mutation")
		b.Write(sr.GetBody())
		if sr.GetEndOfStream() {
			return b.String()
		}
	}
}

// immediate reads an immediate response.
func (x *exchange) immediate() *extprocv3.ImmediateResponse {
	x.t.Helper()
	r := x.recv()
	require.NotNil(x.t, r.GetImmediateResponse(), "want an immediate response, got %v", r)
	return r.GetImmediateResponse()
}

func setHeader(m *extprocv3.HeaderMutation, name string) string {
	for _, h := range m.GetSetHeaders() {
		if h.GetHeader().GetKey() == name {
			return string(h.GetHeader().GetRawValue()) + h.GetHeader().GetValue()
		}
	}
	return ""
}

// route runs one whole full-duplex request for body and returns the picked
// endpoint (the first of the destination list).
func (p *pool) route(t testing.TB, body string) string {
	t.Helper()
	x := p.openUntil(t)
	defer x.cancel()
	x.headers(nil, false)
	x.body(body, true)
	dest, _ := x.routed()
	require.Equal(t, body, x.streamedBody())
	x.responseHeaders(false)
	x.recv()
	x.responseBody("{}", true)
	x.recv()
	x.close()
	return strings.Split(dest, ",")[0]
}

// withSubset adds the proxy's subset hint to a request.
func withSubset(v *corev3.Metadata) func(*extprocv3.ProcessingRequest) {
	return func(r *extprocv3.ProcessingRequest) { r.MetadataContext = v }
}

// lockedBuffer is a log sink safe to read while the picker writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func newListener() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
