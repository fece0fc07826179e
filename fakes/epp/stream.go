package epp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gatecheck/gatecheck/internal/extproc"
)

const (
	// maxRequestBody bounds the request body the picker buffers; a larger
	// one is answered with 413.
	maxRequestBody = 16 << 20
	// bodyChunkBytes is the largest streamed body mutation sent back, as
	// GIE does to stay under Envoy's gRPC message limits.
	bodyChunkBytes = 62000
)

// bodyMode is an ext_proc body send mode.
type bodyMode = filterv3.ProcessingMode_BodySendMode

// requestPhase is where a stream is in the protocol. Envoy's order is
// request headers → request body → request trailers → response headers →
// response body → response trailers; the picker answers the request headers
// only once it has the body (in full duplex) and stops after an immediate
// response.
type requestPhase int

const (
	awaitingHeaders requestPhase = iota // nothing yet: request headers come first
	readingBody                         // headers seen, body (and trailers) follow
	forwarded                           // destination answered; passing the rest through
	ended                               // an immediate response ended the request
)

// requestProcessor handles the messages of one stream (one HTTP request).
// Its methods are called from one goroutine, the stream's.
type requestProcessor struct {
	s          *Server
	configured bool
	reqMode    bodyMode
	respMode   bodyMode
	waitless   bool // send_body_without_waiting_for_header_response
	phase      requestPhase

	requestID string
	objective string
	subset    []string
	body      []byte

	picked  string
	release func()
}

func newRequestProcessor(s *Server) *requestProcessor {
	return &requestProcessor{
		s:        s,
		reqMode:  filterv3.ProcessingMode_FULL_DUPLEX_STREAMED,
		respMode: filterv3.ProcessingMode_FULL_DUPLEX_STREAMED,
	}
}

// finish ends the request's in-flight count; called when the response ends
// and again, harmlessly, when the stream ends.
func (p *requestProcessor) finish() {
	if p.release != nil {
		p.release()
		p.release = nil
	}
}

// Process implements extproc.Processor.
func (p *requestProcessor) Process(_ context.Context, req *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error) {
	if !p.configured {
		p.configured = true
		if pc := req.GetProtocolConfig(); pc != nil {
			p.reqMode, p.respMode = pc.GetRequestBodyMode(), pc.GetResponseBodyMode()
			p.waitless = pc.GetSendBodyWithoutWaitingForHeaderResponse()
		}
	}
	if p.subset == nil && req.GetMetadataContext() != nil {
		p.subset = subsetHint(req.GetMetadataContext())
	}
	if p.phase == ended {
		return nil, nil // Envoy sends nothing after an immediate response; ignore strays
	}
	switch v := req.GetRequest().(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		return p.requestHeaders(v.RequestHeaders)
	case *extprocv3.ProcessingRequest_RequestBody:
		return p.requestBody(v.RequestBody)
	case *extprocv3.ProcessingRequest_RequestTrailers:
		return p.requestTrailers()
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		return p.responseHeaders(v.ResponseHeaders)
	case *extprocv3.ProcessingRequest_ResponseBody:
		return p.responseBody(v.ResponseBody)
	case *extprocv3.ProcessingRequest_ResponseTrailers:
		p.finish()
		return one(&extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseTrailers{
			ResponseTrailers: &extprocv3.TrailersResponse{}}}), nil
	}
	return nil, status.Error(codes.InvalidArgument, "epp: ext_proc message without a known phase")
}

func one(r *extprocv3.ProcessingResponse) []*extprocv3.ProcessingResponse {
	return []*extprocv3.ProcessingResponse{r}
}

// requestHeaders: remember them; answer now only when no body will let us
// route on it (end_of_stream, or a body mode we cannot hold the headers for).
func (p *requestProcessor) requestHeaders(h *extprocv3.HttpHeaders) ([]*extprocv3.ProcessingResponse, error) {
	if p.phase != awaitingHeaders {
		return nil, status.Error(codes.FailedPrecondition, "epp: request headers received twice")
	}
	p.requestID, _ = extproc.HeaderValue(h.GetHeaders(), HeaderRequestID)
	p.objective, _ = extproc.HeaderValue(h.GetHeaders(), HeaderObjective)
	bodyless := h.GetEndOfStream()
	switch {
	case bodyless, p.reqMode == filterv3.ProcessingMode_STREAMED, p.reqMode == filterv3.ProcessingMode_NONE:
		// Body-less, or the body will not be held for us: route without it.
		return p.route(PickRequest{}, bodyless)
	case p.reqMode == filterv3.ProcessingMode_FULL_DUPLEX_STREAMED || p.waitless:
		p.phase = readingBody
		return nil, nil // held until the body is in
	default: // BUFFERED, BUFFERED_PARTIAL: Envoy waits for this answer before sending the body
		p.phase = readingBody
		return one(&extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{
			RequestHeaders: &extprocv3.HeadersResponse{Response: &extprocv3.CommonResponse{ClearRouteCache: true}},
		}}), nil
	}
}

func (p *requestProcessor) requestBody(b *extprocv3.HttpBody) ([]*extprocv3.ProcessingResponse, error) {
	switch p.phase {
	case awaitingHeaders:
		return nil, status.Error(codes.FailedPrecondition, "epp: request body before request headers")
	case forwarded: // routed at the headers (STREAMED): pass the body through
		if p.reqMode == filterv3.ProcessingMode_FULL_DUPLEX_STREAMED {
			return bodyResponses(b.GetBody(), b.GetEndOfStream()), nil
		}
		return one(extproc.ContinueRequestBody()), nil
	}
	if len(p.body)+len(b.GetBody()) > maxRequestBody {
		p.phase = ended
		return one(p.reject(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", maxRequestBody))), nil
	}
	p.body = append(p.body, b.GetBody()...)
	if p.reqMode == filterv3.ProcessingMode_FULL_DUPLEX_STREAMED && !b.GetEndOfStream() {
		return nil, nil
	}
	// Full duplex at end of stream, or the one BUFFERED(_PARTIAL) message.
	return p.routeBody(true)
}

func (p *requestProcessor) requestTrailers() ([]*extprocv3.ProcessingResponse, error) {
	trailers := &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestTrailers{
		RequestTrailers: &extprocv3.TrailersResponse{}}}
	if p.phase != readingBody {
		return one(trailers), nil
	}
	// Trailers end the body in full duplex: route on what came.
	resps, err := p.routeBody(false)
	if err != nil || p.phase == ended {
		return resps, err
	}
	return append(resps, trailers), nil
}

// routeBody parses the buffered body, picks and answers the held phases.
// eos says whether the body ended with end_of_stream (not with trailers).
func (p *requestProcessor) routeBody(eos bool) ([]*extprocv3.ProcessingResponse, error) {
	info, err := parseBody(p.body)
	if err != nil {
		p.phase = ended
		p.s.log.Info("request rejected", "request_id", p.requestID, "status", http.StatusBadRequest, "reason", err)
		return one(p.reject(http.StatusBadRequest, err.Error())), nil
	}
	return p.route(PickRequest{Model: info.model, Prompt: info.prompt}, eos)
}

// route picks for r and builds the answers for the phases held so far.
func (p *requestProcessor) route(r PickRequest, eos bool) ([]*extprocv3.ProcessingResponse, error) {
	r.RequestID, r.Objective, r.Subset = p.requestID, p.objective, p.subset
	ranked, err := p.s.schedule(&r)
	if err != nil {
		p.phase = ended
		p.s.log.Info("request rejected", "request_id", p.requestID, "model", r.Model, "status", http.StatusServiceUnavailable, "reason", err)
		return one(p.reject(http.StatusServiceUnavailable, p.unavailable(err))), nil
	}
	dest := strings.Join(p.s.destinations(ranked), ",")
	p.picked = ranked[0].addr
	p.release = ranked[0].assign()
	heldHeaders := p.phase == awaitingHeaders || p.reqMode == filterv3.ProcessingMode_FULL_DUPLEX_STREAMED || p.waitless
	bodySeen := p.phase == readingBody
	p.phase = forwarded
	md := extproc.Metadata(MetadataNamespace, map[string]string{HeaderDestination: dest})
	set := extproc.SetHeaders(map[string]string{HeaderDestination: dest})
	if !heldHeaders { // BUFFERED, headers already answered: the body answer routes
		return one(&extprocv3.ProcessingResponse{
			Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{
				Response: &extprocv3.CommonResponse{HeaderMutation: set, ClearRouteCache: true}}},
			DynamicMetadata: md,
		}), nil
	}
	resps := one(&extprocv3.ProcessingResponse{
		Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{
			Response: &extprocv3.CommonResponse{HeaderMutation: set, ClearRouteCache: true}}},
		DynamicMetadata: md,
	})
	switch {
	case !bodySeen:
	case p.reqMode == filterv3.ProcessingMode_FULL_DUPLEX_STREAMED:
		resps = append(resps, bodyResponses(p.body, eos)...)
	default:
		resps = append(resps, extproc.ContinueRequestBody())
	}
	p.body = nil
	return resps, nil
}

func (p *requestProcessor) unavailable(err error) string {
	if errors.Is(err, ErrSubsetUnavailable) {
		return fmt.Sprintf("no ready endpoint of inference pool %q in the subset hinted by the proxy", p.s.cfg.Pool)
	}
	return fmt.Sprintf("no ready endpoints in inference pool %q", p.s.cfg.Pool)
}

// bodyResponses streams body back unchanged in chunks of at most
// bodyChunkBytes, the last carrying eos.
func bodyResponses(body []byte, eos bool) []*extprocv3.ProcessingResponse {
	var out []*extprocv3.ProcessingResponse
	for {
		n := min(len(body), bodyChunkBytes)
		last := n == len(body)
		out = append(out, &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{
			RequestBody: &extprocv3.BodyResponse{Response: &extprocv3.CommonResponse{
				BodyMutation: extproc.StreamedBody(body[:n], last && eos)}}}})
		body = body[n:]
		if last {
			return out
		}
	}
}

func (p *requestProcessor) responseHeaders(h *extprocv3.HttpHeaders) ([]*extprocv3.ProcessingResponse, error) {
	var m *extprocv3.HeaderMutation
	if p.picked != "" {
		m = extproc.SetHeaders(map[string]string{HeaderServed: p.picked})
	}
	if h.GetEndOfStream() {
		p.finish()
	}
	return one(extproc.ContinueResponseHeaders(m)), nil
}

// responseBody passes each chunk through as it comes; never buffered.
func (p *requestProcessor) responseBody(b *extprocv3.HttpBody) ([]*extprocv3.ProcessingResponse, error) {
	if b.GetEndOfStream() {
		p.finish()
	}
	if p.respMode == filterv3.ProcessingMode_FULL_DUPLEX_STREAMED {
		return one(&extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{
			ResponseBody: &extprocv3.BodyResponse{Response: &extprocv3.CommonResponse{
				BodyMutation: extproc.StreamedBody(b.GetBody(), b.GetEndOfStream())}}}}), nil
	}
	return one(extproc.ContinueResponseBody()), nil
}

// reject is the one place errors become HTTP answers: 4xx as plain text (as
// GIE answers "model not found in request body"), 5xx as a small JSON error.
func (p *requestProcessor) reject(code int, msg string) *extprocv3.ProcessingResponse {
	if code < 500 {
		return extproc.ImmediateResponse(code, map[string]string{"content-type": "text/plain; charset=utf-8"}, []byte(msg))
	}
	var e struct {
		Error struct {
			Code    int    `json:"code"`
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	e.Error.Code, e.Error.Type, e.Error.Message = code, strings.ReplaceAll(http.StatusText(code), " ", ""), msg
	body, _ := json.Marshal(e)
	return extproc.ImmediateResponse(code, map[string]string{"content-type": "application/json"}, body)
}
