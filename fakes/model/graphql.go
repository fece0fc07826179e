package model

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"
)

// GraphQLSchema is the schema /graphql serves, in GraphQL SDL: the file
// schema.graphql of this package, which policies (such as Apigee's GraphQL
// policy with <Action>verify</Action>) validate queries against.
//
//go:embed schema.graphql
var GraphQLSchema string

// graphQLSchema is GraphQLSchema loaded, with gqlparser's prelude (the
// built-in scalars, directives and introspection types).
var graphQLSchema = gqlparser.MustLoadSchema(&ast.Source{Name: "schema.graphql", Input: GraphQLSchema})

// Limits of /graphql. The gateway's GraphQL policy is meant to stop hostile
// queries first; these keep the server safe when it does not.
const (
	// graphQLTokenLimit bounds the tokens of a query document, and with it
	// the parser's and validator's work (gqlgen's default).
	graphQLTokenLimit = 15000
	// graphQLMaxDepth is the deepest field nesting executed: { models } is
	// depth 1, { models { id } } depth 2.
	graphQLMaxDepth = 64
	// graphQLMaxSelections bounds the selections (fields, fragment spreads
	// and inline fragments) of the operation once fragments are expanded.
	graphQLMaxSelections = 10000
	// graphQLMaxFields bounds the fields resolved, each list element's
	// fields counted.
	graphQLMaxFields = 10000
)

// graphQLResponseType is the GraphQL over HTTP media type; /graphql answers
// with it when the request's Accept header names it, else application/json.
const graphQLResponseType = "application/graphql-response+json"

// gqlRequest is one GraphQL over HTTP request, read from the URL (GET), a
// JSON body or an application/graphql body.
type gqlRequest struct {
	query         string
	operationName string
	variables     map[string]any
	get           bool // mutations may not run over GET
}

// gqlResponse is a GraphQL response: errors first, as the spec suggests,
// and data absent for a request error, null or an object after execution.
type gqlResponse struct {
	Errors []*gqlError     `json:"errors,omitempty"`
	Data   json.RawMessage `json:"data,omitempty"`
}

// gqlError is one GraphQL error.
type gqlError struct {
	Message    string         `json:"message"`
	Locations  []gqlLocation  `json:"locations,omitempty"`
	Path       ast.Path       `json:"path,omitempty"`
	Extensions map[string]any `json:"extensions,omitempty"`
}

type gqlLocation struct {
	Line   int `json:"line"`
	Column int `json:"column"`
}

// locate returns the location of pos, or none.
func locate(pos *ast.Position) []gqlLocation {
	if pos == nil || pos.Line == 0 {
		return nil
	}
	return []gqlLocation{{Line: pos.Line, Column: pos.Column}}
}

// handleGraphQL serves /graphql: GET with query, operationName and variables
// in the URL, POST with a JSON body or an application/graphql body.
func (s *Server) handleGraphQL(w http.ResponseWriter, r *http.Request) {
	fail := graphQLErrorWriter(r)
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		fail(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed on /graphql; use GET or POST", r.Method))
		return
	}
	if s.refuse(w, r, fail) {
		return
	}
	req, ok := readGraphQLRequest(w, r, fail)
	if !ok {
		return
	}
	status, resp := s.serveGraphQL(r, req)
	if status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", "POST")
	}
	writeGraphQL(w, r, status, resp)
}

// readGraphQLRequest reads the request's query, operation name and
// variables. On failure it answers (400, 413 or 415) and returns false.
func readGraphQLRequest(w http.ResponseWriter, r *http.Request, fail errorWriter) (gqlRequest, bool) {
	if r.Method == http.MethodGet {
		req, msg := graphQLParams(r)
		if msg != "" {
			fail(w, http.StatusBadRequest, msg)
			return gqlRequest{}, false
		}
		req.get = true
		return req, true
	}
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (ct != "application/json" && ct != "application/graphql") {
		fail(w, http.StatusUnsupportedMediaType, fmt.Sprintf(
			"unsupported Content-Type %q: send application/json ({\"query\":...}) or application/graphql (the query itself)",
			r.Header.Get("Content-Type")))
		return gqlRequest{}, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", tooBig.Limit))
		} else {
			fail(w, http.StatusBadRequest, "read request body: "+err.Error())
		}
		return gqlRequest{}, false
	}
	if ct == "application/graphql" {
		// The query is the body; the URL may carry the other parameters.
		req, msg := graphQLParams(r)
		if msg != "" {
			fail(w, http.StatusBadRequest, msg)
			return gqlRequest{}, false
		}
		req.query = string(body)
		return req, true
	}
	req, msg := decodeGraphQLBody(body)
	if msg != "" {
		fail(w, http.StatusBadRequest, msg)
		return gqlRequest{}, false
	}
	return req, true
}

// graphQLParams reads query, operationName and variables from the URL.
func graphQLParams(r *http.Request) (gqlRequest, string) {
	q := r.URL.Query()
	req := gqlRequest{query: q.Get("query"), operationName: q.Get("operationName")}
	if r.Method == http.MethodGet && !q.Has("query") {
		return req, `the URL has no "query" parameter`
	}
	if v := q.Get("variables"); v != "" {
		vars, msg := decodeVariables([]byte(v))
		if msg != "" {
			return req, `the "variables" parameter: ` + msg
		}
		req.variables = vars
	}
	return req, ""
}

// decodeGraphQLBody reads a JSON request body:
// {"query":..., "operationName":..., "variables":..., "extensions":...}.
func decodeGraphQLBody(body []byte) (gqlRequest, string) {
	if len(bytes.TrimSpace(body)) == 0 {
		return gqlRequest{}, `request body is empty; expected a JSON object with "query"`
	}
	var raw struct {
		Query         json.RawMessage `json:"query"`
		OperationName json.RawMessage `json:"operationName"`
		Variables     json.RawMessage `json:"variables"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return gqlRequest{}, describeJSONError(err)
	}
	var req gqlRequest
	if len(raw.Query) == 0 || bytes.Equal(raw.Query, []byte("null")) {
		return req, `request body has no "query"`
	}
	if err := json.Unmarshal(raw.Query, &req.query); err != nil {
		return req, `"query" must be a string`
	}
	if len(raw.OperationName) > 0 && !bytes.Equal(raw.OperationName, []byte("null")) {
		if err := json.Unmarshal(raw.OperationName, &req.operationName); err != nil {
			return req, `"operationName" must be a string or null`
		}
	}
	if len(raw.Variables) > 0 {
		vars, msg := decodeVariables(raw.Variables)
		if msg != "" {
			return req, `"variables": ` + msg
		}
		req.variables = vars
	}
	return req, ""
}

// decodeVariables reads a JSON object of variables (or null), keeping
// numbers as json.Number so that integers stay exact.
func decodeVariables(b []byte) (map[string]any, string) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, "malformed JSON: " + strings.TrimPrefix(err.Error(), "json: ")
	}
	if d.More() {
		return nil, "malformed JSON: more than one value"
	}
	switch v := v.(type) {
	case nil:
		return nil, ""
	case map[string]any:
		return v, ""
	default:
		return nil, "must be a JSON object or null"
	}
}

// serveGraphQL parses, validates and executes one request and returns the
// status and body to answer with: 400 and errors without data when the
// request fails before execution (syntax, validation, operation choice,
// variables, limits), 405 for a mutation over GET, 200 with data (and field
// errors, if any) otherwise.
func (s *Server) serveGraphQL(r *http.Request, req gqlRequest) (status int, resp gqlResponse) {
	defer func() {
		// A bug in the executor (or gqlparser) must not take the server
		// down; it answers 500 so that tests and fuzzing see it.
		if p := recover(); p != nil {
			status = http.StatusInternalServerError
			resp = gqlResponse{Errors: []*gqlError{{Message: fmt.Sprintf("internal error: %v", p)}}}
		}
	}()
	doc, errs := parseGraphQL(req.query)
	if errs != nil {
		return http.StatusBadRequest, gqlResponse{Errors: errs}
	}
	op, gerr := selectOperation(doc, req.operationName)
	if gerr != nil {
		return http.StatusBadRequest, gqlResponse{Errors: []*gqlError{gerr}}
	}
	if req.get && op.Operation != ast.Query {
		return http.StatusMethodNotAllowed, gqlResponse{Errors: []*gqlError{{
			Message: fmt.Sprintf("Can only perform a %s operation from a POST request.", op.Operation), Locations: locate(op.Position)}}}
	}
	vars, errs := coerceVariables(graphQLSchema, op, req.variables)
	if errs != nil {
		return http.StatusBadRequest, gqlResponse{Errors: errs}
	}
	e := &executor{s: s, ctx: r.Context(), schema: graphQLSchema, doc: doc, vars: vars}
	if gerr := e.checkLimits(op); gerr != nil {
		return http.StatusBadRequest, gqlResponse{Errors: []*gqlError{gerr}}
	}
	data := e.execute(op)
	if e.abort != nil {
		return http.StatusBadRequest, gqlResponse{Errors: []*gqlError{e.abort}}
	}
	b, err := json.Marshal(data)
	if err != nil {
		return http.StatusInternalServerError, gqlResponse{Errors: []*gqlError{{Message: "encode data: " + err.Error()}}}
	}
	return http.StatusOK, gqlResponse{Errors: e.errs, Data: b}
}

// parseGraphQL parses query and validates it against the schema with the
// specification's rules (which reject, among others, fragment cycles).
func parseGraphQL(query string) (*ast.QueryDocument, []*gqlError) {
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: query}, graphQLTokenLimit)
	var list gqlerror.List
	if err != nil {
		var ge *gqlerror.Error
		if !errors.As(err, &ge) {
			ge = gqlerror.Wrap(err)
		}
		list = gqlerror.List{ge}
	} else {
		list = validator.ValidateWithRules(graphQLSchema, doc, nil)
	}
	if len(list) == 0 {
		return doc, nil
	}
	errs := make([]*gqlError, 0, len(list))
	for _, e := range list {
		ge := &gqlError{Message: e.Message, Path: e.Path}
		for _, l := range e.Locations {
			ge.Locations = append(ge.Locations, gqlLocation{Line: l.Line, Column: l.Column})
		}
		errs = append(errs, ge)
	}
	return nil, errs
}

// selectOperation picks the operation to run, as GetOperation of the
// specification does.
func selectOperation(doc *ast.QueryDocument, name string) (*ast.OperationDefinition, *gqlError) {
	if name == "" {
		switch len(doc.Operations) {
		case 0:
			return nil, &gqlError{Message: "The document holds no operation."}
		case 1:
			return doc.Operations[0], nil
		default:
			return nil, &gqlError{Message: "Must provide operation name if query contains multiple operations."}
		}
	}
	if op := doc.Operations.ForName(name); op != nil {
		return op, nil
	}
	return nil, &gqlError{Message: fmt.Sprintf("Unknown operation named %q.", name)}
}

// graphQLErrorWriter answers with a GraphQL error response; the status and
// message say why the request was not executed.
func graphQLErrorWriter(r *http.Request) errorWriter {
	return func(w http.ResponseWriter, status int, msg string) {
		writeGraphQL(w, r, status, gqlResponse{Errors: []*gqlError{{Message: msg}}})
	}
}

// writeGraphQL answers with resp, as application/graphql-response+json when
// the client accepts it, else as application/json.
func writeGraphQL(w http.ResponseWriter, r *http.Request, status int, resp gqlResponse) {
	b, err := json.Marshal(resp)
	if err != nil {
		http.Error(w, "encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	ct := "application/json"
	if acceptsGraphQLResponse(r.Header.Values("Accept")) {
		ct = graphQLResponseType
	}
	w.Header().Set("Content-Type", ct+"; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func acceptsGraphQLResponse(accept []string) bool {
	for _, a := range accept {
		for _, part := range strings.Split(a, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err == nil && mt == graphQLResponseType && params["q"] != "0" {
				return true
			}
		}
	}
	return false
}
