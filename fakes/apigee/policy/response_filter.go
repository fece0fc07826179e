package policy

import (
	"context"
	"net/http"
)

// ResponseFilter is implemented by response policies that must act on the
// answer before it reaches the client (SanitizeModelResponse redacting or
// blocking, a JSONThreatProtection or RegularExpressionProtection with
// Source response). A policy's Apply runs once the whole answer has been
// seen, when it can only be recorded; a filter sees the answer chunk by
// chunk while it streams.
//
// The runtime asks each response policy, in flow order, when the response
// headers arrive (m.Status and m.ResponseHeader are set). A policy that
// returns a filter is not applied again at the end of the answer: its filter
// decides, and sets its flow variables. A policy that returns false has
// nothing to do with this answer as a filter; its Apply runs at the end
// like any other response policy.
type ResponseFilter interface {
	Policy
	NewResponseFilter(m *Message) (ChunkFilter, bool)
}

// ChunkFilter filters one answer. The runtime calls Write with each piece
// of the body as it arrives, then Close at its end, and sends on what they
// return instead of the piece. A streamed answer (server-sent events,
// NDJSON) comes in many pieces; any other answer is buffered by the gateway
// first and comes as one.
//
// A fault ends the answer: out is what may still be sent before it. On a
// buffered answer the runtime replaces the answer with the fault; on a
// streamed one, whose headers are gone, it sends out, then an error event
// in the stream's own framing, and drops the rest. After a fault neither
// method is called again. An error is a failure of the filter (an answer it
// cannot parse); the runtime treats it as a fault of its own, failing
// closed.
type ChunkFilter interface {
	Write(chunk []byte) (out []byte, fault *Fault, err error)
	Close() (out []byte, fault *Fault, err error)
}

// StreamingResponse reports whether a response of this Content-Type streams
// (OpenAI server-sent events, Ollama NDJSON): such answers are filtered
// chunk by chunk, any other is buffered whole first.
func StreamingResponse(contentType string) bool {
	return mediaIs(contentType, "text/event-stream", "") || mediaIs(contentType, "application/x-ndjson", "") ||
		mediaIs(contentType, "application/jsonl", "")
}

// wholeFilter is a ChunkFilter for a policy that needs the whole answer
// before it can decide (JSON limits, regular expressions on a JSON or XML
// body): it holds every piece and, at the end, checks a copy of the message
// holding the whole answer, then sends the answer on unchanged or refuses
// it. Only buffered answers get one, so holding costs no streaming.
type wholeFilter struct {
	p    Policy
	m    Message
	body []byte
}

func newWholeFilter(p Policy, m *Message) *wholeFilter {
	return &wholeFilter{p: p, m: Message{Phase: Response, Now: m.Now, Method: m.Method, Path: m.Path, RawQuery: m.RawQuery,
		Header: m.Header, ClientIP: m.ClientIP, Body: m.Body, Status: m.Status, ResponseHeader: m.ResponseHeader.Clone(), Vars: m.vars()}}
}

func (w *wholeFilter) Write(chunk []byte) ([]byte, *Fault, error) {
	w.body = append(w.body, chunk...)
	return nil, nil, nil
}

func (w *wholeFilter) Close() ([]byte, *Fault, error) {
	w.m.ResponseBody = w.body
	f, err := w.p.Apply(context.Background(), &w.m)
	if f != nil || err != nil {
		return nil, f, err
	}
	return w.body, nil, nil
}

// contentTypeOf is a header's Content-Type, "" for a nil header.
func contentTypeOf(h http.Header) string {
	if h == nil {
		return ""
	}
	return h.Get("Content-Type")
}
