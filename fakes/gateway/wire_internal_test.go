package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/manifests"
)

// memConn is a net.Conn that reads src in pieces of the sizes in steps (in
// turn; 0 means everything left), so heads and bodies arrive split anywhere.
type memConn struct {
	src   []byte
	steps []byte
	i     int
}

func (c *memConn) Read(p []byte) (int, error) {
	if len(c.src) == 0 {
		return 0, io.EOF
	}
	n := len(c.src)
	if len(c.steps) > 0 {
		if s := int(c.steps[c.i%len(c.steps)]); s > 0 {
			n = min(n, s)
		}
		c.i++
	}
	n = copy(p, c.src[:n])
	c.src = c.src[n:]
	return n, nil
}

func (c *memConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *memConn) Close() error                     { return nil }
func (c *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

type noResolver struct{}

func (noResolver) ServiceAddrs(manifests.Ref, int32) ([]string, error) {
	return nil, errors.New("none")
}
func (noResolver) PoolEndpoints(manifests.Ref) ([]string, error) { return nil, errors.New("none") }

var fuzzRef = manifests.Ref{Namespace: "default", Name: "gw"}

func fuzzGateway(t testing.TB) *Gateway {
	snap := &manifests.Snapshot{Gateways: []*manifests.Gateway{{
		Ref:    fuzzRef,
		Limits: manifests.Limits{MaxRequestBodyBytes: 1024, MaxRequestHeadersBytes: 512, MaxRequestHeaders: 12, MaxURLLength: 64},
	}}}
	g, err := New(snap, Options{Resolver: noResolver{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g
}

// skipLeadingCRLF does what net/http's server does before a request that
// follows a POST.
func skipLeadingCRLF(br *bufio.Reader) {
	peek, _ := br.Peek(4)
	n := 0
	for n < len(peek) && (peek[n] == '\r' || peek[n] == '\n') {
		n++
	}
	_, _ = br.Discard(n)
}

// FuzzWireAgreement is a differential test of the wire check against
// net/http: it parses the same bytes twice with http.ReadRequest, once as
// they are and once through a wireConn. Every request that comes through the
// wire check (and is not its stand-in for a refusal) must be exactly the
// request net/http reads from the raw bytes, and so must its body when it
// reads without error. That is the property that makes the check safe: it
// never lets through a framing that net/http reads differently, so nothing
// can be smuggled past it.
func FuzzWireAgreement(f *testing.F) {
	g := fuzzGateway(f)
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc\r\nGET /y HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;e=1\r\nabc\r\n0\r\nT: 1\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
		"GET / HTTP/1.1\nHost: a\n\n",
		"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\nContent-Length: 1\r\n\r\nx",
		"PUT /x HTTP/1.1\r\nhost: a\r\ncontent-length: 007\r\n\r\nabcdefg",
	} {
		f.Add([]byte(s), []byte{0})
		f.Add([]byte(s), []byte{1, 2, 3, 5, 7})
	}
	f.Fuzz(func(t *testing.T, in, steps []byte) {
		raw := bufio.NewReader(bytes.NewReader(in))
		checked := bufio.NewReader(&wireConn{Conn: &memConn{src: in, steps: steps}, g: g, ref: fuzzRef})
		for i := 0; ; i++ {
			req, err := http.ReadRequest(checked)
			if err != nil {
				return // the stream ended, or was cut
			}
			if g.wireFault(req) != faultNone {
				return // a refusal: nothing of it is passed on
			}
			want, err := http.ReadRequest(raw)
			if err != nil {
				t.Fatalf("request %d: passed the wire check but net/http refuses the raw bytes: %v", i, err)
			}
			if req.Method != want.Method || req.RequestURI != want.RequestURI || req.Proto != want.Proto ||
				req.Host != want.Host || req.ContentLength != want.ContentLength ||
				!slices.Equal(req.TransferEncoding, want.TransferEncoding) ||
				!maps.EqualFunc(req.Header, want.Header, slices.Equal) {
				t.Fatalf("request %d: through the wire check\n%+v\nfrom the raw bytes\n%+v", i, req, want)
			}
			body, err := io.ReadAll(req.Body)
			if err != nil {
				return // a broken body: the connection goes no further
			}
			wantBody, err := io.ReadAll(want.Body)
			if err != nil {
				t.Fatalf("request %d: body passed the wire check but net/http refuses the raw body: %v", i, err)
			}
			if !bytes.Equal(body, wantBody) {
				t.Fatalf("request %d: body %q through the wire check, %q from the raw bytes", i, body, wantBody)
			}
			if !maps.EqualFunc(req.Trailer, want.Trailer, slices.Equal) {
				t.Fatalf("request %d: trailer %v through the wire check, %v from the raw bytes", i, req.Trailer, want.Trailer)
			}
			if req.Method == "POST" {
				skipLeadingCRLF(checked)
				skipLeadingCRLF(raw)
			}
		}
	})
}

// FuzzChunkedFraming checks bodyScan against net/http's chunked reader: when
// net/http reads a chunked body without error, bodyScan ends it at the same
// byte, or refuses a trailer line that does not end in CRLF.
func FuzzChunkedFraming(f *testing.F) {
	for _, s := range []string{
		"0\r\n\r\n", "3\r\nabc\r\n0\r\n\r\nrest", "3;x=y\r\nabc\r\n0\r\nA: b\r\nC: d\r\n\r\n",
		"3\t \r\nabc\r\n0\r\n\r\n", "A\r\n0123456789\r\n0\r\n\r\n", "0000000000000003\r\nabc\r\n0\r\n\r\n",
		"3\nabc\r\n0\r\n\r\n", "3\r\nabcd\r\n", "0\r\nA: b\n\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	const head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	f.Fuzz(func(t *testing.T, in []byte) {
		src := bytes.NewReader(append([]byte(head), in...))
		br := bufio.NewReader(src)
		req, err := http.ReadRequest(br)
		if err != nil {
			t.Fatal(err)
		}
		_, goErr := io.ReadAll(req.Body)
		goEnd := len(in) - src.Len() - br.Buffered()

		var s bodyScan
		s.chunked = true
		k, done, bad := s.advance(in)
		inTrailer := s.phase >= phTrailer
		switch {
		case goErr == nil && bad && inTrailer:
			// Stricter than net/http on purpose: trailer lines must end
			// in CRLF too (net/http takes a bare LF there).
		case goErr == nil && !done:
			t.Fatalf("net/http reads a body of %d bytes; bodyScan: %d bytes, bad %v", goEnd, k, bad)
		case goErr == nil && k != goEnd:
			t.Fatalf("net/http ends the body after %d bytes, bodyScan after %d", goEnd, k)
		}
		// Byte by byte, the same answer.
		var s1 bodyScan
		s1.chunked = true
		for i := range in {
			k1, done1, bad1 := s1.advance(in[i : i+1])
			if bad1 || done1 {
				if bad1 != bad || done1 != done || i+k1 != k {
					t.Fatalf("byte by byte: end %d bad %v done %v; at once: end %d bad %v done %v", i+k1, bad1, done1, k, bad, done)
				}
				return
			}
		}
		if done || bad {
			t.Fatalf("at once: done %v bad %v after %d bytes; byte by byte: neither", done, bad, k)
		}
	})
}

func TestCheckHeadAllocations(t *testing.T) {
	h := []byte("POST /v1/chat/completions HTTP/1.1\r\nHost: gw.example.com\r\nUser-Agent: x\r\n" +
		"Content-Type: application/json\r\nContent-Length: 90\r\nX-Api-Key: k\r\nAccept: */*\r\n\r\n")
	lim := manifests.DefaultLimits()
	if n := testing.AllocsPerRun(100, func() { _, _ = checkHead(h, lim) }); n != 0 {
		t.Errorf("checkHead allocates %v times per head", n)
	}
	if _, f := checkHead(h, lim); f != faultNone {
		t.Fatalf("fault %d", f)
	}
}

func TestFaultsAreComplete(t *testing.T) {
	for f := faultNone + 1; f < faultCount; f++ {
		a := faults[f]
		if a.status == 0 || a.reason == "" || a.msg == "" {
			t.Errorf("fault %d has no answer", f)
		}
		if strings.Contains(f.err(manifests.DefaultLimits()).msg, "%!") {
			t.Errorf("fault %d: bad message format", f)
		}
	}
}
