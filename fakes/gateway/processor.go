package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// processor is one ext_proc server in a request's chain: the Gateway's
// extensions in order, then the endpoint picker of the chosen pool.
type processor struct {
	name   string // for logs and errors: "extension apigee", "picker default/qwen-epp"
	reason string // JSON error reason prefix: "ExtensionUnavailable", "PickerUnavailable"
	addr   string // host:port of the ext_proc server; empty when it could not be resolved
	// resolveErr is why addr is empty.
	resolveErr error
	// mode is the configured processing mode (the filter's processing_mode).
	mode *extprocfilter.ProcessingMode
	// timeout bounds each wait for an answer the processor owes (Envoy's
	// message_timeout); zero means no bound.
	timeout time.Duration
	// failOpen is failure_mode_allow: on failure the request carries on as if
	// the processor were not there.
	failOpen bool
	// closedStatus is the status the client gets when the processor fails and
	// failOpen is false.
	closedStatus func(timedOut bool) int
}

// Processing modes. Header and trailer modes left DEFAULT mean SEND for
// headers and SKIP for trailers, as in Envoy. Trailers are never sent to a
// processor: HTTP/1.1 LLM clients and servers do not use them.
func extensionMode() *extprocfilter.ProcessingMode {
	return &extprocfilter.ProcessingMode{
		RequestHeaderMode:  extprocfilter.ProcessingMode_SEND,
		RequestBodyMode:    extprocfilter.ProcessingMode_BUFFERED,
		ResponseHeaderMode: extprocfilter.ProcessingMode_SEND,
		ResponseBodyMode:   extprocfilter.ProcessingMode_STREAMED,
	}
}

func pickerMode() *extprocfilter.ProcessingMode {
	return &extprocfilter.ProcessingMode{
		RequestHeaderMode:  extprocfilter.ProcessingMode_SEND,
		RequestBodyMode:    extprocfilter.ProcessingMode_FULL_DUPLEX_STREAMED,
		ResponseHeaderMode: extprocfilter.ProcessingMode_SEND,
		ResponseBodyMode:   extprocfilter.ProcessingMode_FULL_DUPLEX_STREAMED,
	}
}

const fullDuplex = extprocfilter.ProcessingMode_FULL_DUPLEX_STREAMED

// exchange drives one ext_proc stream, that is one request through one
// processor. It follows Envoy's state machine:
//
//	request headers → request body → (request trailers) → response headers → response body → (response trailers)
//
// A phase is skipped when its mode says so or when the message before it ended
// the stream (a request or response without a body). Every message sent gets
// exactly one answer of the matching kind, in order, before the next phase
// starts — except in FULL_DUPLEX_STREAMED body mode, where the body chunks go
// out without waiting, the processor may hold its headers answer until it has
// the whole body, and then sends the headers answer followed by any number of
// streamed body answers, the last one marked end_of_stream. An
// immediate_response may replace any answer and ends the request.
//
// Failures (unreachable, stream error, protocol error, message timeout) are
// handled inside the exchange: with failOpen the exchange goes dead (logged
// once) and the request carries on unprocessed; otherwise the methods return a
// *procError. A stream closed by the processor with an OK status is a
// decision, not a failure: the exchange goes dead in both modes, as in Envoy.
type exchange struct {
	p   *processor
	log *slog.Logger
	// reqCtx is the request's context: when it has ended (the route timeout,
	// the client going away), a failing stream is not the processor's fault.
	reqCtx context.Context
	stream extprocv3.ExternalProcessor_ProcessClient
	cancel context.CancelFunc
	box    *mailbox
	mode   *extprocfilter.ProcessingMode // effective mode, after mode_override

	sentFirst bool
	dead      bool
	// meta is the dynamic metadata the processor set, namespaces merged.
	meta *structpb.Struct
	// served is the endpoint the request went to, reported back to a picker.
	served string
}

// mailbox queues the processor's messages as a goroutine receives them. It is
// unbounded on purpose: the receiving side never stops reading, so a processor
// that streams answers while the gateway is still sending can never deadlock
// the stream through gRPC flow control.
type mailbox struct {
	mu     sync.Mutex
	queue  []*extprocv3.ProcessingResponse
	err    error
	notify chan struct{}
}

func (b *mailbox) put(m *extprocv3.ProcessingResponse, err error) {
	b.mu.Lock()
	if err != nil {
		b.err = err
	} else {
		b.queue = append(b.queue, m)
	}
	b.mu.Unlock()
	select {
	case b.notify <- struct{}{}:
	default:
	}
}

// take returns the next message, or the stream's terminal error once the queue
// is empty; ok is false when there is neither yet.
func (b *mailbox) take() (m *extprocv3.ProcessingResponse, err error, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.queue) > 0 {
		m = b.queue[0]
		b.queue[0] = nil
		b.queue = b.queue[1:]
		return m, nil, true
	}
	if b.err != nil {
		return nil, b.err, true
	}
	return nil, nil, false
}

// start opens the stream to p. Opening is bounded by p.timeout, since it is
// part of the first message exchange. A processor that cannot be reached
// yields a dead exchange when it fails open, and a *procError otherwise.
func (g *Gateway) start(ctx context.Context, p *processor, log *slog.Logger) (*exchange, error) {
	x := &exchange{p: p, log: log.With("processor", p.name), mode: proto.Clone(p.mode).(*extprocfilter.ProcessingMode)}
	if err := x.open(ctx, g); err != nil {
		if err := x.failed(err); err != nil {
			return nil, err
		}
	}
	return x, nil
}

func (x *exchange) open(ctx context.Context, g *Gateway) error {
	x.reqCtx = ctx
	if x.p.addr == "" {
		return &procError{p: x.p, err: fmt.Errorf("no address: %w", x.p.resolveErr)}
	}
	conn, err := g.conn(ctx, x.p.addr)
	if err != nil {
		return &procError{p: x.p, err: err}
	}
	sctx, cancel := context.WithCancel(ctx)
	type opened struct {
		s   extprocv3.ExternalProcessor_ProcessClient
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		s, err := extprocv3.NewExternalProcessorClient(conn).Process(sctx)
		ch <- opened{s, err}
	}()
	var timeout <-chan time.Time
	if x.p.timeout > 0 {
		t := time.NewTimer(x.p.timeout)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case o := <-ch:
		if o.err != nil {
			cancel()
			return &procError{p: x.p, err: o.err}
		}
		x.stream, x.cancel = o.s, cancel
	case <-timeout:
		cancel()
		return &procError{p: x.p, timedOut: true, err: errors.New("stream not open within the message timeout")}
	case <-ctx.Done():
		cancel()
		return ctx.Err()
	}
	x.box = &mailbox{notify: make(chan struct{}, 1)}
	go func() {
		for {
			m, err := x.stream.Recv()
			x.box.put(m, err)
			if err != nil {
				return
			}
		}
	}()
	return nil
}

// close ends the stream; the processor sees the request finish.
func (x *exchange) close() {
	if x.stream != nil {
		_ = x.stream.CloseSend()
		x.cancel()
	}
}

// failed decides what a failure means. Context errors (the route timeout, the
// client going away) are not the processor's and pass through. Otherwise the
// exchange goes dead and nil is returned when the processor fails open or
// closed its stream itself; a fail-closed failure is returned as a *procError.
func (x *exchange) failed(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		var pe *procError
		if !errors.As(err, &pe) {
			return err
		}
	}
	// The stream's own error (a gRPC status) does not wrap the context's:
	// ask the request's context whether it is the one that ended.
	if x.reqCtx != nil && x.reqCtx.Err() != nil {
		return x.reqCtx.Err()
	}
	if errors.Is(err, errProcessorDone) {
		// Not silent: a processor that ends its stream while it owes an
		// answer lets the request through, in both failure modes, as Envoy
		// does; it is worth a warning.
		x.log.Warn("gateway: processor closed its stream with an OK status; continuing without it")
		x.dead = true
		return nil
	}
	var pe *procError
	if !errors.As(err, &pe) {
		pe = &procError{p: x.p, err: err}
	}
	if x.p.failOpen {
		if !x.dead {
			x.log.Warn("gateway: processor failed; failing open for this request", "err", pe)
		}
		x.dead = true
		return nil
	}
	x.log.Warn("gateway: processor failed; failing closed", "err", pe)
	x.dead = true
	return pe
}

func (x *exchange) protocolError(format string, args ...any) error {
	return &procError{p: x.p, err: fmt.Errorf("protocol: "+format, args...)}
}

// streamErr translates the terminal error of the receive side.
func (x *exchange) streamErr(err error) error {
	if errors.Is(err, io.EOF) {
		return errProcessorDone
	}
	return &procError{p: x.p, err: err}
}

func (x *exchange) send(req *extprocv3.ProcessingRequest) error {
	if !x.sentFirst {
		// Envoy tells the processor the body modes on the first message.
		req.ProtocolConfig = &extprocv3.ProtocolConfiguration{
			RequestBodyMode:  x.mode.GetRequestBodyMode(),
			ResponseBodyMode: x.mode.GetResponseBodyMode(),
		}
		x.sentFirst = true
	}
	if err := x.stream.Send(req); err != nil {
		if errors.Is(err, io.EOF) {
			// The stream is over; its status is on the receive side.
			return x.terminal()
		}
		return &procError{p: x.p, err: err}
	}
	return nil
}

// terminal waits briefly for the receive side's final status.
func (x *exchange) terminal() error {
	t := time.NewTimer(time.Second)
	defer t.Stop()
	for {
		x.box.mu.Lock()
		err := x.box.err
		x.box.mu.Unlock()
		if err != nil {
			return x.streamErr(err)
		}
		select {
		case <-x.box.notify:
		case <-t.C:
			return &procError{p: x.p, err: errors.New("stream closed")}
		}
	}
}

// await returns the processor's next message, waiting at most p.timeout.
func (x *exchange) await(ctx context.Context) (*extprocv3.ProcessingResponse, error) {
	var timeout <-chan time.Time
	if x.p.timeout > 0 {
		t := time.NewTimer(x.p.timeout)
		defer t.Stop()
		timeout = t.C
	}
	for {
		if m, err, ok := x.box.take(); ok {
			if err != nil {
				return nil, x.streamErr(err)
			}
			x.noteMetadata(m)
			return m, nil
		}
		select {
		case <-x.box.notify:
		case <-timeout:
			return nil, &procError{p: x.p, timedOut: true, err: fmt.Errorf("no answer within %v", x.p.timeout)}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (x *exchange) noteMetadata(m *extprocv3.ProcessingResponse) {
	md := m.GetDynamicMetadata()
	if md == nil {
		return
	}
	if x.meta == nil {
		x.meta = &structpb.Struct{Fields: map[string]*structpb.Value{}}
	}
	for k, v := range md.GetFields() {
		x.meta.Fields[k] = v
	}
}

// override applies a mode_override. Header modes left DEFAULT keep their
// value; body modes replace theirs. FULL_DUPLEX_STREAMED can be neither
// entered nor left this way (Envoy refuses that too, since chunks may already
// be in flight). In the answer to the response headers only response modes can
// change.
func (x *exchange) override(o *extprocfilter.ProcessingMode, requestPhase bool) {
	if o == nil {
		return
	}
	x.log.Debug("gateway: processor overrides the processing mode", "mode", o.String())
	body := func(cur *extprocfilter.ProcessingMode_BodySendMode, next extprocfilter.ProcessingMode_BodySendMode) {
		if *cur != fullDuplex && next != fullDuplex {
			*cur = next
		}
	}
	if requestPhase {
		body(&x.mode.RequestBodyMode, o.GetRequestBodyMode())
	}
	if o.GetResponseHeaderMode() != extprocfilter.ProcessingMode_DEFAULT {
		x.mode.ResponseHeaderMode = o.GetResponseHeaderMode()
	}
	body(&x.mode.ResponseBodyMode, o.GetResponseBodyMode())
}

func requestHeadersMsg(hm *corev3.HeaderMap, eos bool) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{
		RequestHeaders: &extprocv3.HttpHeaders{Headers: hm, EndOfStream: eos}}}
}

func requestBodyMsg(b []byte, eos bool) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{
		RequestBody: &extprocv3.HttpBody{Body: b, EndOfStream: eos}}}
}

func responseHeadersMsg(hm *corev3.HeaderMap, eos bool) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{
		ResponseHeaders: &extprocv3.HttpHeaders{Headers: hm, EndOfStream: eos}}}
}

func responseBodyMsg(b []byte, eos bool) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{
		ResponseBody: &extprocv3.HttpBody{Body: b, EndOfStream: eos}}}
}

// chunks splits b into chunkSize pieces.
func chunks(b []byte) [][]byte {
	var out [][]byte
	for len(b) > chunkSize {
		out = append(out, b[:chunkSize])
		b = b[chunkSize:]
	}
	return append(out, b)
}

// request runs the request phases over m, mutating it. It returns the
// processor's immediate response when the processor ends the request, and an
// error only for a fail-closed failure or a context error.
func (x *exchange) request(ctx context.Context, m *message) (*extprocv3.ImmediateResponse, error) {
	if x.dead {
		return nil, nil
	}
	ir, err := x.requestPhases(ctx, m)
	if err != nil {
		return nil, x.failed(err)
	}
	return ir, nil
}

func (x *exchange) requestPhases(ctx context.Context, m *message) (*extprocv3.ImmediateResponse, error) {
	hasBody := len(m.body) > 0
	bodyMode := x.mode.GetRequestBodyMode()
	if x.mode.GetRequestHeaderMode() != extprocfilter.ProcessingMode_SKIP {
		if err := x.send(requestHeadersMsg(m.headerMap(), !hasBody)); err != nil {
			return nil, err
		}
		duplex := hasBody && bodyMode == fullDuplex
		if duplex {
			// Full duplex: the body follows at once, without waiting.
			if err := x.sendRequestChunks(m.body); err != nil {
				return nil, err
			}
		}
		resp, err := x.await(ctx)
		if err != nil {
			return nil, err
		}
		switch r := resp.GetResponse().(type) {
		case *extprocv3.ProcessingResponse_ImmediateResponse:
			return r.ImmediateResponse, nil
		case *extprocv3.ProcessingResponse_RequestHeaders:
			cr := r.RequestHeaders.GetResponse()
			if err := m.mutate(cr.GetHeaderMutation()); err != nil {
				return nil, &procError{p: x.p, err: err}
			}
			if duplex {
				return x.requestDuplexBody(ctx, m)
			}
			if cr.GetStatus() == extprocv3.CommonResponse_CONTINUE_AND_REPLACE {
				// The processor supplies the body itself; no body phase follows.
				m.body = mutateBody(m.body, cr.GetBodyMutation())
				return nil, nil
			}
			x.override(resp.GetModeOverride(), true)
		default:
			return nil, x.protocolError("expected a request_headers answer, got %T", resp.GetResponse())
		}
	}
	if !hasBody {
		return nil, nil
	}
	switch x.mode.GetRequestBodyMode() {
	case extprocfilter.ProcessingMode_BUFFERED, extprocfilter.ProcessingMode_BUFFERED_PARTIAL:
		if err := x.send(requestBodyMsg(m.body, true)); err != nil {
			return nil, err
		}
		return x.requestBodyAnswer(ctx, m, m.body, func(b []byte) { m.body = b })
	case extprocfilter.ProcessingMode_STREAMED:
		var out []byte
		parts := chunks(m.body)
		for i, c := range parts {
			if err := x.send(requestBodyMsg(c, i == len(parts)-1)); err != nil {
				return nil, err
			}
			ir, err := x.requestBodyAnswer(ctx, m, c, func(b []byte) { out = append(out, b...) })
			if ir != nil || err != nil {
				return ir, err
			}
		}
		m.body = out
	case fullDuplex:
		if err := x.sendRequestChunks(m.body); err != nil {
			return nil, err
		}
		return x.requestDuplexBody(ctx, m)
	}
	return nil, nil
}

// requestBodyAnswer waits for the answer to one request body message and
// hands the (mutated) chunk to use.
func (x *exchange) requestBodyAnswer(ctx context.Context, m *message, chunk []byte, use func([]byte)) (*extprocv3.ImmediateResponse, error) {
	cr, ir, err := x.awaitRequestBody(ctx, m)
	if cr != nil {
		use(mutateBody(chunk, cr.GetBodyMutation()))
	}
	return ir, err
}

// awaitRequestBody waits for the next answer to a request body message:
// an immediate response, or a body answer whose header mutation it applies
// (the headers have not gone upstream yet, so a body answer may still change
// them). Anything else is a protocol error.
func (x *exchange) awaitRequestBody(ctx context.Context, m *message) (*extprocv3.CommonResponse, *extprocv3.ImmediateResponse, error) {
	resp, err := x.await(ctx)
	if err != nil {
		return nil, nil, err
	}
	switch r := resp.GetResponse().(type) {
	case *extprocv3.ProcessingResponse_ImmediateResponse:
		return nil, r.ImmediateResponse, nil
	case *extprocv3.ProcessingResponse_RequestBody:
		cr := r.RequestBody.GetResponse()
		if err := m.mutate(cr.GetHeaderMutation()); err != nil {
			return nil, nil, &procError{p: x.p, err: err}
		}
		return cr, nil, nil
	}
	return nil, nil, x.protocolError("expected a request_body answer, got %T", resp.GetResponse())
}

func (x *exchange) sendRequestChunks(body []byte) error {
	parts := chunks(body)
	for i, c := range parts {
		if err := x.send(requestBodyMsg(c, i == len(parts)-1)); err != nil {
			return err
		}
	}
	return nil
}

// requestDuplexBody collects the streamed body answers of a full-duplex
// request body until the one marked end_of_stream.
func (x *exchange) requestDuplexBody(ctx context.Context, m *message) (*extprocv3.ImmediateResponse, error) {
	var out []byte
	for {
		cr, ir, err := x.awaitRequestBody(ctx, m)
		if cr == nil {
			return ir, err
		}
		sb := cr.GetBodyMutation().GetStreamedResponse()
		if sb == nil {
			return nil, x.protocolError("a FULL_DUPLEX_STREAMED body answer needs streamed_response")
		}
		out = append(out, sb.GetBody()...)
		if sb.GetEndOfStream() {
			m.body = out
			return nil, nil
		}
	}
}

// responseHeaders runs the response-headers phase over a and returns the body
// source the next processor (or the client) reads: src itself, or src wrapped
// in a stage that runs this processor's response-body phase. An immediate
// response comes back as an *immediateAnswer error.
func (x *exchange) responseHeaders(ctx context.Context, a *answer, src bodySource) (bodySource, error) {
	if x.dead {
		return src, nil
	}
	if x.mode.GetResponseHeaderMode() != extprocfilter.ProcessingMode_SKIP {
		msg := responseHeadersMsg(a.headerMap(), a.noBody)
		if x.served != "" {
			msg.MetadataContext = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
				"envoy.lb": {Fields: map[string]*structpb.Value{
					servedHeader: structpb.NewStringValue(x.served),
				}},
			}}
		}
		if err := x.send(msg); err != nil {
			if err := x.failed(err); err != nil {
				return nil, err
			}
			return src, nil
		}
		var duplex *duplexStage
		if !a.noBody && x.mode.GetResponseBodyMode() == fullDuplex {
			// Full duplex: the body streams to the processor at once; its
			// headers answer may wait for it.
			duplex = newDuplexStage(ctx, x, src)
		}
		resp, err := x.await(ctx)
		if err == nil {
			switch r := resp.GetResponse().(type) {
			case *extprocv3.ProcessingResponse_ImmediateResponse:
				if duplex != nil {
					duplex.stopPump()
				}
				return nil, &immediateAnswer{p: x.p, ir: r.ImmediateResponse}
			case *extprocv3.ProcessingResponse_ResponseHeaders:
				if merr := a.mutate(r.ResponseHeaders.GetResponse().GetHeaderMutation()); merr != nil {
					err = &procError{p: x.p, err: merr}
				} else if duplex == nil {
					x.override(resp.GetModeOverride(), false)
				}
			default:
				err = x.protocolError("expected a response_headers answer, got %T", resp.GetResponse())
			}
		}
		if err != nil {
			if duplex != nil {
				return duplex.failedEarly(err)
			}
			if err := x.failed(err); err != nil {
				return nil, err
			}
			return src, nil
		}
		if duplex != nil {
			return duplex, nil
		}
	}
	if a.noBody {
		return src, nil
	}
	switch x.mode.GetResponseBodyMode() {
	case extprocfilter.ProcessingMode_STREAMED:
		return &streamedStage{ctx: ctx, x: x, inner: src}, nil
	case extprocfilter.ProcessingMode_BUFFERED, extprocfilter.ProcessingMode_BUFFERED_PARTIAL:
		return &bufferedStage{ctx: ctx, x: x, inner: src, a: a}, nil
	case fullDuplex:
		return newDuplexStage(ctx, x, src), nil
	}
	return src, nil
}

// servedHeader tells the client, and the picker, which endpoint served.
const servedHeader = "x-gateway-destination-endpoint-served"

// destinationHeader is where the picker names its endpoints, in dynamic
// metadata envoy.lb and as a request header.
const destinationHeader = "x-gateway-destination-endpoint"
