package gateway

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/gatecheck/gatecheck/manifests"
)

// The wire check: every request head on a connection is read and checked
// before net/http parses it, because net/http normalises some smuggling shapes
// away (it drops Content-Length beside Transfer-Encoding: chunked, joins
// folded lines, accepts repeated equal Content-Lengths) and answers others
// with its own plain-text errors. See the package documentation, "Limits and
// request smuggling".

// Head-size allowances around the limits, for the parts of a head the limits
// do not count: the method, spaces, version and line ends.
const (
	requestLineSlack = 1024 // method, two spaces, version, CRLF
	headerLineSlack  = 8    // ": ", CRLF and a little optional whitespace per header line
	headSlack        = 1024
)

// headCaps returns the most bytes the request line, and the whole head, may
// take before the request is refused (414 and 431) without waiting for its end.
func headCaps(l manifests.Limits) (line, head int) {
	line = l.MaxURLLength + requestLineSlack
	head = line + l.MaxRequestHeadersBytes + l.MaxRequestHeaders*headerLineSlack + headSlack
	return line, head
}

// maxHeadBytes is http.Server.MaxHeaderBytes for a gateway: above any head
// the wire check lets through, so the Gateway's limits decide, with the
// gateway's answers, and not net/http's 1 MiB default.
var maxHeadBytes = func() int {
	_, head := headCaps(manifests.Limits{
		MaxRequestHeadersBytes: manifests.MaxRequestHeadersBytesCeiling,
		MaxRequestHeaders:      manifests.MaxRequestHeadersCeiling,
		MaxURLLength:           manifests.MaxURLLengthCeiling,
	})
	return head + 64 // and the blank lines net/http skips after a POST
}()

// Server returns an http.Server for Gateway ref: its handler, a header
// timeout, and MaxHeaderBytes above every head the wire check lets through.
// Serve it on Listener(lis, ref) so each request head is checked on the wire:
//
//	srv := g.Server(ref)
//	go srv.Serve(g.Listener(lis, ref))
//
// The fields may be changed before Serve. Served on a plain listener, the size
// limits still hold (the handler checks them) but the smuggling checks do not.
func (g *Gateway) Server(ref manifests.Ref) *http.Server {
	return &http.Server{
		Handler:           g.Handler(ref),
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    maxHeadBytes,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
	}
}

// Listener wraps lis so that every request head of every connection it
// accepts is checked against the limits of Gateway ref, and its framing
// against the request smuggling shapes, before net/http parses it. A head
// that fails is never seen by net/http: the gateway's handler answers it with
// a JSON error and Connection: close. Serve only g.Handler(ref) (best:
// g.Server(ref)) on it.
func (g *Gateway) Listener(lis net.Listener, ref manifests.Ref) net.Listener {
	return &wireListener{Listener: lis, g: g, ref: ref}
}

type wireListener struct {
	net.Listener
	g   *Gateway
	ref manifests.Ref
}

func (l *wireListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &wireConn{Conn: c, g: l.g, ref: l.ref}, nil
}

type wireState uint8

const (
	stateHead     wireState = iota // reading a request head
	stateBody                      // passing a request body through
	stateRejected                  // a head was refused: nothing more is passed on
)

// errBrokenBody is what net/http reads after a request body whose chunked
// framing is broken: the connection is not read any further.
var errBrokenBody = errors.New("gateway: malformed chunked request body")

// brokenChunk is passed on in place of the first bad byte of a chunked body.
// Whatever part of the chunked framing net/http is reading, it cannot accept
// a NUL followed by a bare LF there, so its body read fails and the handler
// answers 400; the connection is then closed.
var brokenChunk = []byte{0, '\n'}

// lingerTime and lingerBytes bound how long, and how much, a connection that
// was refused is read after the answer before it is closed, so that the
// client's unread bytes do not reset the connection before it reads the
// answer (as net/http's closeWriteAndWait; RFC 9112 §9.6).
const (
	lingerTime  = 500 * time.Millisecond
	lingerBytes = 256 << 10
)

// wireConn checks the request heads flowing through a connection.
//
// Bytes read from the connection are returned to net/http only once checked:
// a head when it is complete and well formed, a body as it flows (its framing
// followed, Content-Length or chunked, to find where the next head starts).
// Heads are held in buf; body bytes are read straight into net/http's buffer
// and scanned in place. Read is called by one goroutine at a time (net/http's
// connection reader); Close may be called by another.
type wireConn struct {
	net.Conn
	g   *Gateway
	ref manifests.Ref

	buf   []byte // read from the connection, not yet returned
	off   int    // buf[off:ready] is checked and is returned next
	ready int    // buf[ready:] is not checked yet
	state wireState
	head  headScan
	body  bodyScan
	// lead is how many CR or LF bytes net/http skips before the next
	// request line: up to four after a POST (RFC 9112 §2.2 tolerance).
	lead int
	err  error // sticky, after a broken body

	rejected atomic.Bool // for Close, which may run on another goroutine
}

func (c *wireConn) Read(p []byte) (int, error) {
	for {
		if c.off < c.ready {
			n := copy(p, c.buf[c.off:c.ready])
			c.off += n
			if c.off == len(c.buf) {
				c.buf, c.off, c.ready = c.buf[:0], 0, 0
			}
			return n, nil
		}
		if c.err != nil {
			return 0, c.err
		}
		if c.state == stateRejected {
			return c.discard()
		}
		if len(p) == 0 {
			return 0, nil
		}
		if c.ready < len(c.buf) && c.process() {
			continue
		}
		if c.state == stateBody {
			// Everything held is passed on, so body bytes go straight
			// into p and are scanned there.
			n, err := c.Conn.Read(p)
			if n == 0 {
				return 0, err
			}
			k, done, bad := c.body.advance(p[:n])
			switch {
			case bad:
				c.broken()
			case done:
				// The rest is the start of the next head.
				c.buf = append(c.buf[:0], p[k:n]...)
				c.off, c.ready = 0, 0
				c.state, c.head = stateHead, headScan{}
			}
			if k > 0 {
				return k, nil
			}
			continue
		}
		if err := c.fill(); err != nil {
			return 0, err
		}
	}
}

// fill reads more of the connection into buf.
func (c *wireConn) fill() error {
	if c.off > 0 {
		n := copy(c.buf, c.buf[c.off:])
		c.buf, c.ready, c.off = c.buf[:n], c.ready-c.off, 0
	}
	const minRead = 4 << 10
	if cap(c.buf)-len(c.buf) < minRead {
		c.buf = slices.Grow(c.buf, max(minRead, cap(c.buf)))
	}
	n, err := c.Conn.Read(c.buf[len(c.buf):cap(c.buf)])
	c.buf = c.buf[:len(c.buf)+n]
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// process checks the next part of buf[ready:]: one head, or the bytes held
// of the body being passed on. It reports whether it made any of them ready,
// or refused a head.
//
// It goes no further than that, so that a later request on the connection is
// only looked at once net/http asks for bytes past the current one: a request
// is never affected by the requests behind it (net/http cancels a request when
// its background read of the connection fails).
func (c *wireConn) process() bool {
	for c.ready < len(c.buf) && c.err == nil && c.state != stateRejected {
		switch c.state {
		case stateBody:
			k, done, bad := c.body.advance(c.buf[c.ready:])
			c.ready += k
			if bad {
				c.broken()
				return true
			}
			if done {
				c.state, c.head = stateHead, headScan{}
			}
			if k > 0 {
				return true
			}
		case stateHead:
			return c.scanHead()
		}
	}
	return false
}

// broken replaces the rest of a body whose chunked framing is broken by
// brokenChunk and stops reading the connection.
func (c *wireConn) broken() {
	c.buf = append(c.buf[:c.ready], brokenChunk...)
	c.ready = len(c.buf)
	c.err = errBrokenBody
}

// reject replaces the head at buf[ready:] by the stand-in request for f.
func (c *wireConn) reject(f fault) {
	c.buf = append(c.buf[:c.ready], c.g.wireHead(f)...)
	c.ready = len(c.buf)
	c.state = stateRejected
	c.rejected.Store(true)
}

// discard reads and drops what the client still sends after a refused head,
// until the read fails: net/http's background read, while the refusal is
// answered, ends with the deadline net/http sets to stop it.
func (c *wireConn) discard() (int, error) {
	var scratch [512]byte
	for {
		if _, err := c.Conn.Read(scratch[:]); err != nil {
			return 0, err
		}
	}
}

// CloseWrite half-closes the connection when it can (net/http uses it before
// lingering on a connection it refused).
func (c *wireConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Close closes the connection; one whose head was refused first lingers
// (lingerTime, lingerBytes) so the client reads the answer before any reset.
func (c *wireConn) Close() error {
	if c.rejected.Load() {
		_ = c.CloseWrite()
		_ = c.Conn.SetReadDeadline(time.Now().Add(lingerTime))
		_, _ = io.CopyN(io.Discard, c.Conn, lingerBytes)
	}
	return c.Conn.Close()
}

// headScan finds the end of a head in buf[ready:] across reads, without
// scanning a byte twice.
type headScan struct {
	scanned   int // bytes searched for a line end
	lineStart int // start of the current line
	lineEnd   int // end of the request line (after its LF); 0 until seen
}

// scanHead looks for the end of the head at buf[ready:]. When the head is
// complete it is checked: a good head is made ready and the state follows its
// framing; a bad one is refused. A head that outgrows the limits is refused
// without waiting for its end. It reports whether it did any of that.
func (c *wireConn) scanHead() bool {
	h := &c.head
	if h.scanned == 0 && c.lead > 0 {
		start := c.ready
		for c.lead > 0 && c.ready < len(c.buf) && (c.buf[c.ready] == '\r' || c.buf[c.ready] == '\n') {
			c.ready++
			c.lead--
		}
		if c.ready == len(c.buf) {
			return c.ready > start // skipped bytes are ready; the head has not started
		}
		c.lead = 0
	}
	b := c.buf[c.ready:]
	lim := c.g.limits(c.ref)
	lineCap, headCap := headCaps(lim)
	tooLarge := func() bool {
		if h.lineEnd == 0 || h.lineEnd > lineCap {
			c.reject(faultURLTooLong)
		} else {
			c.reject(faultHeadersTooLarge)
		}
		return true
	}
	for {
		i := bytes.IndexByte(b[h.scanned:], '\n')
		if i < 0 {
			h.scanned = len(b)
			break
		}
		i += h.scanned
		h.scanned = i + 1
		if h.lineEnd == 0 {
			h.lineEnd = i + 1
		} else if n := i - h.lineStart; n == 0 || n == 1 && b[h.lineStart] == '\r' {
			if i+1 > headCap {
				return tooLarge()
			}
			fr, f := checkHead(b[:i+1], lim)
			if f != faultNone {
				c.reject(f)
				return true
			}
			c.ready += i + 1
			c.head = headScan{}
			if fr.post {
				c.lead = 4
			}
			if fr.chunked || fr.length > 0 {
				c.state, c.body = stateBody, bodyScan{chunked: fr.chunked, remain: uint64(fr.length)}
			}
			return true
		}
		h.lineStart = i + 1
	}
	if len(b) > headCap || h.lineEnd == 0 && len(b) > lineCap {
		return tooLarge()
	}
	return false
}

// framing is how a checked request's body is delimited.
type framing struct {
	chunked bool
	length  int64
	post    bool
}

// checkHead checks one complete request head, from its request line to the
// empty line that ends it, and returns its framing or the first fault found.
// It accepts only heads that net/http reads the same way: every line ends in
// CRLF, no CR or LF elsewhere, no folding, no whitespace before a colon, at
// most one Content-Length (plain decimal), at most one Transfer-Encoding
// (exactly chunked, not beside a Content-Length, not on HTTP/1.0), one Host.
func checkHead(head []byte, lim manifests.Limits) (framing, fault) {
	var fr framing
	line, rest, f := nextLine(head)
	if f != faultNone {
		return fr, f
	}
	method, line, ok1 := bytes.Cut(line, sp)
	target, proto, ok2 := bytes.Cut(line, sp)
	if !ok1 || !ok2 || !validTokenBytes(method) || len(target) == 0 {
		return fr, faultRequestLine
	}
	if len(target) > lim.MaxURLLength {
		return fr, faultURLTooLong
	}
	for _, b := range target {
		if b <= ' ' || b == 0x7f {
			return fr, faultRequestLine
		}
	}
	http11 := false
	switch string(proto) {
	case "HTTP/1.1":
		http11 = true
	case "HTTP/1.0":
	default:
		if len(proto) == 8 && string(proto[:5]) == "HTTP/" && isDigit(proto[5]) && proto[6] == '.' && isDigit(proto[7]) {
			return fr, faultVersion
		}
		return fr, faultRequestLine
	}
	fr.post = string(method) == "POST"

	var headers, size, nCL, nTE, nHost int
	var cl, te []byte
	for {
		line, rest, f = nextLine(rest)
		if f != faultNone {
			return fr, f
		}
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return fr, faultObsFold
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			return fr, faultHeaderName
		}
		name, value := line[:colon], trimOWS(line[colon+1:])
		if n := len(name); n > 0 && (name[n-1] == ' ' || name[n-1] == '\t') {
			return fr, faultSpaceBeforeColon
		}
		if !validTokenBytes(name) {
			return fr, faultHeaderName
		}
		for _, b := range value {
			if b < ' ' && b != '\t' || b == 0x7f {
				return fr, faultHeaderValue
			}
		}
		headers++
		size += len(name) + len(value)
		switch {
		case asciiEqualFold(name, "content-length"):
			nCL++
			cl = value
		case asciiEqualFold(name, "transfer-encoding"):
			nTE++
			te = value
		case asciiEqualFold(name, "host"):
			nHost++
		}
	}
	switch {
	case headers > lim.MaxRequestHeaders:
		return fr, faultTooManyHeaders
	case size > lim.MaxRequestHeadersBytes:
		return fr, faultHeadersTooLarge
	case nCL > 0 && nTE > 0:
		return fr, faultCLAndTE
	case nTE > 1:
		return fr, faultTERepeated
	case nTE == 1 && !http11:
		return fr, faultTEOnHTTP10
	case nTE == 1 && !asciiEqualFold(te, "chunked"):
		return fr, faultTE
	case nCL > 1:
		return fr, faultCLRepeated
	case nHost > 1, nHost == 0 && http11 && string(method) != "CONNECT":
		return fr, faultHost
	}
	fr.chunked = nTE == 1
	if nCL == 1 {
		n, ok := parseDecimal(cl)
		if !ok {
			return fr, faultCL
		}
		fr.length = n
	}
	return fr, faultNone
}

var sp = []byte{' '}

// nextLine splits off the first line of b, which must end in CRLF and hold
// no other CR.
func nextLine(b []byte) (line, rest []byte, f fault) {
	i := bytes.IndexByte(b, '\n')
	if i < 1 || b[i-1] != '\r' {
		return nil, nil, faultLineEnding
	}
	line = b[:i-1]
	if bytes.IndexByte(line, '\r') >= 0 {
		return nil, nil, faultLineEnding
	}
	return line, b[i+1:], faultNone
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func isDigit(b byte) bool { return '0' <= b && b <= '9' }

// parseDecimal reads a non-empty run of digits that fits an int64.
func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// asciiEqualFold reports whether b equals the lower-case ASCII s, ignoring case.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// tokenBytes marks the bytes of an RFC 9110 token.
var tokenBytes = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func validTokenBytes(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tokenBytes[c] {
			return false
		}
	}
	return true
}

// bodyScan follows a request body's framing across reads: a Content-Length
// count, or chunked framing read exactly as net/http reads it (chunk-size
// line ending in CRLF with no other CR, at most 16 hex digits, whitespace
// only before the CRLF, an extension after ';'; CRLF after the data; trailer
// lines ending in CRLF, then an empty line), each line at most
// maxChunkLine bytes.
type bodyScan struct {
	chunked bool
	remain  uint64 // Content-Length bytes, or chunk data bytes, left
	phase   chunkPhase
	size    uint64 // the chunk size read so far
	digits  int
	line    int // bytes of the current chunk-size line, or of the trailer
}

type chunkPhase uint8

const (
	phSize        chunkPhase = iota // hex digits of a chunk size
	phSizeOWS                       // whitespace after the size
	phExt                           // a chunk extension, up to CR
	phSizeLF                        // the LF after the size line's CR
	phData                          // chunk data
	phDataCR                        // the CRLF after chunk data
	phDataLF                        // (its LF)
	phTrailer                       // the start of a trailer line (or of the final CRLF)
	phTrailerLine                   // inside a trailer line
	phTrailerLF                     // the LF after a trailer line's CR
	phEndLF                         // the LF of the final CRLF
)

// maxChunkLine is net/http's limit on a chunk-size line (its bufio buffer),
// and the most trailer bytes it peeks at.
const maxChunkLine = 4096

// advance scans p, the next bytes of the body. It returns how many of them
// belong to the body (k), whether the body ended with p[k-1], and whether
// p[k] breaks the framing.
func (s *bodyScan) advance(p []byte) (k int, done, bad bool) {
	if !s.chunked {
		if uint64(len(p)) >= s.remain {
			return int(s.remain), true, false
		}
		s.remain -= uint64(len(p))
		return len(p), false, false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch s.phase {
		case phData:
			n := min(uint64(len(p)-i), s.remain)
			s.remain -= n
			i += int(n) - 1
			if s.remain == 0 {
				s.phase = phDataCR
			}
			continue
		case phSize, phSizeOWS, phExt, phSizeLF:
			if s.line++; s.line > maxChunkLine {
				return i, false, true
			}
		case phTrailer, phTrailerLine, phTrailerLF, phEndLF:
			if s.line++; s.line > maxChunkLine {
				return i, false, true
			}
		}
		switch s.phase {
		case phSize:
			switch v := hexValue(c); {
			case v >= 0:
				if s.digits == 16 {
					return i, false, true
				}
				s.size, s.digits = s.size<<4|uint64(v), s.digits+1
			case s.digits == 0:
				return i, false, true
			case c == ';':
				s.phase = phExt
			case c == ' ' || c == '\t':
				s.phase = phSizeOWS
			case c == '\r':
				s.phase = phSizeLF
			default:
				return i, false, true
			}
		case phSizeOWS:
			switch c {
			case ' ', '\t':
			case '\r':
				s.phase = phSizeLF
			default:
				return i, false, true
			}
		case phExt:
			switch c {
			case '\r':
				s.phase = phSizeLF
			case '\n':
				return i, false, true
			}
		case phSizeLF:
			if c != '\n' {
				return i, false, true
			}
			s.line = 0
			if s.size == 0 {
				s.phase = phTrailer
			} else {
				s.phase, s.remain = phData, s.size
			}
			s.size, s.digits = 0, 0
		case phDataCR:
			if c != '\r' {
				return i, false, true
			}
			s.phase = phDataLF
		case phDataLF:
			if c != '\n' {
				return i, false, true
			}
			s.phase = phSize
		case phTrailer:
			switch c {
			case '\r':
				s.phase = phEndLF
			case '\n':
				return i, false, true
			default:
				s.phase = phTrailerLine
			}
		case phTrailerLine:
			switch c {
			case '\r':
				s.phase = phTrailerLF
			case '\n':
				return i, false, true
			}
		case phTrailerLF:
			if c != '\n' {
				return i, false, true
			}
			s.phase = phTrailer
		case phEndLF:
			if c != '\n' {
				return i, false, true
			}
			return i + 1, true, false
		}
	}
	return len(p), false, false
}

func hexValue(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
