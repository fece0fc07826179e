package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// bodySource yields a response body chunk by chunk. A source may wrap another:
// the upstream body is the innermost, and each processor whose response-body
// phase runs wraps the source before it, in the order Envoy's encoder filters
// run (the picker first, then the extensions from last to first). Only the
// goroutine that writes to the client calls next, except for the source inside
// a full-duplex stage, which that stage's pump reads.
type bodySource interface {
	// next returns the next chunk; eos marks the last call.
	next() (chunk []byte, eos bool, err error)
}

// readerSource reads an upstream body as it arrives: a read returns whatever
// the upstream has flushed, so server-sent events pass one by one.
type readerSource struct {
	r   io.Reader
	buf []byte
	eos bool
}

func (s *readerSource) next() ([]byte, bool, error) {
	if s.eos {
		return nil, true, nil
	}
	if s.buf == nil {
		s.buf = make([]byte, 32<<10)
	}
	n, err := s.r.Read(s.buf)
	// Chunks outlive the next read (a full-duplex stage keeps them for a
	// replay), so each is a copy of its own size.
	chunk := bytes.Clone(s.buf[:n])
	if errors.Is(err, io.EOF) {
		s.eos = true
		if n == 0 {
			return nil, true, nil
		}
		return chunk, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return chunk, false, nil
}

func bytesSource(b []byte) bodySource { return &readerSource{r: bytes.NewReader(b)} }

// streamedStage runs a STREAMED response-body phase: each chunk is sent and
// its answer awaited before the (possibly rewritten) chunk moves on, so a
// processor can redact a streamed answer while it streams. The end of the body
// goes as an empty chunk marked end_of_stream, since the gateway cannot know
// which read is the last.
type streamedStage struct {
	ctx   context.Context
	x     *exchange
	inner bodySource
}

func (s *streamedStage) next() ([]byte, bool, error) {
	chunk, eos, err := s.inner.next()
	if err != nil || s.x.dead || len(chunk) == 0 && !eos {
		return chunk, eos, err
	}
	if err := s.x.send(responseBodyMsg(chunk, eos)); err != nil {
		return s.fail(err, chunk, eos)
	}
	resp, err := s.x.await(s.ctx)
	if err != nil {
		return s.fail(err, chunk, eos)
	}
	switch r := resp.GetResponse().(type) {
	case *extprocv3.ProcessingResponse_ImmediateResponse:
		return nil, false, &immediateAnswer{p: s.x.p, ir: r.ImmediateResponse}
	case *extprocv3.ProcessingResponse_ResponseBody:
		return mutateBody(chunk, r.ResponseBody.GetResponse().GetBodyMutation()), eos, nil
	}
	return s.fail(s.x.protocolError("expected a response_body answer, got %T", resp.GetResponse()), chunk, eos)
}

// fail passes the unprocessed chunk on when the processor fails open.
func (s *streamedStage) fail(err error, chunk []byte, eos bool) ([]byte, bool, error) {
	if err := s.x.failed(err); err != nil {
		return nil, false, err
	}
	return chunk, eos, nil
}

// bufferedStage runs a BUFFERED response-body phase: the whole body is read
// (up to maxRequestBody), sent as one message, and its answer replaces it. The
// client's headers are held until then, so the answer may still change them,
// or replace the response with an immediate one.
type bufferedStage struct {
	ctx   context.Context
	x     *exchange
	inner bodySource
	a     *answer
	done  bool
}

func (s *bufferedStage) next() ([]byte, bool, error) {
	if s.done {
		return nil, true, nil
	}
	var body []byte
	for {
		chunk, eos, err := s.inner.next()
		if err != nil {
			return nil, false, err
		}
		body = append(body, chunk...)
		if len(body) > maxRequestBody {
			return nil, false, newHTTPError(http.StatusBadGateway, "ResponseTooLarge",
				fmt.Sprintf("%s asked for a buffered response body larger than %d bytes", s.x.p.name, maxRequestBody), nil)
		}
		if eos {
			break
		}
	}
	s.done = true
	if s.x.dead {
		return body, true, nil
	}
	if err := s.x.send(responseBodyMsg(body, true)); err != nil {
		return s.fail(err, body)
	}
	resp, err := s.x.await(s.ctx)
	if err != nil {
		return s.fail(err, body)
	}
	switch r := resp.GetResponse().(type) {
	case *extprocv3.ProcessingResponse_ImmediateResponse:
		return nil, false, &immediateAnswer{p: s.x.p, ir: r.ImmediateResponse}
	case *extprocv3.ProcessingResponse_ResponseBody:
		cr := r.ResponseBody.GetResponse()
		if err := s.a.mutate(cr.GetHeaderMutation()); err != nil {
			return s.fail(&procError{p: s.x.p, err: err}, body)
		}
		return mutateBody(body, cr.GetBodyMutation()), true, nil
	}
	return s.fail(s.x.protocolError("expected a response_body answer, got %T", resp.GetResponse()), body)
}

func (s *bufferedStage) fail(err error, body []byte) ([]byte, bool, error) {
	if err := s.x.failed(err); err != nil {
		return nil, false, err
	}
	return body, true, nil
}

// duplexStage runs a FULL_DUPLEX_STREAMED response-body phase. A pump
// goroutine reads the inner source and sends each chunk to the processor as it
// comes; next returns the processor's streamed_response chunks as they arrive.
//
// Envoy starts no message timer in this mode. The gateway bounds only the
// answers the processor certainly owes: once the end of the body has been sent,
// each further answer must come within the processor's timeout, so a wedged
// picker cannot hold a finished response for ever.
//
// If the processor fails open before it has returned any chunk, the chunks it
// was sent are replayed unprocessed and the rest of the body passes through;
// after it has returned some, the body can no longer be put together faithfully
// and the response is aborted.
type duplexStage struct {
	ctx   context.Context
	x     *exchange
	inner bodySource

	mu       sync.Mutex
	held     [][]byte // chunks sent to the processor, kept until its first answer
	answered bool
	innerEOS bool
	pumpErr  error // the inner source failed
	sendErr  error

	eosSent  chan struct{}
	pumpDone chan struct{}
	stop     chan struct{}
	stopOnce sync.Once

	finished bool
	raw      bool
	replay   []byte
	replayed bool
}

func newDuplexStage(ctx context.Context, x *exchange, inner bodySource) *duplexStage {
	s := &duplexStage{ctx: ctx, x: x, inner: inner,
		eosSent: make(chan struct{}), pumpDone: make(chan struct{}), stop: make(chan struct{})}
	go s.pump()
	return s
}

func (s *duplexStage) pump() {
	defer close(s.pumpDone)
	for {
		select {
		case <-s.stop:
			return
		default:
		}
		chunk, eos, err := s.inner.next()
		s.mu.Lock()
		if err != nil {
			s.pumpErr = err
			s.mu.Unlock()
			return
		}
		if !s.answered && len(chunk) > 0 {
			s.held = append(s.held, chunk)
		}
		s.innerEOS = eos
		s.mu.Unlock()
		select {
		case <-s.stop:
			return
		default:
		}
		if len(chunk) > 0 || eos {
			if err := s.x.stream.Send(responseBodyMsg(chunk, eos)); err != nil {
				s.mu.Lock()
				s.sendErr = err
				s.mu.Unlock()
				return
			}
		}
		if eos {
			close(s.eosSent)
			return
		}
	}
}

// stopPump stops the pump and waits for it. The pump may be blocked sending
// to the processor (the stream is cancelled then) or reading the upstream (it
// returns with the next chunk, or when the upstream body is closed).
func (s *duplexStage) stopPump() {
	s.stopOnce.Do(func() { close(s.stop) })
}

func (s *duplexStage) next() ([]byte, bool, error) {
	if s.raw {
		return s.rawNext()
	}
	if s.finished {
		return nil, true, nil
	}
	eosSent, pumpDone := s.eosSent, s.pumpDone
	var timeout <-chan time.Time
	for {
		if m, err, ok := s.x.box.take(); ok {
			if err != nil {
				return s.fail(s.x.streamErr(err))
			}
			switch r := m.GetResponse().(type) {
			case *extprocv3.ProcessingResponse_ImmediateResponse:
				s.stopPump()
				return nil, false, &immediateAnswer{p: s.x.p, ir: r.ImmediateResponse}
			case *extprocv3.ProcessingResponse_ResponseBody:
				sb := r.ResponseBody.GetResponse().GetBodyMutation().GetStreamedResponse()
				if sb == nil {
					return s.fail(s.x.protocolError("a FULL_DUPLEX_STREAMED body answer needs streamed_response"))
				}
				s.mu.Lock()
				s.answered, s.held = true, nil
				s.mu.Unlock()
				if sb.GetEndOfStream() {
					s.finished = true
				} else if len(sb.GetBody()) == 0 {
					continue
				}
				return sb.GetBody(), sb.GetEndOfStream(), nil
			default:
				return s.fail(s.x.protocolError("expected a response_body answer, got %T", m.GetResponse()))
			}
		}
		select {
		case <-s.x.box.notify:
		case <-eosSent:
			eosSent = nil
			if s.x.p.timeout > 0 {
				t := time.NewTimer(s.x.p.timeout)
				defer t.Stop()
				timeout = t.C
			}
		case <-pumpDone:
			pumpDone = nil
			s.mu.Lock()
			perr, serr := s.pumpErr, s.sendErr
			s.mu.Unlock()
			if perr != nil {
				return nil, false, perr // the upstream failed, not the processor
			}
			if serr != nil {
				if errors.Is(serr, io.EOF) {
					return s.fail(s.x.terminal())
				}
				return s.fail(&procError{p: s.x.p, err: serr})
			}
		case <-timeout:
			return s.fail(&procError{p: s.x.p, timedOut: true,
				err: fmt.Errorf("no streamed answer within %v of the end of the body", s.x.p.timeout)})
		case <-s.ctx.Done():
			return nil, false, s.ctx.Err()
		}
	}
}

// failedEarly handles a failure of the headers answer: nothing has been
// answered yet, so failing open replays the whole body unprocessed.
func (s *duplexStage) failedEarly(err error) (bodySource, error) {
	if _, _, err := s.fail(err); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *duplexStage) fail(err error) ([]byte, bool, error) {
	if err := s.x.failed(err); err != nil {
		s.stopPump()
		return nil, false, err
	}
	s.mu.Lock()
	answered := s.answered
	s.mu.Unlock()
	if answered {
		s.stopPump()
		s.x.log.Warn("gateway: processor failed after rewriting part of the body; aborting the response")
		return nil, false, errAbort
	}
	s.stopPump()
	s.x.cancel() // unblocks a pump stuck sending
	<-s.pumpDone
	s.raw = true
	s.replay = bytes.Join(s.held, nil)
	s.held = nil
	return nil, false, nil
}

// rawNext passes the body through after a fail-open: first what the processor
// was sent and never answered, then the rest of the inner source.
func (s *duplexStage) rawNext() ([]byte, bool, error) {
	if !s.replayed {
		s.replayed = true
		if len(s.replay) > 0 || s.innerEOS {
			r := s.replay
			s.replay = nil
			return r, s.innerEOS, nil
		}
	}
	if s.innerEOS {
		return nil, true, nil
	}
	if s.pumpErr != nil {
		return nil, false, s.pumpErr
	}
	return s.inner.next()
}
