package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// httpError is a failure the gateway answers with an HTTP status of its own.
// Every error on the request path ends up as one of these, or as a procError,
// and is turned into an answer in one place: errorAnswer.
type httpError struct {
	status int
	reason string // short CamelCase code for the JSON body, like Envoy's response flags
	msg    string
	err    error // cause, for the log only
}

func (e *httpError) Error() string {
	if e.err != nil {
		return fmt.Sprintf("%s: %v", e.msg, e.err)
	}
	return e.msg
}

func (e *httpError) Unwrap() error { return e.err }

func newHTTPError(status int, reason, msg string, cause error) *httpError {
	return &httpError{status: status, reason: reason, msg: msg, err: cause}
}

// procError is an ext_proc processor that could not be reached, broke its
// stream, broke the protocol, or did not answer within its message timeout.
// Whether it fails the request depends on the processor's failure mode; when
// it does, the processor's closedStatus says which status the client gets.
type procError struct {
	p        *processor
	timedOut bool
	err      error
}

func (e *procError) Error() string {
	what := "failed"
	if e.timedOut {
		what = "timed out"
	}
	return fmt.Sprintf("%s %s: %v", e.p.name, what, e.err)
}

func (e *procError) Unwrap() error { return e.err }

// errProcessorDone is a processor closing its stream with an OK status. Envoy
// reads that as "no more processing needed" and carries on without it, whatever
// the failure mode: it is a decision, not a failure.
var errProcessorDone = errors.New("processor closed the stream")

// immediateAnswer carries a processor's immediate_response out of a response
// phase, where it travels as an error through the body sources.
type immediateAnswer struct {
	p  *processor
	ir *extprocv3.ImmediateResponse
}

func (e *immediateAnswer) Error() string {
	return e.p.name + " answered with an immediate response"
}

// errAbort says the answer cannot be completed after its headers went out; the
// connection is cut so the client sees a broken response, never a silently
// truncated or unprocessed one.
var errAbort = errors.New("response aborted after headers were sent")

// errorAnswer maps any error of the request path to a status and a small JSON
// body: {"error":{"status":503,"reason":"...","message":"..."}}.
func errorAnswer(err error) (int, []byte) {
	status, reason, msg := http.StatusInternalServerError, "InternalError", "internal gateway error"
	var he *httpError
	var pe *procError
	switch {
	case errors.As(err, &he):
		status, reason, msg = he.status, he.reason, he.msg
	case errors.As(err, &pe):
		status = pe.p.closedStatus(pe.timedOut)
		reason = pe.p.reason
		if pe.timedOut {
			reason += "Timeout"
			msg = pe.p.name + " did not answer in time"
		} else {
			msg = pe.p.name + " is unavailable"
		}
	case errors.Is(err, context.DeadlineExceeded):
		status, reason, msg = http.StatusGatewayTimeout, "RequestTimeout", "upstream request timeout"
	}
	body, _ := json.Marshal(map[string]any{"error": map[string]any{
		"status": status, "reason": reason, "message": msg,
	}})
	return status, body
}

// jsonAnswer builds the answer for a gateway-made JSON body.
func jsonAnswer(status int, body []byte) *answer {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	return &answer{status: status, header: h, noBody: len(body) == 0}
}
