package apigee

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	extprocfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/gatecheck/gatecheck/fakes/apigee/policy"
	"github.com/gatecheck/gatecheck/internal/extproc"
)

// Identity headers the runtime adds to an allowed request, from the flow
// variables the verifying policy set.
var identityHeaders = map[string]string{
	"x-apigee-app":       policy.VarIdentityApp,
	"x-apigee-developer": policy.VarIdentityDeveloper,
	"x-apigee-product":   policy.VarIdentityProduct,
}

// stream is the state of one ext_proc stream. The protocol order is Envoy's:
// request headers → request body (when there is one) → request trailers →
// response headers → response body → response trailers. The request flow runs
// once the request is whole: on the headers when they end the stream, else on
// the last body message.
type stream struct {
	rt      *Runtime
	msg     *policy.Message
	trace   *Trace
	rawPath string // :path as the gateway sent it, query included

	requestDone bool
	denied      bool

	respBuf   []byte
	truncated bool
	finished  bool

	// Response filters (policy.ResponseFilter) of this answer, in flow
	// order; buffered says the gateway was asked to buffer the answer;
	// blocked says a filter refused a streamed answer, whose rest is dropped.
	filters    []*activeFilter
	filtered   map[int]bool // indexes in flow.Response of the policies filtering
	filterBase map[string]string
	buffered   bool
	blocked    bool
	respFault  *policy.Fault
}

// activeFilter is one policy filtering the answer.
type activeFilter struct {
	p       policy.Policy
	f       policy.ChunkFilter
	spent   time.Duration
	outcome string
}

func (r *Runtime) newStream() *stream {
	return &stream{rt: r, msg: &policy.Message{Vars: policy.NewVars()}}
}

func (s *stream) Process(ctx context.Context, req *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error) {
	switch v := req.GetRequest().(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		return s.requestHeaders(ctx, req, v.RequestHeaders), nil
	case *extprocv3.ProcessingRequest_RequestBody:
		return s.requestBody(ctx, v.RequestBody), nil
	case *extprocv3.ProcessingRequest_RequestTrailers:
		return []*extprocv3.ProcessingResponse{{Response: &extprocv3.ProcessingResponse_RequestTrailers{RequestTrailers: &extprocv3.TrailersResponse{}}}}, nil
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		return s.responseHeaders(ctx, v.ResponseHeaders), nil
	case *extprocv3.ProcessingRequest_ResponseBody:
		return s.responseBody(ctx, v.ResponseBody), nil
	case *extprocv3.ProcessingRequest_ResponseTrailers:
		s.finish(ctx)
		return []*extprocv3.ProcessingResponse{{Response: &extprocv3.ProcessingResponse_ResponseTrailers{ResponseTrailers: &extprocv3.TrailersResponse{}}}}, nil
	}
	// An unknown message kind: answer nothing rather than guess; Envoy never
	// sends one.
	return nil, nil
}

func (s *stream) requestHeaders(ctx context.Context, req *extprocv3.ProcessingRequest, h *extprocv3.HttpHeaders) []*extprocv3.ProcessingResponse {
	m := s.msg
	m.Phase = policy.Request
	m.Header = http.Header{}
	for k, vs := range extproc.Headers(h.GetHeaders()) {
		if strings.HasPrefix(k, ":") {
			continue
		}
		for _, v := range vs {
			m.Header.Add(k, v)
		}
	}
	hv := func(n string) string { v, _ := extproc.HeaderValue(h.GetHeaders(), n); return v }
	m.Method = hv(":method")
	s.rawPath = hv(":path")
	m.Path, m.RawQuery, _ = strings.Cut(s.rawPath, "?")
	if p, err := url.PathUnescape(m.Path); err == nil {
		m.Path = p
	}
	m.ClientIP = clientIP(req, m.Header)
	s.trace = &Trace{ID: s.rt.ids(), Time: s.rt.clock.Now(), Flow: s.rt.flow.Name, Method: m.Method, Path: m.Path}
	if h.GetEndOfStream() {
		return s.decide(ctx, true)
	}
	// The decision needs the body (the model a request names is part of
	// authorisation), so carry on and decide on the last body message.
	return []*extprocv3.ProcessingResponse{extproc.ContinueRequestHeaders(nil)}
}

// clientIP is the client's address: the last X-Forwarded-For entry — the
// one the gateway appended for the connection it accepted (entries before it
// came from the client and may be forged, as Envoy's xff_num_trusted_hops 0
// has it) — else the source address Envoy reports in its attributes.
func clientIP(req *extprocv3.ProcessingRequest, h http.Header) string {
	if xff := h.Values("x-forwarded-for"); len(xff) > 0 {
		last := xff[len(xff)-1]
		if i := strings.LastIndexByte(last, ','); i >= 0 {
			last = last[i+1:]
		}
		if ip := strings.TrimSpace(last); ip != "" {
			return ip
		}
	}
	if attrs, ok := req.GetAttributes()["envoy.filters.http.ext_proc"]; ok {
		if v, ok := attrs.GetFields()["source.address"]; ok {
			if host, _, err := net.SplitHostPort(v.GetStringValue()); err == nil {
				return host
			}
			return v.GetStringValue()
		}
	}
	return ""
}

func (s *stream) requestBody(ctx context.Context, b *extprocv3.HttpBody) []*extprocv3.ProcessingResponse {
	if s.trace == nil || s.requestDone {
		return []*extprocv3.ProcessingResponse{extproc.ContinueRequestBody()}
	}
	s.msg.Body = append(s.msg.Body, b.GetBody()...)
	if !b.GetEndOfStream() {
		// STREAMED: each chunk is answered as it comes; the decision waits
		// for the last one.
		return []*extprocv3.ProcessingResponse{extproc.ContinueRequestBody()}
	}
	return s.decide(ctx, false)
}

// decide runs the request flow and answers: on the headers message for a
// body-less request, else on the body message.
func (s *stream) decide(ctx context.Context, onHeaders bool) []*extprocv3.ProcessingResponse {
	s.requestDone = true
	fault, err := s.rt.run(ctx, "request", s.rt.flow.Request, s.msg, s.trace)
	if err != nil {
		s.rt.log.Error("request flow failed", "flow", s.rt.flow.Name, "trace", s.trace.ID, "err", err)
		fault = internalFault("Unexpected error in the runtime: see trace " + s.trace.ID)
		s.trace.Outcome = "error"
	}
	if fault != nil {
		s.denied = true
		if s.trace.Outcome == "" {
			s.trace.Outcome = "denied"
		}
		s.trace.Status, s.trace.Fault = fault.Status, fault.Code
		s.rt.traces.add(s.trace)
		s.finished = true
		return []*extprocv3.ProcessingResponse{faultResponse(fault, s.trace.ID)}
	}
	if a := s.msg.Answer; a != nil {
		// A policy made the whole reply (OAuthV2 GenerateAccessToken).
		s.denied = true
		s.trace.Outcome, s.trace.Status = "answered", a.Status
		s.rt.traces.add(s.trace)
		s.finished = true
		h := map[string]string{TraceHeader: s.trace.ID}
		for k := range a.Header {
			h[strings.ToLower(k)] = a.Header.Get(k)
		}
		return []*extprocv3.ProcessingResponse{extproc.ImmediateResponse(a.Status, h, a.Body)}
	}
	s.trace.Outcome = "allowed"
	mut := s.allowMutation()
	if onHeaders {
		return []*extprocv3.ProcessingResponse{extproc.ContinueRequestHeaders(mut)}
	}
	return []*extprocv3.ProcessingResponse{{Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{
		Response: &extprocv3.CommonResponse{HeaderMutation: mut},
	}}}}
}

// allowMutation is what an allowed request's headers become: identity headers
// set from the flow, the credential removed, and x-apigee-* headers the client
// sent dropped so the backend can trust the ones it sees.
func (s *stream) allowMutation() *extprocv3.HeaderMutation {
	set := map[string]string{}
	for h, v := range identityHeaders {
		if val, ok := s.msg.Vars.Get(v); ok && val != "" {
			set[h] = val
		}
	}
	var remove []string
	for k := range s.msg.Header {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "x-apigee-") {
			if _, ours := set[lk]; !ours {
				remove = append(remove, lk)
			}
		}
	}
	if h, ok := s.msg.Vars.Get(policy.VarCredentialHeader); ok && h != "" {
		remove = append(remove, strings.ToLower(h))
	}
	// A key sent as a query parameter leaves the request too: the path the
	// backend sees is rewritten without it.
	if q, ok := s.msg.Vars.Get(policy.VarCredentialQueryParam); ok && q != "" {
		if p, changed := withoutQueryParam(s.rawPath, q); changed {
			set[":path"] = p
		}
	}
	return extproc.SetHeaders(set, dedupe(remove)...)
}

// withoutQueryParam removes every occurrence of the query parameter name
// from a request target (path?query), keeping the rest as it was sent.
func withoutQueryParam(target, name string) (string, bool) {
	path, query, ok := strings.Cut(target, "?")
	if !ok {
		return target, false
	}
	var kept []string
	changed := false
	for _, pair := range strings.Split(query, "&") {
		k, _, _ := strings.Cut(pair, "=")
		if key, err := url.QueryUnescape(k); err == nil && key == name {
			changed = true
			continue
		}
		kept = append(kept, pair)
	}
	if !changed {
		return target, false
	}
	if len(kept) == 0 {
		return path, true
	}
	return path + "?" + strings.Join(kept, "&"), true
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	out := in[:0]
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func (s *stream) responseHeaders(ctx context.Context, h *extprocv3.HttpHeaders) []*extprocv3.ProcessingResponse {
	m := s.msg
	m.Phase = policy.Response
	m.ResponseHeader = http.Header{}
	for k, vs := range extproc.Headers(h.GetHeaders()) {
		if k == ":status" {
			if len(vs) > 0 {
				m.Status, _ = strconv.Atoi(vs[0])
			}
			continue
		}
		for _, v := range vs {
			m.ResponseHeader.Add(k, v)
		}
	}
	if s.trace != nil {
		s.trace.Status = m.Status
	}
	mut := &extprocv3.HeaderMutation{}
	if s.trace != nil {
		mut = extproc.SetHeaders(map[string]string{TraceHeader: s.trace.ID})
	}
	if h.GetEndOfStream() {
		s.finish(ctx)
		return []*extprocv3.ProcessingResponse{extproc.ContinueResponseHeaders(mut)}
	}
	s.startFilters()
	resp := extproc.ContinueResponseHeaders(mut)
	if len(s.filters) > 0 {
		// The filters may change the body's length.
		mut.RemoveHeaders = append(mut.RemoveHeaders, "content-length")
		if !policy.StreamingResponse(m.ResponseHeader.Get("Content-Type")) {
			// A whole answer is filtered whole: ask the gateway to buffer
			// it, so a refusal can still replace it.
			s.buffered = true
			resp.ModeOverride = &extprocfilter.ProcessingMode{ResponseBodyMode: extprocfilter.ProcessingMode_BUFFERED}
		}
	}
	return []*extprocv3.ProcessingResponse{resp}
}

// startFilters asks each response policy for a filter of this answer.
func (s *stream) startFilters() {
	if s.trace == nil || s.finished {
		return
	}
	for i, p := range s.rt.flow.Response {
		rf, ok := p.(policy.ResponseFilter)
		if !ok {
			continue
		}
		f, ok := rf.NewResponseFilter(s.msg)
		if !ok {
			continue
		}
		if s.filterBase == nil {
			s.filterBase = snapshotVars(s.msg.Vars)
			s.filtered = map[int]bool{}
		}
		s.filtered[i] = true
		s.filters = append(s.filters, &activeFilter{p: p, f: f, outcome: "ok"})
	}
}

// filterChunk runs a piece of the answer through the filters in order, each
// one's output feeding the next; at the end of the body each is closed in
// turn. On a fault the filters after the refusing one still see (and are
// closed on) what precedes it; the fault is returned.
func (s *stream) filterChunk(chunk []byte, eos bool) ([]byte, *policy.Fault) {
	out := chunk
	for i, af := range s.filters {
		start := s.rt.clock.Now()
		o, fault, err := af.f.Write(out)
		if fault == nil && err == nil && eos {
			var c []byte
			c, fault, err = af.f.Close()
			o = append(o, c...)
		}
		af.spent += s.rt.clock.Now().Sub(start)
		out = o
		if err != nil {
			s.rt.log.Error("response filter failed", "flow", s.rt.flow.Name, "trace", s.trace.ID, "policy", af.p.Name(), "err", err)
			af.outcome = "error: " + err.Error()
			fault = internalFault("Unexpected error in the runtime: see trace " + s.trace.ID)
		} else if fault != nil {
			af.outcome = "fault " + fault.Code
		}
		if fault != nil {
			for _, later := range s.filters[i+1:] {
				o, _, _ := later.f.Write(out)
				c, _, _ := later.f.Close()
				out = append(o, c...)
			}
			return out, fault
		}
	}
	return out, nil
}

func (s *stream) responseBody(ctx context.Context, b *extprocv3.HttpBody) []*extprocv3.ProcessingResponse {
	// The response flow (token counting) reads the answer as the backend
	// sent it, whatever the filters make of it.
	if !s.truncated {
		if len(s.respBuf)+len(b.GetBody()) > s.rt.maxBuf {
			s.truncated = true
		} else {
			s.respBuf = append(s.respBuf, b.GetBody()...)
		}
	}
	eos := b.GetEndOfStream()
	if len(s.filters) == 0 {
		if eos {
			s.finish(ctx)
		}
		return []*extprocv3.ProcessingResponse{extproc.ContinueResponseBody()}
	}
	if s.blocked {
		// A filter refused the stream: nothing more goes out.
		if eos {
			s.finish(ctx)
		}
		return []*extprocv3.ProcessingResponse{bodyReplacement(nil)}
	}
	out, fault := s.filterChunk(b.GetBody(), eos)
	if fault != nil {
		s.respFault = fault
		s.blocked = true
		if s.buffered {
			// The headers are still held: the fault replaces the answer.
			s.finish(ctx)
			return []*extprocv3.ProcessingResponse{faultResponse(fault, s.trace.ID)}
		}
		// The headers are gone: end the stream cleanly with what was safe,
		// then the fault in the stream's framing.
		out = append(out, policy.StreamErrorFrame(s.msg.ResponseHeader.Get("Content-Type"), fault)...)
		if eos {
			s.finish(ctx)
		}
		return []*extprocv3.ProcessingResponse{bodyReplacement(out)}
	}
	if eos {
		s.finish(ctx)
	}
	if bytes.Equal(out, b.GetBody()) {
		return []*extprocv3.ProcessingResponse{extproc.ContinueResponseBody()}
	}
	return []*extprocv3.ProcessingResponse{bodyReplacement(out)}
}

// bodyReplacement answers a response body message with a new body (or
// chunk).
func bodyReplacement(body []byte) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{
		Response: &extprocv3.CommonResponse{BodyMutation: extproc.ReplaceBody(body)},
	}}}
}

// finish runs the response flow once the answer is complete, and files the
// trace. A fault here cannot change an answer already sent; it is recorded.
func (s *stream) finish(ctx context.Context) {
	if s.finished || s.trace == nil {
		return
	}
	s.finished = true
	s.msg.ResponseBody = s.respBuf
	if s.truncated {
		s.msg.Vars.Set("gatecheck.response.truncated", "true")
	}
	// The filters have run on the answer as it went out: their steps come
	// first, and the rest of the response flow runs without them.
	reported := map[string]bool{}
	for _, af := range s.filters {
		step := Step{Phase: "response", Policy: af.p.Name(), Kind: af.p.Kind(), Outcome: af.outcome, Duration: af.spent}
		for n, v := range changedVars(s.filterBase, s.msg.Vars, secrets(s.msg)) {
			if !reported[n] && strings.Contains(n, "."+af.p.Name()+".") {
				reported[n] = true
				if step.Vars == nil {
					step.Vars = map[string]string{}
				}
				step.Vars[n] = v
			}
		}
		s.trace.Steps = append(s.trace.Steps, step)
	}
	if f := s.respFault; f != nil {
		s.trace.Fault = f.Code
		if s.buffered {
			s.trace.Outcome, s.trace.Status = "denied", f.Status
		}
	}
	rest := s.rt.flow.Response
	if len(s.filtered) > 0 {
		rest = make([]policy.Policy, 0, len(s.rt.flow.Response))
		for i, p := range s.rt.flow.Response {
			if !s.filtered[i] {
				rest = append(rest, p)
			}
		}
	}
	fault, err := s.rt.run(ctx, "response", rest, s.msg, s.trace)
	switch {
	case err != nil:
		s.rt.log.Error("response flow failed", "flow", s.rt.flow.Name, "trace", s.trace.ID, "err", err)
	case fault != nil:
		s.rt.log.Debug("response flow fault after the answer was sent", "trace", s.trace.ID, "code", fault.Code)
	}
	s.rt.traces.add(s.trace)
}
