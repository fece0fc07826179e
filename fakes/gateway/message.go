package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/gatecheck/gatecheck/internal/extproc"
	"github.com/gatecheck/gatecheck/manifests"
)

// maxRequestBody caps request bodies. Request bodies are read whole before any
// processor or upstream sees them: LLM requests are small JSON documents, the
// buffered extension mode and the picker need the whole body anyway, and a
// buffered body can be re-sent when an endpoint refuses the connection. Larger
// bodies are answered with 413, as Envoy does when a buffer limit is exceeded.
// The same cap bounds a response body that a processor asks to have BUFFERED.
// A Gateway may lower the request cap (manifests.Limits.MaxRequestBodyBytes),
// not raise it.
const maxRequestBody = manifests.MaxRequestBodyBytesCeiling

// chunkSize is the size of the pieces a buffered request body is sent to a
// processor in (STREAMED and FULL_DUPLEX_STREAMED modes), and of reads from
// upstream. Envoy recommends chunks of at most 64 KiB on ext_proc streams.
const chunkSize = 64 << 10

// message is the request as the processors and the router see it: pseudo
// headers kept apart from the header map, the body read whole.
type message struct {
	method string
	path   string // :path, the request target as sent: escaped path and query
	host   string // :authority
	scheme string
	header http.Header
	body   []byte
}

// hopHeaders are removed in both directions, as net/http/httputil does
// (RFC 9110 §7.6.1).
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

func removeHopHeaders(h http.Header) {
	for _, f := range h.Values("Connection") {
		for _, name := range strings.Split(f, ",") {
			if name = strings.TrimSpace(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopHeaders {
		h.Del(name)
	}
}

// newMessage reads the client's request: hop-by-hop headers go, X-Forwarded-For
// and X-Forwarded-Proto are added and an x-request-id is made when missing (as
// Envoy's connection manager does before any filter runs), and the body is read
// whole up to maxBody: a Content-Length above it is refused before a byte of
// the body is read, and a chunked body is refused once it grows past it.
func newMessage(r *http.Request, maxBody int64) (*message, error) {
	if !validToken(r.Method) {
		return nil, newHTTPError(http.StatusBadRequest, "BadRequest", "invalid method", nil)
	}
	h := r.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	removeHopHeaders(h)
	h.Del("Content-Length")
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if prior := h.Values("X-Forwarded-For"); len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		h.Set("X-Forwarded-For", ip)
	}
	h.Set("X-Forwarded-Proto", scheme)
	if h.Get("X-Request-Id") == "" {
		h.Set("X-Request-Id", newRequestID())
	}
	m := &message{method: r.Method, path: r.URL.RequestURI(), host: r.Host, scheme: scheme, header: h}
	maxBody = min(maxBody, maxRequestBody)
	tooLarge := func() error {
		return newHTTPError(http.StatusRequestEntityTooLarge, "PayloadTooLarge",
			fmt.Sprintf("request body larger than %d bytes", maxBody), nil)
	}
	if r.ContentLength > maxBody {
		return nil, tooLarge() // before reading: the client may not even have sent it
	}
	if r.Body != nil && r.Body != http.NoBody {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
		if err != nil {
			return nil, newHTTPError(http.StatusBadRequest, "BadRequest", "reading the request body failed", err)
		}
		if int64(len(body)) > maxBody {
			return nil, tooLarge()
		}
		m.body = body
	}
	return m, nil
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	s := hex.EncodeToString(b[:])
	return s[:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
}

// url parses the request target for routing and for the upstream request.
func (m *message) url() (*url.URL, error) {
	u, err := url.ParseRequestURI(m.path)
	if err != nil {
		return nil, newHTTPError(http.StatusBadRequest, "BadRequest", "invalid request path", err)
	}
	return u, nil
}

// headerMap is the request headers as Envoy sends them to a processor: pseudo
// headers first, names lower-cased, content-length when there is a body.
func (m *message) headerMap() *corev3.HeaderMap {
	hm := make(map[string][]string, len(m.header)+5)
	hm[":method"] = []string{m.method}
	hm[":path"] = []string{m.path}
	hm[":authority"] = []string{m.host}
	hm[":scheme"] = []string{m.scheme}
	for k, v := range m.header {
		lk := strings.ToLower(k)
		hm[lk] = append(hm[lk], v...)
	}
	if len(m.body) > 0 {
		hm["content-length"] = []string{strconv.Itoa(len(m.body))}
	}
	return extproc.HeaderMap(hm)
}

// mutate applies a processor's header mutation to the request, with Envoy's
// default mutation rules: :path may change (the route is matched after the
// extensions, so a new path routes anew, which is clear_route_cache's effect);
// :method, :authority, :scheme, host and x-envoy-* may not, and are ignored, as
// are pseudo headers in remove_headers; content-length is the gateway's to set.
// An invalid name or value is an error, as in Envoy, and counts as a processor
// failure.
func (m *message) mutate(hm *extprocv3.HeaderMutation) error {
	if hm == nil {
		return nil
	}
	for _, name := range hm.GetRemoveHeaders() {
		lk := strings.ToLower(name)
		if !validHeaderName(lk) {
			return fmt.Errorf("invalid header name %q in remove_headers", name)
		}
		if protectedRequestHeader(lk) {
			continue
		}
		m.header.Del(lk)
	}
	for _, opt := range hm.GetSetHeaders() {
		key, val, ok := optionHeader(opt)
		if !ok {
			continue
		}
		if !validHeaderName(key) || !validHeaderValue(val) {
			return fmt.Errorf("invalid header %q in set_headers", key)
		}
		if key == ":path" {
			if val == "" || !strings.HasPrefix(val, "/") {
				return fmt.Errorf("invalid :path %q", val)
			}
			m.path = val
			continue
		}
		if protectedRequestHeader(key) {
			continue
		}
		applySet(m.header, key, val, opt)
	}
	return nil
}

func protectedRequestHeader(lk string) bool {
	return strings.HasPrefix(lk, ":") || lk == "host" || lk == "content-length" ||
		lk == "transfer-encoding" || strings.HasPrefix(lk, "x-envoy-")
}

// answer is the response as the processors and the client see it.
type answer struct {
	status int
	header http.Header
	// noBody is set when the response has no body (HEAD, 204, 304, length 0):
	// the headers message then ends the stream and no body phase follows.
	noBody bool
	// trailer, when set, returns the upstream trailers once the body is read.
	trailer func() http.Header
}

func (a *answer) headerMap() *corev3.HeaderMap {
	hm := make(map[string][]string, len(a.header)+1)
	hm[":status"] = []string{strconv.Itoa(a.status)}
	for k, v := range a.header {
		lk := strings.ToLower(k)
		hm[lk] = append(hm[lk], v...)
	}
	return extproc.HeaderMap(hm)
}

// mutate applies a header mutation to a response: :status may be set to a
// valid status (Envoy accepts 200 and above), other pseudo headers and
// x-envoy-* are ignored.
func (a *answer) mutate(hm *extprocv3.HeaderMutation) error {
	if hm == nil {
		return nil
	}
	for _, name := range hm.GetRemoveHeaders() {
		lk := strings.ToLower(name)
		if !validHeaderName(lk) {
			return fmt.Errorf("invalid header name %q in remove_headers", name)
		}
		if strings.HasPrefix(lk, ":") || strings.HasPrefix(lk, "x-envoy-") {
			continue
		}
		a.header.Del(lk)
	}
	for _, opt := range hm.GetSetHeaders() {
		key, val, ok := optionHeader(opt)
		if !ok {
			continue
		}
		if !validHeaderName(key) || !validHeaderValue(val) {
			return fmt.Errorf("invalid header %q in set_headers", key)
		}
		if key == ":status" {
			if code, err := strconv.Atoi(val); err == nil && code >= 200 && code <= 599 {
				a.status = code
			}
			continue
		}
		if strings.HasPrefix(key, ":") || strings.HasPrefix(key, "x-envoy-") || key == "transfer-encoding" {
			continue
		}
		applySet(a.header, key, val, opt)
	}
	return nil
}

func optionHeader(opt *corev3.HeaderValueOption) (key, val string, ok bool) {
	hv := opt.GetHeader()
	if hv == nil {
		return "", "", false
	}
	val = string(hv.GetRawValue())
	if val == "" {
		val = hv.GetValue()
	}
	return strings.ToLower(hv.GetKey()), val, true
}

// applySet applies one set_headers entry as Envoy's ext_proc filter does: a
// non-default append_action rules; with the default one the deprecated
// `append` flag decides, and when that is unset too the header is overwritten
// (ext_proc's default is to replace, unlike the router's).
func applySet(h http.Header, key, val string, opt *corev3.HeaderValueOption) {
	action := opt.GetAppendAction()
	if action == corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD && !opt.GetAppend().GetValue() {
		action = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
	}
	_, present := h[http.CanonicalHeaderKey(key)]
	switch action {
	case corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD:
		h.Add(key, val)
	case corev3.HeaderValueOption_ADD_IF_ABSENT:
		if !present {
			h.Add(key, val)
		}
	case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
		if present {
			h.Set(key, val)
		}
	default: // OVERWRITE_IF_EXISTS_OR_ADD
		h.Set(key, val)
	}
}

// mutateBody applies a body mutation to a buffered body or one chunk.
func mutateBody(orig []byte, bm *extprocv3.BodyMutation) []byte {
	switch m := bm.GetMutation().(type) {
	case *extprocv3.BodyMutation_Body:
		return m.Body
	case *extprocv3.BodyMutation_ClearBody:
		if m.ClearBody {
			return nil
		}
	case *extprocv3.BodyMutation_StreamedResponse:
		return m.StreamedResponse.GetBody()
	}
	return orig
}

// validToken reports whether s is an RFC 9110 token (methods, header names).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

// validHeaderName accepts tokens and the pseudo headers Envoy uses.
func validHeaderName(s string) bool {
	if strings.HasPrefix(s, ":") {
		return validToken(s[1:])
	}
	return validToken(s)
}

func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\r' || c == '\n' || c == 0 {
			return false
		}
	}
	return true
}
