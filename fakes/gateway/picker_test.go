package gateway_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/gatecheck/gatecheck/fakes/gateway"
	"github.com/gatecheck/gatecheck/internal/extproc"
	"github.com/gatecheck/gatecheck/manifests"
)

// poolTopology routes everything to pool "p" of endpoints eps, picked by pk.
func poolTopology(t *testing.T, pk *picker, mode manifests.FailureMode, eps ...string) (*resolver, *manifests.Snapshot) {
	t.Helper()
	res := newResolver().pool("p", eps...)
	if pk != nil {
		res.service("epp", pk.start(t))
	} else {
		res.service("epp", refusedAddr(t))
	}
	return res, topology([]*manifests.RouteRule{prefixRule("/", poolBackend("p"))}, nil, pool("p", "epp", mode))
}

func TestPickerDestination(t *testing.T) {
	t.Parallel()
	a, b := startEcho(t, "a"), startEcho(t, "b")
	dead := refusedAddr(t)
	tests := []struct {
		name       string
		pk         picker
		wantServer string
		wantServed string
	}{
		{"from metadata", picker{dest: b, viaMetadata: true}, "b", b},
		{"from header", picker{dest: b, viaHeader: true}, "b", b},
		{"metadata before header", picker{dest: a, viaMetadata: true, viaHeader: true}, "a", a},
		{"list walked past a refused endpoint", picker{dest: dead + "," + b, viaMetadata: true}, "b", b},
		{"list walked with spaces", picker{dest: dead + " , " + a, viaHeader: true}, "a", a},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pk := tc.pk
			pk.served = make(chan string, 1)
			res, snap := poolTopology(t, &pk, manifests.FailClose, a, b)
			_, url := startGateway(t, snap, res, gateway.Options{})
			r := do(t, "POST", url+"/v1/completions", map[string]string{"x-gateway-destination-endpoint": a}, `{"model":"m"}`)
			if r.status != http.StatusOK {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			if got := r.header.Get("X-Backend"); got != tc.wantServer {
				t.Errorf("served by %q, want %q", got, tc.wantServer)
			}
			if got := r.header.Get("x-gateway-destination-endpoint-served"); got != tc.wantServed {
				t.Errorf("served header %q, want %q", got, tc.wantServed)
			}
			select {
			case got := <-pk.served:
				if got != tc.wantServed {
					t.Errorf("picker was told %q served, want %q", got, tc.wantServed)
				}
			default:
				t.Errorf("picker saw no response headers")
			}
		})
	}
}

func TestPickerFullDuplexBodyIntact(t *testing.T) {
	t.Parallel()
	a := startEcho(t, "a")
	// A body of several ext_proc chunks, returned by the picker in pieces of
	// another size, must reach the upstream byte for byte.
	var sb strings.Builder
	sb.WriteString(`{"model":"m","prompt":"`)
	for i := range 30000 {
		sb.WriteByte("abcdefghijklmnopqrstuvwxyz"[i%26])
	}
	sb.WriteString(`"}`)
	body := strings.Repeat(sb.String(), 5) // ~150 KiB
	pk := &picker{dest: a, viaMetadata: true, outChunk: 10000, gotBody: make(chan []byte, 1)}
	res, snap := poolTopology(t, pk, manifests.FailClose, a)
	_, url := startGateway(t, snap, res, gateway.Options{})
	r := do(t, "POST", url+"/v1/completions", nil, body)
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %.200s", r.status, r.body)
	}
	e := r.echo(t)
	if e.Body != body {
		t.Errorf("upstream got %d bytes, want %d; equal prefix %d", len(e.Body), len(body), commonPrefix(e.Body, body))
	}
	if got := <-pk.gotBody; !bytes.Equal(got, []byte(body)) {
		t.Errorf("picker got %d bytes, want %d", len(got), len(body))
	}
	// The echo's JSON answer went through the picker's full-duplex response phase.
	if !strings.Contains(string(r.body), `"backend":"a"`) {
		t.Errorf("response body mangled: %.200s", r.body)
	}
}

func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

func TestPickerBodylessRequest(t *testing.T) {
	t.Parallel()
	a := startEcho(t, "a")
	res, snap := poolTopology(t, &picker{dest: a, viaHeader: true}, manifests.FailClose, a)
	_, url := startGateway(t, snap, res, gateway.Options{})
	if r := do(t, "GET", url+"/v1/models", nil, ""); r.status != http.StatusOK || r.header.Get("X-Backend") != "a" {
		t.Fatalf("status %d backend %q", r.status, r.header.Get("X-Backend"))
	}
}

func TestPickerDown(t *testing.T) {
	t.Parallel()
	a := startEcho(t, "a")
	t.Run("FailOpen", func(t *testing.T) {
		t.Parallel()
		res, snap := poolTopology(t, nil, manifests.FailOpen, a)
		_, url := startGateway(t, snap, res, gateway.Options{})
		r := do(t, "POST", url+"/v1/completions", nil, `{"model":"m"}`)
		if r.status != http.StatusOK || r.header.Get("X-Backend") != "a" {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		if r.header.Get("x-gateway-destination-endpoint-served") != a {
			t.Errorf("served header %q", r.header.Get("x-gateway-destination-endpoint-served"))
		}
		if e := r.echo(t); e.Body != `{"model":"m"}` {
			t.Errorf("body %q", e.Body)
		}
	})
	t.Run("FailClose", func(t *testing.T) {
		t.Parallel()
		res, snap := poolTopology(t, nil, manifests.FailClose, a)
		_, url := startGateway(t, snap, res, gateway.Options{})
		r := do(t, "POST", url+"/v1/completions", nil, `{"model":"m"}`)
		if r.status != http.StatusServiceUnavailable || errorReason(t, r) != "PickerUnavailable" {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
	})
}

func TestPickerSlowerThanTimeout(t *testing.T) {
	t.Parallel()
	a := startEcho(t, "a")
	for _, mode := range []manifests.FailureMode{manifests.FailOpen, manifests.FailClose} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			hold := make(chan struct{}) // never released: the picker answers only when the stream ends
			t.Cleanup(func() { close(hold) })
			res, snap := poolTopology(t, &picker{dest: a, viaMetadata: true, hold: hold}, mode, a)
			_, url := startGateway(t, snap, res, gateway.Options{PickerTimeout: 150 * time.Millisecond})
			r := do(t, "POST", url+"/v1/completions", nil, `{"model":"m"}`)
			switch mode {
			case manifests.FailOpen:
				if r.status != http.StatusOK || r.header.Get("X-Backend") != "a" {
					t.Fatalf("status %d: %s", r.status, r.body)
				}
			case manifests.FailClose:
				if r.status != http.StatusServiceUnavailable || errorReason(t, r) != "PickerUnavailableTimeout" {
					t.Fatalf("status %d: %s", r.status, r.body)
				}
			}
		})
	}
}

func TestPickerImmediateResponse(t *testing.T) {
	t.Parallel()
	a := startEcho(t, "a")
	ir := extproc.ImmediateResponse(http.StatusBadRequest, map[string]string{"content-type": "application/json"},
		[]byte(`{"error":"model not found in request body"}`))
	res, snap := poolTopology(t, &picker{immediate: ir}, manifests.FailClose, a)
	_, url := startGateway(t, snap, res, gateway.Options{})
	r := do(t, "POST", url+"/v1/completions", nil, `{}`)
	if r.status != http.StatusBadRequest {
		t.Fatalf("status %d", r.status)
	}
	if string(r.body) != `{"error":"model not found in request body"}` || r.header.Get("Content-Type") != "application/json" {
		t.Errorf("body %q content-type %q", r.body, r.header.Get("Content-Type"))
	}
	if r.header.Get("X-Backend") != "" {
		t.Errorf("the upstream was called")
	}
}

func TestPoolWithoutPicker(t *testing.T) {
	t.Parallel()
	a, b := startEcho(t, "a"), startEcho(t, "b")
	res := newResolver().pool("p", refusedAddr(t), a, b)
	snap := topology([]*manifests.RouteRule{prefixRule("/", poolBackend("p"))}, nil, pool("p", "", ""))
	_, url := startGateway(t, snap, res, gateway.Options{Seed: 7})
	seen := map[string]int{}
	for range 20 {
		r := do(t, "GET", url+"/", nil, "")
		if r.status != http.StatusOK {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		seen[r.header.Get("X-Backend")]++
		if r.header.Get("x-gateway-destination-endpoint-served") == "" {
			t.Fatal("no served header")
		}
	}
	if seen["a"] == 0 || seen["b"] == 0 {
		t.Errorf("random choice did not reach both endpoints: %v", seen)
	}
}

// A picker that answers a full-duplex response chunk without a
// streamed_response breaks the protocol. The client's headers are already out
// by then, so a fail-closed picker cuts the connection: the client must not
// mistake the partial answer for a complete one.
func TestPickerProtocolErrorMidStream(t *testing.T) {
	t.Parallel()
	a := startEcho(t, "a")
	addr := startProcessor(t, func() extproc.Processor {
		return extproc.Processor(&badPicker{pickerStream: pickerStream{c: &picker{dest: a, viaMetadata: true}}})
	})
	res := newResolver().pool("p", a).service("epp", addr)
	snap := topology([]*manifests.RouteRule{prefixRule("/", poolBackend("p"))}, nil, pool("p", "epp", manifests.FailClose))
	_, url := startGateway(t, snap, res, gateway.Options{})
	resp, err := client.Get(url + "/")
	if err == nil {
		_, err = readAll(resp)
	}
	if err == nil {
		t.Fatalf("status %d and a complete body; want a cut connection", resp.StatusCode)
	}
}

type badPicker struct{ pickerStream }

func (p *badPicker) Process(ctx ctxT, req *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error) {
	if _, ok := req.GetRequest().(*extprocv3.ProcessingRequest_ResponseBody); ok {
		return one(extproc.ContinueResponseBody()), nil
	}
	return p.pickerStream.Process(ctx, req)
}

// failingPicker breaks its stream with an error at one phase.
type failingPicker struct {
	pickerStream
	at string // "response_headers" or "response_body"
}

func (p *failingPicker) Process(ctx ctxT, req *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error) {
	switch req.GetRequest().(type) {
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		if p.at == "response_headers" {
			return nil, errors.New("picker crashed")
		}
	case *extprocv3.ProcessingRequest_ResponseBody:
		if p.at == "response_body" {
			return nil, errors.New("picker crashed")
		}
	}
	return p.pickerStream.Process(ctx, req)
}

func TestPickerFailsOnTheResponse(t *testing.T) {
	t.Parallel()
	// Several reads' worth of body, so a replay has to put chunks together.
	big := strings.Repeat("0123456789", 20000)
	up := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		for i := 0; i < len(big); i += 50000 {
			_, _ = io.WriteString(w, big[i:min(i+50000, len(big))])
			w.(http.Flusher).Flush()
		}
	})
	tests := []struct {
		at         string
		mode       manifests.FailureMode
		wantStatus int
	}{
		{"response_headers", manifests.FailOpen, http.StatusOK},
		{"response_headers", manifests.FailClose, http.StatusServiceUnavailable},
		{"response_body", manifests.FailOpen, http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.at+"/"+string(tc.mode), func(t *testing.T) {
			t.Parallel()
			addr := startProcessor(t, func() extproc.Processor {
				return &failingPicker{pickerStream: pickerStream{c: &picker{dest: up, viaMetadata: true}}, at: tc.at}
			})
			res := newResolver().pool("p", up).service("epp", addr)
			snap := topology([]*manifests.RouteRule{prefixRule("/", poolBackend("p"))}, nil, pool("p", "epp", tc.mode))
			_, url := startGateway(t, snap, res, gateway.Options{})
			r := do(t, "GET", url+"/", nil, "")
			if r.status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %.200s", r.status, tc.wantStatus, r.body)
			}
			if tc.wantStatus == http.StatusOK && string(r.body) != big {
				t.Errorf("fail-open body: %d bytes, want %d; equal prefix %d", len(r.body), len(big), commonPrefix(string(r.body), big))
			}
		})
	}
}

func TestPoolH2C(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Proto", r.Proto)
	}))
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	p := pool("p", "", "")
	p.AppProtocol = "kubernetes.io/h2c"
	res := newResolver().pool("p", addr)
	_, url := startGateway(t, topology([]*manifests.RouteRule{prefixRule("/", poolBackend("p"))}, nil, p), res, gateway.Options{})
	if r := do(t, "GET", url+"/", nil, ""); r.status != http.StatusOK || r.header.Get("X-Proto") != "HTTP/2.0" {
		t.Fatalf("status %d proto %q", r.status, r.header.Get("X-Proto"))
	}
}
