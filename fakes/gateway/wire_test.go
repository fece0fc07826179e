package gateway_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/gatecheck/gatecheck/fakes/gateway"
	"github.com/gatecheck/gatecheck/manifests"
)

// countingEcho is an echo backend (see startEcho) that counts the requests
// it gets.
func countingEcho(t testing.TB) (string, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(echoed{Backend: "a", Method: r.Method, URI: r.RequestURI, Host: r.Host, Header: r.Header, Body: string(body)})
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), &n
}

// serveWire serves gwRef of g with the gateway's own server and listener and
// returns the address.
func serveWire(t testing.TB, g *gateway.Gateway, ref manifests.Ref) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := g.Server(ref)
	go func() { _ = srv.Serve(g.Listener(lis, ref)) }()
	t.Cleanup(func() { _ = srv.Close() })
	return lis.Addr().String()
}

// testLimits are small, so the tests stay small.
var testLimits = manifests.Limits{MaxRequestBodyBytes: 1024, MaxRequestHeadersBytes: 2048, MaxRequestHeaders: 20, MaxURLLength: 256}

// startWireGateway serves a gateway with testLimits that routes everything to
// a counting echo backend.
func startWireGateway(t testing.TB) (addr string, upstream *atomic.Int64) {
	t.Helper()
	a, n := countingEcho(t)
	snap := topology([]*manifests.RouteRule{prefixRule("/", svc("a", 1))}, nil)
	snap.Gateways[0].Limits = testLimits
	g, err := gateway.New(snap, gateway.Options{Resolver: newResolver().service("a", a)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return serveWire(t, g, gwRef), n
}

// rawConn is a client connection that writes raw bytes and reads responses.
type rawConn struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (r *rawConn) write(s string) {
	r.t.Helper()
	if _, err := io.WriteString(r.c, s); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// response reads one response to a request with method.
func (r *rawConn) response(method string) (*http.Response, []byte) {
	r.t.Helper()
	resp, err := http.ReadResponse(r.br, &http.Request{Method: method})
	if err != nil {
		r.t.Fatalf("reading a response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatalf("reading a response body: %v", err)
	}
	return resp, body
}

// closed reports whether the server closed the connection (after any bytes
// it still had to send have been read).
func (r *rawConn) closed() bool {
	_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := r.br.ReadByte()
	if err == nil {
		r.t.Errorf("unexpected byte %q after the response", b)
		return false
	}
	var ne net.Error
	return !errors.As(err, &ne) || !ne.Timeout()
}

// gatewayError reads the gateway's JSON error body.
func gatewayError(t testing.TB, status int, body []byte) (reason, msg string) {
	t.Helper()
	var e struct {
		Error struct {
			Status  int    `json:"status"`
			Reason  string `json:"reason"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("status %d: body %q is not the gateway's JSON error: %v", status, body, err)
	}
	if e.Error.Status != status {
		t.Fatalf("JSON status %d, HTTP status %d", e.Error.Status, status)
	}
	return e.Error.Reason, e.Error.Message
}

// head builds a request head from lines, each ended by CRLF, and the empty line.
func head(lines ...string) string { return strings.Join(lines, "\r\n") + "\r\n\r\n" }

func TestWireRefusals(t *testing.T) {
	t.Parallel()
	long := "/" + strings.Repeat("a", 256) // 257 bytes: one over the limit
	manyHeaders := []string{"POST /x HTTP/1.1", "Host: a"}
	for i := range 20 {
		manyHeaders = append(manyHeaders, fmt.Sprintf("X-H%d: v", i))
	}
	tests := []struct {
		name   string
		raw    string
		status int
		reason string
		// wire: refused before parsing, so Connection: close and the
		// connection ends.
		wire bool
	}{
		// Request smuggling shapes.
		{"CL.TE", head("POST /x HTTP/1.1", "Host: a", "Content-Length: 6", "Transfer-Encoding: chunked") + "0\r\n\r\nX",
			400, "ConflictingFraming", true},
		{"TE.CL", head("POST /x HTTP/1.1", "Host: a", "Transfer-Encoding: chunked", "Content-Length: 3") + "8\r\nSMUGGLED\r\n0\r\n\r\n",
			400, "ConflictingFraming", true},
		{"TE list", head("POST /x HTTP/1.1", "Host: a", "Transfer-Encoding: chunked, identity") + "0\r\n\r\n", 400, "InvalidTransferEncoding", true},
		{"TE xchunked", head("POST /x HTTP/1.1", "Host: a", "Transfer-Encoding: xchunked") + "0\r\n\r\n", 400, "InvalidTransferEncoding", true},
		{"TE chunked-false", head("POST /x HTTP/1.1", "Host: a", "Transfer-Encoding: chunked-false") + "0\r\n\r\n", 400, "InvalidTransferEncoding", true},
		{"TE identity", head("POST /x HTTP/1.1", "Host: a", "Transfer-Encoding: identity"), 400, "InvalidTransferEncoding", true},
		{"TE repeated", head("POST /x HTTP/1.1", "Host: a", "Transfer-Encoding: chunked", "Transfer-Encoding: chunked") + "0\r\n\r\n",
			400, "InvalidTransferEncoding", true},
		{"TE repeated, second bogus", head("POST /x HTTP/1.1", "Host: a", "Transfer-Encoding: chunked", "Transfer-Encoding: x") + "0\r\n\r\n",
			400, "InvalidTransferEncoding", true},
		{"TE on HTTP/1.0", head("POST /x HTTP/1.0", "Transfer-Encoding: chunked") + "0\r\n\r\n", 400, "InvalidTransferEncoding", true},
		{"TE with space before colon", head("POST /x HTTP/1.1", "Host: a", "Transfer-Encoding : chunked") + "0\r\n\r\n", 400, "InvalidHeader", true},
		{"TE with tab before colon", head("POST /x HTTP/1.1", "Host: a", "Transfer-Encoding\t: chunked") + "0\r\n\r\n", 400, "InvalidHeader", true},
		{"TE folded (leading space)", head("POST /x HTTP/1.1", "Host: a", " Transfer-Encoding: chunked") + "0\r\n\r\n", 400, "InvalidHeader", true},
		{"TE behind a bare LF", "POST /x HTTP/1.1\r\nHost: a\r\nX: y\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "BadRequest", true},
		{"CL repeated, equal", head("POST /x HTTP/1.1", "Host: a", "Content-Length: 1", "Content-Length: 1") + "X", 400, "InvalidContentLength", true},
		{"CL repeated, different", head("POST /x HTTP/1.1", "Host: a", "Content-Length: 1", "Content-Length: 2") + "XY", 400, "InvalidContentLength", true},
		{"CL list", head("POST /x HTTP/1.1", "Host: a", "Content-Length: 1, 1") + "X", 400, "InvalidContentLength", true},
		{"CL signed", head("POST /x HTTP/1.1", "Host: a", "Content-Length: +1") + "X", 400, "InvalidContentLength", true},
		{"CL negative", head("POST /x HTTP/1.1", "Host: a", "Content-Length: -1"), 400, "InvalidContentLength", true},
		{"CL hex", head("POST /x HTTP/1.1", "Host: a", "Content-Length: 0x1") + "X", 400, "InvalidContentLength", true},
		{"CL empty", head("POST /x HTTP/1.1", "Host: a", "Content-Length: "), 400, "InvalidContentLength", true},
		{"CL overflow", head("POST /x HTTP/1.1", "Host: a", "Content-Length: 99999999999999999999"), 400, "InvalidContentLength", true},
		{"obs-fold", head("GET /x HTTP/1.1", "Host: a", "X-A: one", "  two"), 400, "InvalidHeader", true},
		{"obs-fold with tab", head("GET /x HTTP/1.1", "Host: a", "X-A: one", "\ttwo"), 400, "InvalidHeader", true},
		{"space before colon", head("GET /x HTTP/1.1", "Host : a"), 400, "InvalidHeader", true},
		{"header without colon", head("GET /x HTTP/1.1", "Host: a", "X-A"), 400, "InvalidHeader", true},
		{"invalid header name", head("GET /x HTTP/1.1", "Host: a", "X(A): b"), 400, "InvalidHeader", true},
		{"NUL in a value", head("GET /x HTTP/1.1", "Host: a", "X-A: b\x00c"), 400, "InvalidHeader", true},
		{"bare CR in a value", head("GET /x HTTP/1.1", "Host: a", "X-A: b\rc"), 400, "BadRequest", true},
		{"bare LF line ends", "GET /x HTTP/1.1\nHost: a\n\n", 400, "BadRequest", true},
		{"missing Host", head("GET /x HTTP/1.1"), 400, "BadRequest", true},
		{"repeated Host", head("GET /x HTTP/1.1", "Host: a", "Host: b"), 400, "BadRequest", true},
		{"malformed request line", head("GET /x", "Host: a"), 400, "BadRequest", true},
		{"two spaces in the request line", head("GET  /x HTTP/1.1", "Host: a"), 400, "BadRequest", true},
		{"control byte in the target", head("GET /x\x01y HTTP/1.1", "Host: a"), 400, "BadRequest", true},
		{"HTTP/1.2", head("GET /x HTTP/1.2", "Host: a"), 505, "HTTPVersionNotSupported", true},
		{"h2c preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, "HTTPVersionNotSupported", true},
		// Limits.
		{"URL too long", head("GET "+long+" HTTP/1.1", "Host: a"), 414, "URITooLong", true},
		{"URL too long, query counts", head("GET /x?"+strings.Repeat("q", 254)+" HTTP/1.1", "Host: a"), 414, "URITooLong", true},
		{"request line without end", "GET /" + strings.Repeat("a", 4000), 414, "URITooLong", true},
		{"too many headers", head(manyHeaders...), 431, "RequestHeaderFieldsTooLarge", true},
		{"headers too large", head("GET /x HTTP/1.1", "Host: a", "X-Big: "+strings.Repeat("b", 2048)), 431, "RequestHeaderFieldsTooLarge", true},
		{"head without end", "GET /x HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("b", 8000), 431, "RequestHeaderFieldsTooLarge", true},
		{"body too large, Content-Length (head only)", head("POST /x HTTP/1.1", "Host: a", "Content-Length: 1000000"),
			413, "PayloadTooLarge", false},
		{"body too large, chunked", head("POST /x HTTP/1.1", "Host: a", "Transfer-Encoding: chunked") +
			"400\r\n" + strings.Repeat("x", 1024) + "\r\n1\r\nx\r\n0\r\n\r\n", 413, "PayloadTooLarge", false},
		// A chunked body whose framing breaks is not read further.
		{"bad chunk size", head("POST /x HTTP/1.1", "Host: a", "Transfer-Encoding: chunked") + "zz\r\nxx\r\n0\r\n\r\n", 400, "BadRequest", false},
		{"chunk data overrun", head("POST /x HTTP/1.1", "Host: a", "Transfer-Encoding: chunked") + "1\r\nxx\r\n0\r\n\r\n", 400, "BadRequest", false},
		{"bare LF after a chunk size", head("POST /x HTTP/1.1", "Host: a", "Transfer-Encoding: chunked") + "1\nx\r\n0\r\n\r\n", 400, "BadRequest", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr, upstream := startWireGateway(t)
			c := dialRaw(t, addr)
			c.write(tt.raw)
			resp, body := c.response("POST")
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.status, body)
			}
			if reason, _ := gatewayError(t, resp.StatusCode, body); reason != tt.reason {
				t.Errorf("reason %q, want %q", reason, tt.reason)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if tt.wire || tt.status == 400 {
				if !resp.Close {
					t.Errorf("no Connection: close on a %d", resp.StatusCode)
				}
				if !c.closed() {
					t.Errorf("connection still open after a %d", resp.StatusCode)
				}
			}
			if n := upstream.Load(); n != 0 {
				t.Errorf("the upstream saw %d requests", n)
			}
		})
	}
}

// withBody is a request with a Content-Length body.
func withBody(requestLine, body string) string {
	return head(requestLine, "Host: a", fmt.Sprintf("Content-Length: %d", len(body))) + body
}

const headShapedBody = "GET /admin HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n"

// keepAliveRequests are well-formed requests of every framing, some with
// bodies that look like request heads.
var keepAliveRequests = []struct {
	raw, method, uri, body string
}{
	{head("POST /v1/chat?x=1 HTTP/1.1", "Host: a", "Content-Type: application/json", "Content-Length: 13") + `{"model":"m"}`,
		"POST", "/v1/chat?x=1", `{"model":"m"}`},
	{head("POST /chunked HTTP/1.1", "Host: a", "Transfer-Encoding: chunked") +
		"5;ext=1\r\nhello\r\nA \r\n, world!!!\r\n0\r\nX-Trailer: t\r\n\r\n",
		"POST", "/chunked", "hello, world!!!"},
	{head("GET /plain HTTP/1.1", "Host: a", "X-Tab-Value:\tv\t"), "GET", "/plain", ""},
	// A head-shaped body: passed on as body, never checked as a head.
	{withBody("PUT /body-with-head HTTP/1.1", headShapedBody), "PUT", "/body-with-head", headShapedBody},
	{head("POST /chunk-with-head HTTP/1.1", "Host: a", "transfer-encoding: Chunked") +
		fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(headShapedBody), headShapedBody),
		"POST", "/chunk-with-head", headShapedBody},
	// Blank lines after a POST body are skipped, as net/http does.
	{head("POST /then-crlf HTTP/1.1", "Host: a", "Content-Length: 2") + "ok\r\n",
		"POST", "/then-crlf", "ok"},
	{head("DELETE /last HTTP/1.1", "Host: a", "Content-Length: 0"), "DELETE", "/last", ""},
}

// TestWireKeepAlive proves the wire check leaves well-formed traffic alone:
// requests of every framing, one after another on one connection, sent
// request by request, all at once (pipelined), and in small random pieces.
func TestWireKeepAlive(t *testing.T) {
	t.Parallel()
	addr, upstream := startWireGateway(t)
	check := func(t *testing.T, c *rawConn, i int) {
		t.Helper()
		want := keepAliveRequests[i]
		resp, body := c.response(want.method)
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: status %d: %s", i, resp.StatusCode, body)
		}
		var e echoed
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("request %d: %v: %s", i, err, body)
		}
		if e.Method != want.method || e.URI != want.uri || e.Body != want.body {
			t.Errorf("request %d: upstream saw %s %s %q, want %s %s %q", i, e.Method, e.URI, e.Body, want.method, want.uri, want.body)
		}
	}
	all := ""
	for _, r := range keepAliveRequests {
		all += r.raw
	}
	t.Run("one by one", func(t *testing.T) {
		c := dialRaw(t, addr)
		for i, r := range keepAliveRequests {
			c.write(r.raw)
			check(t, c, i)
		}
	})
	t.Run("pipelined", func(t *testing.T) {
		c := dialRaw(t, addr)
		c.write(all)
		for i := range keepAliveRequests {
			check(t, c, i)
		}
	})
	t.Run("in pieces", func(t *testing.T) {
		c := dialRaw(t, addr)
		go func() {
			for i, n := 0, 1; i < len(all); i, n = i+n, n%7+1 {
				if _, err := io.WriteString(c.c, all[i:min(i+n, len(all))]); err != nil {
					return
				}
			}
		}()
		for i := range keepAliveRequests {
			check(t, c, i)
		}
	})
	if got, want := upstream.Load(), int64(3*len(keepAliveRequests)); got != want {
		t.Errorf("upstream saw %d requests, want %d", got, want)
	}
}

// TestWireSmugglingAfterGoodRequests sends good requests and then a smuggling
// attempt on the same connection: the good ones are answered, the attempt is
// refused, and nothing it hides reaches the upstream.
func TestWireSmugglingAfterGoodRequests(t *testing.T) {
	t.Parallel()
	addr, upstream := startWireGateway(t)
	c := dialRaw(t, addr)
	c.write(keepAliveRequests[0].raw + keepAliveRequests[1].raw +
		head("POST /x HTTP/1.1", "Host: a", "Content-Length: 4", "Transfer-Encoding: chunked") + "0\r\n\r\n" +
		head("GET /smuggled HTTP/1.1", "Host: a"))
	for range 2 {
		if resp, body := c.response("POST"); resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
	}
	resp, body := c.response("POST")
	if resp.StatusCode != 400 || !resp.Close {
		t.Fatalf("status %d, close %v: %s", resp.StatusCode, resp.Close, body)
	}
	if !c.closed() {
		t.Error("connection still open")
	}
	if n := upstream.Load(); n != 2 {
		t.Errorf("upstream saw %d requests, want 2", n)
	}
}

// TestWireBodyLimitBeforeReading: a Content-Length above the limit is
// answered before the client sends the body, even when it waits for 100
// Continue.
func TestWireBodyLimitBeforeReading(t *testing.T) {
	t.Parallel()
	addr, upstream := startWireGateway(t)
	c := dialRaw(t, addr)
	c.write(head("POST /x HTTP/1.1", "Host: a", "Expect: 100-continue", "Content-Length: 1025"))
	resp, body := c.response("POST")
	if resp.StatusCode != 413 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if reason, msg := gatewayError(t, resp.StatusCode, body); reason != "PayloadTooLarge" || msg != "request body larger than 1024 bytes" {
		t.Errorf("reason %q, message %q", reason, msg)
	}
	// At the limit exactly, the body goes through.
	c2 := dialRaw(t, addr)
	c2.write(head("POST /x HTTP/1.1", "Host: a", "Content-Length: 1024") + strings.Repeat("x", 1024))
	if resp, body := c2.response("POST"); resp.StatusCode != 200 {
		t.Fatalf("at the limit: status %d: %s", resp.StatusCode, body)
	}
	if n := upstream.Load(); n != 1 {
		t.Errorf("upstream saw %d requests, want 1", n)
	}
}

// TestWireLimitsAtTheBoundary: exactly at each limit passes, one over fails.
func TestWireLimitsAtTheBoundary(t *testing.T) {
	t.Parallel()
	addr, _ := startWireGateway(t)
	// Header bytes count names and values: Host (4+1) + X-Big (5+n).
	atLimit := strings.Repeat("b", testLimits.MaxRequestHeadersBytes-5-5)
	headers := []string{"GET /x HTTP/1.1", "Host: a"}
	for i := range testLimits.MaxRequestHeaders - 1 {
		headers = append(headers, fmt.Sprintf("X-%02d: v", i))
	}
	for _, tt := range []struct {
		name   string
		raw    string
		status int
	}{
		{"URL at the limit", head("GET /"+strings.Repeat("a", testLimits.MaxURLLength-1)+" HTTP/1.1", "Host: a"), 200},
		{"URL one over", head("GET /"+strings.Repeat("a", testLimits.MaxURLLength)+" HTTP/1.1", "Host: a"), 414},
		{"header bytes at the limit", head("GET /x HTTP/1.1", "Host: a", "X-Big: "+atLimit), 200},
		{"header bytes one over", head("GET /x HTTP/1.1", "Host: a", "X-Big: "+atLimit+"b"), 431},
		{"header count at the limit", head(headers...), 200},
		{"header count one over", head(append(headers, "X-One: more")...), 431},
	} {
		c := dialRaw(t, addr)
		c.write(tt.raw)
		if resp, body := c.response("GET"); resp.StatusCode != tt.status {
			t.Errorf("%s: status %d, want %d: %s", tt.name, resp.StatusCode, tt.status, body)
		}
	}
}

// TestLimitsWithoutWireCheck: served on a plain http.Server, the handler
// still enforces the size limits with the gateway's answers.
func TestLimitsWithoutWireCheck(t *testing.T) {
	t.Parallel()
	a, upstream := countingEcho(t)
	snap := topology([]*manifests.RouteRule{prefixRule("/", svc("a", 1))}, nil)
	snap.Gateways[0].Limits = testLimits
	_, url := startGateway(t, snap, newResolver().service("a", a), gateway.Options{})
	for _, tt := range []struct {
		name   string
		path   string
		header map[string]string
		body   string
		status int
		reason string
	}{
		{"URL", "/" + strings.Repeat("a", 256), nil, "", 414, "URITooLong"},
		{"header bytes", "/x", map[string]string{"X-Big": strings.Repeat("b", 2048)}, "", 431, "RequestHeaderFieldsTooLarge"},
		{"body", "/x", nil, strings.Repeat("x", 1025), 413, "PayloadTooLarge"},
		{"fine", "/x", nil, strings.Repeat("x", 1024), 200, ""},
	} {
		r := do(t, "POST", url+tt.path, tt.header, tt.body)
		if r.status != tt.status {
			t.Errorf("%s: status %d, want %d: %s", tt.name, r.status, tt.status, r.body)
			continue
		}
		if tt.reason != "" {
			if reason := errorReason(t, r); reason != tt.reason {
				t.Errorf("%s: reason %q, want %q", tt.name, reason, tt.reason)
			}
		}
	}
	if n := upstream.Load(); n != 1 {
		t.Errorf("upstream saw %d requests, want 1", n)
	}
}

// twoGateways is a topology whose Gateways set different limits by
// annotation, with one route attached to both.
const twoGateways = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: strict
  annotations:
    gatecheck.dev/max-url-length: "64"
    gatecheck.dev/max-request-body-bytes: 1Ki
    gatecheck.dev/max-request-headers: "10"
    gatecheck.dev/max-request-headers-bytes: "512"
spec:
  gatewayClassName: gatecheck
  listeners: [{name: http, protocol: HTTP, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: lenient}
spec:
  gatewayClassName: gatecheck
  listeners: [{name: http, protocol: HTTP, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{name: strict}, {name: lenient}]
  rules:
  - backendRefs: [{name: a, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: a}
spec:
  selector: {app: a}
  ports: [{port: 80}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: a}
spec:
  selector: {matchLabels: {app: a}}
  template:
    metadata: {labels: {app: a}}
    spec:
      containers: [{name: a, image: a:1}]
`

// TestLimitsPerGateway: each Gateway's annotations decide its limits.
func TestLimitsPerGateway(t *testing.T) {
	t.Parallel()
	objs, policies, err := manifests.Load(fstest.MapFS{"t/topology.yaml": {Data: []byte(twoGateways)}}, "t")
	if err != nil {
		t.Fatal(err)
	}
	snap, err := manifests.Compile(objs, policies)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := countingEcho(t)
	g, err := gateway.New(snap, gateway.Options{Resolver: newResolver().service("a", a)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	strict := serveWire(t, g, ref("strict"))
	lenient := serveWire(t, g, ref("lenient"))
	headers := []string{"POST /x HTTP/1.1", "Host: a", "Content-Length: 2000"}
	for i := range 10 {
		headers = append(headers, fmt.Sprintf("X-%d: v", i))
	}
	for _, tt := range []struct {
		name            string
		raw             string
		strict, lenient int
	}{
		{"URL of 65 bytes", head("GET /"+strings.Repeat("a", 64)+" HTTP/1.1", "Host: a"), 414, 200},
		{"body of 2000 bytes", head("POST /x HTTP/1.1", "Host: a", "Content-Length: 2000") + strings.Repeat("x", 2000), 413, 200},
		{"13 headers", head(headers...) + strings.Repeat("x", 2000), 431, 200},
		{"600 header bytes", head("GET /x HTTP/1.1", "Host: a", "X-Big: "+strings.Repeat("b", 600)), 431, 200},
	} {
		for _, gw := range []struct {
			addr string
			want int
		}{{strict, tt.strict}, {lenient, tt.lenient}} {
			c := dialRaw(t, gw.addr)
			c.write(tt.raw)
			if resp, body := c.response("GET"); resp.StatusCode != gw.want {
				t.Errorf("%s on %s: status %d, want %d: %s", tt.name, gw.addr, resp.StatusCode, gw.want, body)
			}
		}
	}
	// A new configuration applies to the next request on the same listener.
	snap2 := *snap
	snap2.Gateways = []*manifests.Gateway{snap.Gateways[0], snap.Gateways[1]}
	relaxed := *snap.Gateways[0]
	relaxed.Limits.MaxURLLength = 1000
	snap2.Gateways[0] = &relaxed
	g.Swap(&snap2)
	c := dialRaw(t, strict)
	c.write(head("GET /"+strings.Repeat("a", 64)+" HTTP/1.1", "Host: a"))
	if resp, body := c.response("GET"); resp.StatusCode != 200 {
		t.Errorf("after Swap: status %d: %s", resp.StatusCode, body)
	}
}

// TestWireBrokenBodyAfterGoodRequests: a pipelined request whose chunked body
// is broken does not disturb the requests before it; it is answered 400 and
// the connection ends.
func TestWireBrokenBodyAfterGoodRequests(t *testing.T) {
	t.Parallel()
	addr, upstream := startWireGateway(t)
	c := dialRaw(t, addr)
	c.write(keepAliveRequests[0].raw + keepAliveRequests[1].raw +
		head("POST /x HTTP/1.1", "Host: a", "Transfer-Encoding: chunked") + "3\r\nabcdef\r\n0\r\n\r\n" +
		keepAliveRequests[2].raw)
	for i := range 2 {
		if resp, body := c.response("POST"); resp.StatusCode != 200 {
			t.Fatalf("request %d: status %d: %s", i, resp.StatusCode, body)
		}
	}
	resp, body := c.response("POST")
	if resp.StatusCode != 400 || !resp.Close {
		t.Fatalf("status %d, close %v: %s", resp.StatusCode, resp.Close, body)
	}
	if !c.closed() {
		t.Error("connection still open")
	}
	if n := upstream.Load(); n != 2 {
		t.Errorf("upstream saw %d requests, want 2", n)
	}
}

// lockedBuffer collects a server's error log.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
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

// FuzzWire writes arbitrary bytes to a gateway served with its own server and
// listener: the server must never panic, and whatever it answers must be a
// sequence of valid HTTP responses.
func FuzzWire(f *testing.F) {
	a, _ := countingEcho(f)
	snap := topology([]*manifests.RouteRule{prefixRule("/", svc("a", 1))}, nil)
	snap.Gateways[0].Limits = testLimits
	g, err := gateway.New(snap, gateway.Options{Resolver: newResolver().service("a", a)})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(g.Close)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	var logs lockedBuffer
	srv := g.Server(gwRef)
	srv.ErrorLog = log.New(&logs, "", 0)
	go func() { _ = srv.Serve(g.Listener(lis, gwRef)) }()
	f.Cleanup(func() { _ = srv.Close() })
	addr := lis.Addr().String()

	for _, r := range keepAliveRequests {
		f.Add([]byte(r.raw))
	}
	f.Add([]byte(keepAliveRequests[0].raw + keepAliveRequests[1].raw + keepAliveRequests[2].raw))
	f.Add([]byte(head("POST /x HTTP/1.1", "Host: a", "Content-Length: 6", "Transfer-Encoding: chunked") + "0\r\n\r\nGET /admin HTTP/1.1\r\n\r\n"))
	f.Add([]byte(head("POST /x HTTP/1.1", "Host: a", "Transfer-Encoding: chunked") + "zz\r\n"))
	f.Add([]byte(head("GET /x HTTP/1.1", "Host: a", "X: a", " b")))
	f.Add([]byte(head("GET /"+strings.Repeat("a", 300)+" HTTP/1.1", "Host: a")))
	f.Add([]byte(head("POST /x HTTP/1.1", "Host: a", "Expect: 100-continue", "Content-Length: 3") + "abc"))
	f.Add([]byte("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"))
	f.Add([]byte{0, 1, 2, 0xff, '\n', '\n'})

	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		_, _ = c.Write(in) // the server may stop reading early
		_ = c.(*net.TCPConn).CloseWrite()
		br := bufio.NewReader(c)
		// The answer to a HEAD has no body whatever its headers say, so
		// what follows it cannot be framed without knowing the requests.
		all := !bytes.Contains(in, []byte("HEAD"))
		for i := 0; ; i++ {
			if _, err := br.Peek(1); err != nil {
				break // the server closed the connection
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) {
					break
				}
				t.Fatalf("answer %d is not an HTTP response: %v", i, err)
			}
			if resp.StatusCode < 100 || resp.StatusCode > 599 {
				t.Fatalf("answer %d: status %d", i, resp.StatusCode)
			}
			if _, err := io.ReadAll(resp.Body); err != nil {
				var ne net.Error
				if errors.As(err, &ne) {
					break
				}
				t.Fatalf("answer %d (status %d): body: %v", i, resp.StatusCode, err)
			}
			if !all {
				break
			}
		}
		if l := logs.String(); strings.Contains(l, "panic") {
			t.Fatalf("the server panicked:\n%s", l)
		}
	})
}

// BenchmarkWire is one small chat request through the gateway to a Service,
// served on a plain http.Server ("handler") and on the gateway's own server
// and listener ("wire"), which check every request head before net/http
// parses it.
func BenchmarkWire(b *testing.B) {
	up := benchUpstream(b)
	snap := topology([]*manifests.RouteRule{prefixRule("/", svc("a", 1))}, nil)
	res := newResolver().service("a", up)
	b.Run("handler", func(b *testing.B) {
		_, url := startGateway(b, snap, res, gateway.Options{})
		measure(b, url+"/v1/chat/completions")
	})
	b.Run("wire", func(b *testing.B) {
		g, err := gateway.New(snap, gateway.Options{Resolver: res})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(g.Close)
		measure(b, "http://"+serveWire(b, g, gwRef)+"/v1/chat/completions")
	})
}
