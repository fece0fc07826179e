// Package gateway is gatecheck's Gateway API data plane: the part of the GKE
// Inference Gateway that routes requests, calls ext_proc processors the way
// Envoy does, and streams answers back without buffering them.
//
// # The request path
//
// A Gateway serves the Gateway objects of a compiled manifests.Snapshot; Handler
// returns the http.Handler of one of them. For each request:
//
//  1. The request is read: hop-by-hop headers are dropped, X-Forwarded-For and
//     X-Forwarded-Proto are added, an x-request-id is made when missing, and
//     the body is read whole (up to the Gateway's body limit, 32 MiB by
//     default, else 413; see "Limits and request smuggling"). LLM requests
//     are small, processors need the whole body, and a buffered body can be
//     re-sent to the next endpoint when one refuses the connection.
//  2. Extensions (Gateway.Extensions, for example the Apigee runtime attached
//     by an APIMExtensionPolicy) run in order, each over its own ext_proc
//     stream, before routing, as Envoy's ext_proc filters run before its
//     router: they see every request, including ones no route matches. They may
//     mutate headers (including :path) and the body, or end the request with an
//     immediate response; later processors are then not called.
//  3. The route is matched on the request as the extensions left it (the effect
//     of clear_route_cache): listener and route hostnames, path (Exact,
//     PathPrefix on segment boundaries, RegularExpression), headers, query
//     parameters and method; the most specific hostname first, then the order
//     of Gateway.Rules. No match is 404. The rule's timeouts.request bounds the
//     whole request from its arrival (504 when it expires).
//  4. A backend is chosen by weight (all weights zero: 500). A Service is
//     proxied to one of its addresses, round-robin, moving to the next when one
//     refuses the connection. An InferencePool with an endpoint picker asks the
//     picker over ext_proc; the picker answers with
//     x-gateway-destination-endpoint in dynamic metadata envoy.lb (read first)
//     or as a request header: a comma-separated list tried in order while
//     endpoints refuse connections. A pool without a picker gets a random ready
//     endpoint. The rule's RequestHeaderModifier applies last, just before the
//     request goes upstream.
//  5. The answer flows back through the response phases of the processors in
//     reverse (the picker first, then the extensions from last to first), and
//     to the client chunk by chunk, flushed after every chunk, so
//     text/event-stream and application/x-ndjson arrive as produced. Responses from pools
//     carry x-gateway-destination-endpoint-served. The gateway's own error
//     answers and immediate responses go back through the response phases of
//     the processors that saw the request, as Envoy's local replies do.
//
// Errors become answers in one place, with a small JSON body
// {"error":{"status":...,"reason":"...","message":"..."}}; a panic is recovered
// and answered 500. A failure after the headers went out cuts the connection
// (http.ErrAbortHandler, as httputil.ReverseProxy does) so the client never
// mistakes a broken stream for a complete one.
//
// # Limits and request smuggling
//
// Each Gateway has payload and protocol limits (manifests.Limits), set by
// annotations on the Gateway object because Gateway API has no fields for
// them (Envoy Gateway sets the same things in a ClientTrafficPolicy attached
// to the Gateway, and the body limit in a BackendTrafficPolicy's
// requestBuffer). An unknown gatecheck.dev/ annotation is a compile error.
//
//	annotation                               default  above it
//	gatecheck.dev/max-request-body-bytes     32Mi     413 PayloadTooLarge
//	gatecheck.dev/max-request-headers-bytes  64Ki     431 RequestHeaderFieldsTooLarge
//	gatecheck.dev/max-request-headers        100      431 RequestHeaderFieldsTooLarge
//	gatecheck.dev/max-url-length             8192     414 URITooLong
//
// The body limit is also the most the gateway buffers, so it can only be
// lowered. A Content-Length above it is answered before a byte of the body is
// read (a client waiting for 100 Continue never sends it); a chunked body is
// answered once it grows past it. Header bytes are the names and values
// (without surrounding whitespace) of every header line, Host included; the URL
// is the request target as sent, query included.
//
// Served with Gateway.Server on Gateway.Listener (as the simulation and
// `gatecheck serve gateway` do), every request head on every connection is
// checked on the wire, before net/http parses it. That is needed because
// net/http normalises some request smuggling shapes away (it drops a
// Content-Length beside Transfer-Encoding: chunked, joins folded lines,
// accepts repeated equal Content-Lengths) and answers others with its own
// plain text. These are refused with 400, the JSON error and Connection: close:
//
//   - Content-Length and Transfer-Encoding together (ConflictingFraming);
//   - Transfer-Encoding other than chunked ("chunked, identity", "xchunked",
//     "identity"), repeated, or on an HTTP/1.0 request
//     (InvalidTransferEncoding). The value is compared without surrounding
//     whitespace and, as RFC 9112 says of coding names, case-insensitively;
//   - Content-Length repeated, even with equal values, or not plain decimal
//     digits ("+1", "0x1", "1, 1", empty, beyond int64) (InvalidContentLength).
//     Envoy and net/http accept equal copies; only a confused or hostile
//     sender repeats it, and refusing every copy leaves nothing to reconcile;
//   - a header line starting with whitespace (obsolete line folding),
//     whitespace between a header name and its colon, a line without a colon
//     or with a name that is not a token, a control byte in a value
//     (InvalidHeader);
//   - a head line that does not end in CRLF (a bare LF) or holds a bare CR, a
//     missing (HTTP/1.1, except CONNECT) or repeated Host, a malformed
//     request line (BadRequest); an HTTP version other than 1.0 and 1.1 is
//     505.
//
// The size limits are checked on the raw head too, with the same counting, so
// net/http's own header limit never answers first (Server sets MaxHeaderBytes
// above any head the check lets through). A head that outgrows them is
// refused without waiting for its end: a request line longer than the URL
// limit plus 1 KiB is 414, a head longer than the request line allowance plus
// the header bytes plus 8 bytes a header line plus 1 KiB is 431.
//
// How the check works: the listener wraps each connection, and bytes reach
// net/http only once checked. A head is held until its empty line and checked
// whole; a body is passed on as it arrives (read straight into net/http's
// buffer and scanned in place) while its framing is followed, a Content-Length
// count or the chunked framing read exactly as net/http reads it. So the next
// head of a keep-alive or pipelined connection is found precisely where
// net/http will look for it; there is no guessing at what looks like a request
// line, and a body that holds text shaped like a request head is just a body.
// The check lets through only heads net/http reads the same way, so the two
// cannot disagree about where a request ends; FuzzWireAgreement holds it to
// that by parsing the same bytes with and without it. A later request on a
// connection is looked at only when net/http asks for bytes past the current
// one, so a bad request never disturbs the ones before it.
//
// A refused head is never seen by net/http: the check puts a small stand-in
// request in its place (carrying a secret made by New), which net/http hands
// to the handler in order, after the answers to earlier requests on the
// connection; the handler answers the refusal, without calling any processor,
// and the connection closes, lingering up to half a second so the client can
// read the answer before any reset. A chunked body whose framing breaks is
// passed on up to its first bad byte, then with a byte net/http cannot accept
// there: the body read fails, the request is answered 400 (BadRequest) and the
// connection closes. The check is stricter than net/http in one place: a
// trailer line must end in CRLF too; a trailer that breaks that closes the
// connection without an answer.
//
// Limits of the check: it speaks HTTP/1.0 and 1.1 in clear text, as the
// gateway's listeners do (no TLS, no h2c); it does not follow a connection
// that switches protocols (the gateway never answers 101). It costs a copy of
// each head and no allocation per request. On a plain http.Server (Handler
// alone) the size limits still hold, checked on the parsed request, but the
// smuggling shapes are left to net/http.
//
// # Processing modes
//
// Endpoint pickers use GIE's reference Envoy configuration: request headers
// SEND, request body FULL_DUPLEX_STREAMED, response headers SEND, response
// body FULL_DUPLEX_STREAMED. The body goes to the picker without waiting; the
// picker holds its headers answer (with the destination) until it has the whole
// body, then sends it followed by the streamed body. Response chunks stream to
// the picker as they come from upstream and each chunk it returns is written
// to the client at once. Envoy arms no message timer in this mode; the gateway
// bounds the answers the picker certainly owes (the headers answers, and the
// rest of the body once its end has been sent) by Options.PickerTimeout.
//
// Extensions use request headers SEND, request body BUFFERED, response headers
// SEND, response body STREAMED: each response chunk is sent and answered before
// it is written on, so an extension can redact a streamed answer while it
// streams. A mode_override in the answer to the request headers (or, for the
// response modes, to the response headers) is honoured: header modes left
// DEFAULT keep their value, body modes replace theirs, and FULL_DUPLEX_STREAMED
// can be neither entered nor left. Each message exchange with an extension is
// bounded by its Timeout (default 1s, the APIMExtensionPolicy default).
// Trailers are never sent to processors.
//
// Header mutations follow Envoy's ext_proc rules: set_headers honour
// append_action (with the default action the deprecated append flag decides,
// and unset means overwrite), remove_headers remove; :path may change, while
// :method, :authority, :scheme, host and x-envoy-* are protected; :status may
// change a response's status. Body mutations replace or clear the body or the
// chunk.
//
// # Failures
//
// A processor that cannot be reached, breaks its stream or the protocol, or
// misses its timeout fails the request unless it fails open. Extensions answer
// 500, or 504 when the timeout fired (Envoy's failure_mode_allow=false). A
// picker under FailClose answers 503, GIE's answer for an unavailable picker
// (Envoy alone would give 500); under FailOpen the request goes to a random
// ready endpoint of the pool. A failing-open processor is dropped for the rest
// of the request and logged once. A processor that closes its stream with an OK
// status is done, not failed: the request carries on without it, as in Envoy.
//
// # Choices where Envoy or GIE leave room
//
//   - The client's own x-gateway-destination-endpoint header is dropped before
//     the picker is asked, so only the picker chooses. The picker's header
//     stays on the request going upstream, as Envoy leaves it (harmless, and a
//     conformance echo server may show it).
//   - A picker that names no valid endpoint is treated like an unavailable
//     one: FailOpen picks at random, FailClose answers 503.
//   - Gateway API's route timeout and the processors' message timeouts run on
//     the wall clock, whatever Options.Clock says.
//   - The snapshot does not say which listener a route attached to, so a rule
//     must match a listener hostname and its own hostnames (the intersection
//     the spec asks for when listeners agree).
//
// Logs are structured (log/slog) at debug level; x-api-key, authorization and
// similar headers, and apikey-like query parameters, are redacted.
package gateway
