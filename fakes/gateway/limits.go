package gateway

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gatecheck/gatecheck/manifests"
)

// fault is a request the gateway refuses for its shape or size, before any
// processor or upstream sees it. The wire check (wire.go) finds most of them
// in the raw request head; the handler checks the size limits again on the
// parsed request (checkLimits), for a gateway served without the wire check.
type fault uint8

const (
	faultNone fault = iota
	faultRequestLine
	faultVersion
	faultLineEnding
	faultObsFold
	faultSpaceBeforeColon
	faultHeaderName
	faultHeaderValue
	faultHost
	faultCLAndTE
	faultTERepeated
	faultTE
	faultTEOnHTTP10
	faultCLRepeated
	faultCL
	faultURLTooLong
	faultTooManyHeaders
	faultHeadersTooLarge
	faultCount // not a fault: the number of them
)

// faults says how each fault is answered. Messages never echo the request:
// they name the shape, not the bytes.
var faults = [faultCount]struct {
	status int
	reason string
	msg    string
}{
	faultRequestLine:      {http.StatusBadRequest, "BadRequest", "malformed request line"},
	faultVersion:          {http.StatusHTTPVersionNotSupported, "HTTPVersionNotSupported", "only HTTP/1.0 and HTTP/1.1 are served"},
	faultLineEnding:       {http.StatusBadRequest, "BadRequest", "a line of the request head does not end in CRLF, or holds a bare CR"},
	faultObsFold:          {http.StatusBadRequest, "InvalidHeader", "obsolete line folding (a header line starting with whitespace)"},
	faultSpaceBeforeColon: {http.StatusBadRequest, "InvalidHeader", "whitespace between a header name and its colon"},
	faultHeaderName:       {http.StatusBadRequest, "InvalidHeader", "malformed header line or invalid header name"},
	faultHeaderValue:      {http.StatusBadRequest, "InvalidHeader", "invalid character in a header value"},
	faultHost:             {http.StatusBadRequest, "BadRequest", "missing or repeated Host header"},
	faultCLAndTE:          {http.StatusBadRequest, "ConflictingFraming", "both Content-Length and Transfer-Encoding are present"},
	faultTERepeated:       {http.StatusBadRequest, "InvalidTransferEncoding", "Transfer-Encoding is repeated"},
	faultTE:               {http.StatusBadRequest, "InvalidTransferEncoding", "Transfer-Encoding must be exactly chunked"},
	faultTEOnHTTP10:       {http.StatusBadRequest, "InvalidTransferEncoding", "Transfer-Encoding on an HTTP/1.0 request"},
	faultCLRepeated:       {http.StatusBadRequest, "InvalidContentLength", "Content-Length is repeated"},
	faultCL:               {http.StatusBadRequest, "InvalidContentLength", "Content-Length is not a plain decimal number"},
	faultURLTooLong:       {http.StatusRequestURITooLong, "URITooLong", "request target longer than %d bytes"},
	faultTooManyHeaders:   {http.StatusRequestHeaderFieldsTooLarge, "RequestHeaderFieldsTooLarge", "more than %d request headers"},
	faultHeadersTooLarge:  {http.StatusRequestHeaderFieldsTooLarge, "RequestHeaderFieldsTooLarge", "request headers larger than %d bytes"},
}

// err is the fault as the gateway's error, its message naming the limit.
func (f fault) err(lim manifests.Limits) *httpError {
	if f == faultNone || f >= faultCount {
		f = faultRequestLine
	}
	a := faults[f]
	msg := a.msg
	switch f {
	case faultURLTooLong:
		msg = fmt.Sprintf(msg, lim.MaxURLLength)
	case faultTooManyHeaders:
		msg = fmt.Sprintf(msg, lim.MaxRequestHeaders)
	case faultHeadersTooLarge:
		msg = fmt.Sprintf(msg, lim.MaxRequestHeadersBytes)
	}
	return newHTTPError(a.status, a.reason, msg, nil)
}

// limitsOf returns the limits of Gateway ref, the defaults for a Gateway the
// configuration does not hold.
func (c *config) limitsOf(ref manifests.Ref) manifests.Limits {
	if l, ok := c.limits[ref]; ok {
		return l
	}
	return manifests.DefaultLimits()
}

// limits returns the current limits of Gateway ref.
func (g *Gateway) limits(ref manifests.Ref) manifests.Limits {
	return g.cfg.Load().limitsOf(ref)
}

// checkLimits checks the parsed request against the URL and header limits:
// the request target as sent, the header lines (Host, which net/http moves
// out of the header map, included) and the bytes of their names and values.
// Behind the wire check these never fire (the raw head was checked already,
// with the same counting); they keep the limits for a gateway served on a
// plain http.Server.
func checkLimits(r *http.Request, lim manifests.Limits) fault {
	if len(r.RequestURI) > lim.MaxURLLength {
		return faultURLTooLong
	}
	n, size := 0, 0
	if r.Host != "" {
		n, size = 1, len("Host")+len(r.Host)
	}
	for k, vv := range r.Header {
		n += len(vv)
		for _, v := range vv {
			size += len(k) + len(v)
		}
	}
	switch {
	case n > lim.MaxRequestHeaders:
		return faultTooManyHeaders
	case size > lim.MaxRequestHeadersBytes:
		return faultHeadersTooLarge
	}
	return faultNone
}

// wireRejectHeader carries a fault from the wire check to the handler. The
// wire check replaces a refused request head with a small request of its own
// that holds this header, so net/http hands the refusal to the handler in
// order, after the answers to earlier requests on the connection, and the
// answer goes out through net/http like any other. The value is
// "<secret>:<fault>"; the secret is made by New, so a client cannot forge a
// refusal (and gains nothing if it could).
const wireRejectHeader = "Gatecheck-Wire-Reject"

// wireHead is the request that stands in for a refused head.
func (g *Gateway) wireHead(f fault) []byte {
	return []byte("GET / HTTP/1.1\r\nHost: gatecheck.invalid\r\n" + wireRejectHeader + ": " +
		g.wireSecret + ":" + strconv.Itoa(int(f)) + "\r\nConnection: close\r\n\r\n")
}

// wireFault reads the fault out of a stand-in request; faultNone for any
// other request.
func (g *Gateway) wireFault(r *http.Request) fault {
	v, ok := r.Header[wireRejectHeader]
	if !ok || len(v) != 1 {
		return faultNone
	}
	secret, code, ok := strings.Cut(v[0], ":")
	if !ok || subtle.ConstantTimeCompare([]byte(secret), []byte(g.wireSecret)) != 1 {
		return faultNone
	}
	n, err := strconv.Atoi(code)
	if err != nil || n <= int(faultNone) || n >= int(faultCount) {
		return faultNone
	}
	return fault(n)
}

// refuse answers a fault the wire check found. The answer is written even if
// the client has stopped sending (net/http cancels the request's context when
// a read fails), and net/http closes the connection after it: the stand-in
// request asked for that.
func (rq *request) refuse(f fault, lim manifests.Limits) {
	status, body := errorAnswer(f.err(lim))
	rq.log.Debug("gateway: request refused before parsing", "status", status, "reason", faults[f].reason)
	rq.cw.commit(jsonAnswer(status, body))
	_ = rq.cw.write(body)
}
