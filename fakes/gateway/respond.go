package gateway

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/gatecheck/gatecheck/internal/extproc"
)

// clientWriter is the client's side of the answer. Headers are committed once;
// every chunk is flushed as soon as it is written, so server-sent events and
// NDJSON reach the client as they are produced.
type clientWriter struct {
	w         http.ResponseWriter
	rc        *http.ResponseController
	committed bool
	status    int
	bytes     int64
}

func (c *clientWriter) commit(a *answer) {
	h := c.w.Header()
	for k, v := range a.header {
		h[k] = v
	}
	c.w.WriteHeader(a.status)
	c.committed, c.status = true, a.status
	_ = c.rc.Flush()
}

func (c *clientWriter) write(b []byte) error {
	n, err := c.w.Write(b)
	c.bytes += int64(n)
	if err != nil {
		return err
	}
	if err := c.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

// respond sends an answer to the client through the response phases of the
// processors in stages, in the order Envoy's encoder filters run: the last
// processor the request met sees the response first. Upstream responses,
// immediate responses and the gateway's own error answers all go this way, as
// Envoy's local replies do. closeBody releases the source (the upstream body).
//
// The client's headers go out as soon as every header phase has answered,
// unless a processor buffers the body, in which case they wait for its answer.
func (rq *request) respond(ctx context.Context, a *answer, src bodySource, closeBody func(), stages []*exchange) {
	defer closeBody()
	bodyTouched, held := false, false
	for i, x := range stages {
		if x.dead {
			continue
		}
		next, err := x.responseHeaders(ctx, a, src)
		if err != nil {
			closeBody()
			var ia *immediateAnswer
			if errors.As(err, &ia) {
				rq.respondImmediate(rq.in.Context(), ia.ir, stages[i+1:])
				return
			}
			rq.respondError(rq.in.Context(), err, stages[i+1:])
			return
		}
		if next != src {
			bodyTouched = true
			if _, ok := next.(*bufferedStage); ok {
				held = true
			}
		}
		src = next
	}
	if bodyTouched {
		// A processor may change the body's length: stream it chunked.
		a.header.Del("Content-Length")
	}
	cw := rq.cw
	if !held {
		cw.commit(a)
	}
	for {
		chunk, eos, err := src.next()
		if err != nil {
			rq.bodyFailed(ctx, err)
			return
		}
		if len(chunk) > 0 {
			if !cw.committed {
				cw.commit(a)
			}
			if err := cw.write(chunk); err != nil {
				rq.log.Debug("gateway: client went away", "err", err)
				return
			}
		}
		if eos {
			break
		}
	}
	if !cw.committed {
		cw.commit(a)
	}
	if a.trailer != nil {
		for k, vv := range a.trailer() {
			cw.w.Header()[http.TrailerPrefix+k] = vv
		}
	}
}

// bodyFailed handles an error while the body streams: before the headers went
// out it becomes an answer of its own; after, the connection is cut.
func (rq *request) bodyFailed(ctx context.Context, err error) {
	if rq.in.Context().Err() != nil {
		rq.log.Debug("gateway: client went away", "err", err)
		return
	}
	if !rq.cw.committed {
		var ia *immediateAnswer
		if errors.As(err, &ia) {
			rq.respondImmediate(rq.in.Context(), ia.ir, nil)
			return
		}
		if ctx.Err() != nil && !errors.Is(err, context.DeadlineExceeded) {
			err = ctx.Err()
		}
		rq.respondError(rq.in.Context(), err, nil)
		return
	}
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	rq.abort(err)
}

// abort cuts the connection after the headers were sent, as
// httputil.ReverseProxy does: http.ErrAbortHandler makes net/http close it
// without a final chunk, so the client sees an incomplete response rather than
// a silently truncated or unprocessed one.
func (rq *request) abort(err error) {
	rq.log.Warn("gateway: aborting response after headers were sent", "err", err)
	panic(http.ErrAbortHandler)
}

// respondError answers with the gateway's JSON error for err, through stages.
func (rq *request) respondError(ctx context.Context, err error, stages []*exchange) {
	if rq.in.Context().Err() != nil {
		rq.log.Debug("gateway: client went away", "err", err)
		return
	}
	status, body := errorAnswer(err)
	if status >= 500 {
		rq.log.Warn("gateway: request failed", "status", status, "err", err)
	} else {
		rq.log.Debug("gateway: request refused", "status", status, "err", err)
	}
	rq.respond(ctx, jsonAnswer(status, body), bytesSource(body), func() {}, stages)
}

// respondImmediate answers with a processor's immediate_response: its status
// (a missing or invalid one is 500), headers and body.
func (rq *request) respondImmediate(ctx context.Context, ir *extprocv3.ImmediateResponse, stages []*exchange) {
	a := &answer{status: extproc.ImmediateStatus(ir), header: http.Header{}, noBody: len(ir.GetBody()) == 0}
	if err := a.mutate(ir.GetHeaders()); err != nil {
		rq.log.Warn("gateway: ignoring invalid immediate response headers", "err", err)
		a.header = http.Header{}
	}
	a.status = extproc.ImmediateStatus(ir) // :status in the headers does not override the status field
	a.header.Set("Content-Length", strconv.Itoa(len(ir.GetBody())))
	rq.log.Debug("gateway: immediate response", "status", a.status)
	rq.respond(ctx, a, bytesSource(ir.GetBody()), func() {}, stages)
}
