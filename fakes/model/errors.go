package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
)

// maxBodyBytes bounds a request body; larger bodies get 413.
const maxBodyBytes = 16 << 20

// errorWriter answers a request with an error in one API's shape.
type errorWriter func(w http.ResponseWriter, status int, msg string)

// openAIErrorBody is vLLM's error response:
// {"error":{"message":...,"type":"NotFoundError","param":null,"code":404}}.
type openAIErrorBody struct {
	Error openAIError `json:"error"`
}

type openAIError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    int     `json:"code"`
}

// writeOpenAIError answers with an OpenAI-shaped error.
func writeOpenAIError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, openAIErrorBody{Error: openAIError{Message: msg, Type: openAIErrorType(status), Code: status}})
}

// openAIErrorType names an error as the OpenAI SDKs name their exceptions.
func openAIErrorType(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "AuthenticationError"
	case http.StatusForbidden:
		return "PermissionDeniedError"
	case http.StatusTooManyRequests:
		return "RateLimitError"
	case http.StatusUnprocessableEntity:
		return "UnprocessableEntityError"
	}
	text := strings.ReplaceAll(http.StatusText(status), " ", "")
	text = strings.ReplaceAll(text, "-", "")
	switch {
	case text == "":
		return "APIError"
	case strings.HasSuffix(text, "Error"):
		return text
	default:
		return text + "Error"
	}
}

// writeOllamaError answers with Ollama's error shape: {"error":"..."}.
func writeOllamaError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, struct {
		Error string `json:"error"`
	}{msg})
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// decodeBody reads a JSON request body into v. On failure it answers the
// request (413 for a body over maxBodyBytes, 400 naming the JSON problem)
// and returns false.
func decodeBody(w http.ResponseWriter, r *http.Request, v any, fail errorWriter) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", tooBig.Limit))
		return false
	case err != nil:
		fail(w, http.StatusBadRequest, "read request body: "+err.Error())
		return false
	case len(strings.TrimSpace(string(body))) == 0:
		fail(w, http.StatusBadRequest, "request body is empty; expected a JSON object")
		return false
	}
	if err := json.Unmarshal(body, v); err != nil {
		fail(w, http.StatusBadRequest, describeJSONError(err))
		return false
	}
	return true
}

// describeJSONError turns a decoding error into a message a client can act
// on, without Go type names.
func describeJSONError(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("malformed JSON in request body at byte %d: %s", syntax.Offset, strings.TrimPrefix(syntax.Error(), "json: "))
	case errors.As(err, &typ):
		if typ.Field == "" {
			return fmt.Sprintf("request body must be a JSON object, got a JSON %s", typ.Value)
		}
		return fmt.Sprintf("field %q must be %s, got a JSON %s", typ.Field, jsonKind(typ.Type), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON in request body: unexpected end of input"
	default:
		return "invalid request body: " + strings.TrimPrefix(err.Error(), "json: ")
	}
}

// jsonKind names the JSON form a Go type decodes from.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	default:
		return "another type"
	}
}

// forcedError answers with the status named in the X-Return-Error header, as
// llm-d's simulator does, and says whether it did.
func forcedError(w http.ResponseWriter, r *http.Request, fail errorWriter) bool {
	v := r.Header.Get("X-Return-Error")
	if v == "" {
		return false
	}
	code, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || code < 400 || code > 599 {
		fail(w, http.StatusBadRequest, fmt.Sprintf("header X-Return-Error must be an HTTP error status 400..599, got %q", v))
		return true
	}
	text := http.StatusText(code)
	if text == "" {
		text = "Error"
	}
	fail(w, code, fmt.Sprintf("%s (forced by X-Return-Error)", text))
	return true
}

// injectedFailure rolls the failure injection dice and, when they say so,
// answers with a 429, 500 or 503 like llm-d's failure types. It says whether
// it answered.
func (s *Server) injectedFailure(w http.ResponseWriter, model string, fail errorWriter) bool {
	f := s.rollFailure(model)
	if f == nil {
		return false
	}
	f.write(w, fail)
	return true
}

// apiFailure is a failed request before it is written in one API's shape.
type apiFailure struct {
	status     int
	msg        string
	retryAfter bool // add Retry-After: 1
}

func (f *apiFailure) write(w http.ResponseWriter, fail errorWriter) {
	if f.retryAfter {
		w.Header().Set("Retry-After", "1")
	}
	fail(w, f.status, f.msg)
}

// rollFailure rolls the failure injection dice: nil, or the 429, 500 or 503
// the request must fail with.
func (s *Server) rollFailure(model string) *apiFailure {
	if s.cfg.FailureInjectionRate <= 0 {
		return nil
	}
	s.failMu.Lock()
	roll, kind := s.failRand.IntN(100), s.failRand.IntN(3)
	s.failMu.Unlock()
	if roll >= s.cfg.FailureInjectionRate {
		return nil
	}
	switch kind {
	case 0:
		return &apiFailure{http.StatusTooManyRequests, fmt.Sprintf("Rate limit reached for model %s (injected failure).", model), true}
	case 1:
		return &apiFailure{http.StatusInternalServerError, "Internal server error (injected failure).", false}
	default:
		return &apiFailure{http.StatusServiceUnavailable, "The server is overloaded or not ready yet (injected failure).", true}
	}
}
