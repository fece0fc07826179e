package threat

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"
)

// GraphQL policy fault codes. The first four are the codes public
// walkthroughs of Apigee's GraphQL policy show; Apigee's error reference was
// not available to confirm them, and the last two are gatecheck's names
// (UNCONFIRMED) for faults those walkthroughs do not show.
const (
	GraphQLMaxDepthExceeded        = "steps.graphql.MaxDepthExceeded"
	GraphQLMaxCountExceeded        = "steps.graphql.MaxCountExceeded"
	GraphQLOperationTypeNotAllowed = "steps.graphql.OperationTypeNotAllowed"
	GraphQLSchemaValidationFailed  = "steps.graphql.SchemaValidationFailed"
	GraphQLMaxPayloadSizeExceeded  = "steps.graphql.MaxPayloadSizeExceeded" // UNCONFIRMED
	GraphQLInvalidPayload          = "steps.graphql.InvalidPayload"         // UNCONFIRMED: unparsable query, fragment cycle
)

var graphQLReasons = map[string]string{
	GraphQLMaxDepthExceeded:        "Payload depth exceeds the size set in the policy",
	GraphQLMaxCountExceeded:        "Max count mentioned in the policy has exceeded",
	GraphQLOperationTypeNotAllowed: "Operation type not allowed",
	GraphQLSchemaValidationFailed:  "Payload failed schema validation",
	GraphQLMaxPayloadSizeExceeded:  "Payload size exceeds the size set in the policy",
	GraphQLInvalidPayload:          "Invalid GraphQL payload",
}

// GraphQL policy actions (<Action>).
const (
	GraphQLActionParse       = "parse"
	GraphQLActionVerify      = "verify"
	GraphQLActionParseVerify = "parse_verify"
)

// GraphQL operation type settings (<OperationType>).
const (
	GraphQLOperationQuery         = "query"
	GraphQLOperationMutation      = "mutation"
	GraphQLOperationQueryMutation = "query_mutation"
)

// graphQLTokenLimit caps the tokens of a query document, so that nesting,
// and with it the parser's and validator's recursion, stays bounded. gqlgen
// uses the same default.
const graphQLTokenLimit = 15000

// GraphQLLimits is the configuration of Apigee's GraphQL policy
// (https://cloud.google.com/apigee/docs/api-platform/reference/policies/graphql-policy).
type GraphQLLimits struct {
	// Action is parse (enforce OperationType, MaxCount and MaxDepth), verify
	// (validate against Schema) or parse_verify (both). "parse,verify" is
	// accepted for parse_verify. Empty means parse.
	Action string
	// OperationType is query, mutation or query_mutation ("all" is accepted
	// for query_mutation). Every operation in the document must be of an
	// allowed type; subscriptions are refused whenever OperationType is set.
	// Empty allows every type.
	OperationType string
	// MaxDepth is the deepest field nesting allowed: query { a } is depth 1,
	// query { a { b } } depth 2. Fragment spreads and inline fragments are
	// followed and add no level of their own. 0 means no limit.
	MaxDepth int
	// MaxCount is the most fragments allowed, Apigee's graphql.fragment.count:
	// the definitions in the document, the operation itself included, so a
	// query with one named fragment counts 2. 0 means no limit.
	MaxCount int
	// MaxPayloadSizeInBytes limits GraphQLRequest.PayloadSize. 0 means no limit.
	MaxPayloadSizeInBytes int
	// Schema validates the document when Action includes verify (see LoadSchema).
	Schema *ast.Schema
}

// Validate checks the configuration.
func (l GraphQLLimits) Validate() error {
	switch l.Action {
	case "", GraphQLActionParse, GraphQLActionVerify, GraphQLActionParseVerify, "parse,verify":
	default:
		return fmt.Errorf("graphql: unknown action %q (want parse, verify or parse_verify)", l.Action)
	}
	switch l.OperationType {
	case "", GraphQLOperationQuery, GraphQLOperationMutation, GraphQLOperationQueryMutation, "all":
	default:
		return fmt.Errorf("graphql: unknown operation type %q (want query, mutation or query_mutation)", l.OperationType)
	}
	if l.verifies() && l.Schema == nil {
		return fmt.Errorf("graphql: action %s needs a schema", l.Action)
	}
	if l.MaxDepth < 0 || l.MaxCount < 0 || l.MaxPayloadSizeInBytes < 0 {
		return errors.New("graphql: limits must not be negative")
	}
	return nil
}

func (l GraphQLLimits) parses() bool {
	return l.Action == "" || l.Action == GraphQLActionParse || l.Action == GraphQLActionParseVerify || l.Action == "parse,verify"
}

func (l GraphQLLimits) verifies() bool {
	return l.Action == GraphQLActionVerify || l.Action == GraphQLActionParseVerify || l.Action == "parse,verify"
}

// LoadSchema parses a GraphQL schema in SDL, as named by the policy's
// <ResourceURL>graphql://name</ResourceURL>.
func LoadSchema(name, sdl string) (*ast.Schema, error) {
	s, err := gqlparser.LoadSchema(&ast.Source{Name: name, Input: sdl})
	if err != nil {
		return nil, fmt.Errorf("graphql schema %s: %w", name, err)
	}
	return s, nil
}

// GraphQLRequest is a GraphQL request taken out of its HTTP envelope.
type GraphQLRequest struct {
	// Query is the GraphQL document.
	Query string
	// OperationName picks the operation to run; empty when not sent.
	OperationName string
	// Variables are the operation's variables, numbers as json.Number.
	Variables map[string]any
	// PayloadSize is what MaxPayloadSizeInBytes limits: the body of a POST,
	// the query parameter of a GET.
	PayloadSize int
}

// GraphQLViolation is a GraphQL policy fault. It is also the error
// ParseGraphQLHTTP returns for a request it cannot read.
type GraphQLViolation struct {
	// Code is one of the GraphQL* fault codes.
	Code string
	// Detail says what exactly: "depth 5 exceeds MaxDepth 4", the parse or
	// validation error, the fragment cycle.
	Detail string
}

// Error describes the violation for logs.
func (v *GraphQLViolation) Error() string {
	return fmt.Sprintf("graphql: %s: %s", graphQLReasons[v.Code], v.Detail)
}

// ErrorCode returns v.Code.
func (v *GraphQLViolation) ErrorCode() string { return v.Code }

// FaultString returns the faultstring: the fault's fixed text, then the
// detail. Apigee's GraphQL faultstrings do not name the policy, so
// policyName is unused; it is there so every violation in this package
// answers the same FaultString(policyName) call.
func (v *GraphQLViolation) FaultString(policyName string) string {
	if v.Detail == "" {
		return graphQLReasons[v.Code]
	}
	return graphQLReasons[v.Code] + ": " + v.Detail
}

func graphQLFault(code, format string, args ...any) *GraphQLViolation {
	return &GraphQLViolation{Code: code, Detail: fmt.Sprintf(format, args...)}
}

// ParseGraphQLHTTP takes a GraphQL request out of an HTTP request: GET with
// ?query=&operationName=&variables= (variables as JSON), POST with
// application/json {"query","operationName","variables"}, or POST with
// application/graphql whose body is the query (operationName and variables
// may then come from the URL). A batch (a JSON array) is refused: each of
// its operations would need checking and Apigee does not take batches.
// The error is a *GraphQLViolation with code GraphQLInvalidPayload.
func ParseGraphQLHTTP(method string, query url.Values, contentType string, body []byte) (GraphQLRequest, error) {
	bad := func(format string, args ...any) (GraphQLRequest, error) {
		return GraphQLRequest{}, graphQLFault(GraphQLInvalidPayload, format, args...)
	}
	fromURL := func(req *GraphQLRequest) error {
		if req.OperationName == "" {
			req.OperationName = query.Get("operationName")
		}
		if v := query.Get("variables"); v != "" && req.Variables == nil {
			if err := decodeVariables([]byte(v), &req.Variables); err != nil {
				return err
			}
		}
		return nil
	}
	switch method {
	case http.MethodGet:
		q := query.Get("query")
		if q == "" {
			return bad("GET request without a query parameter")
		}
		req := GraphQLRequest{Query: q, PayloadSize: len(q)}
		if err := fromURL(&req); err != nil {
			return bad("variables: %v", err)
		}
		return req, nil
	case http.MethodPost:
	default:
		return bad("method %s: GraphQL requests are GET or POST", method)
	}
	req := GraphQLRequest{PayloadSize: len(body)}
	switch {
	case isMedia(contentType, "application/graphql", ""):
		req.Query = string(body)
	case isMedia(contentType, "application/json", "+json"):
		trimmed := bytes.TrimSpace(body)
		if len(trimmed) > 0 && trimmed[0] == '[' {
			return bad("batched GraphQL requests are not supported")
		}
		var env struct {
			Query         *string         `json:"query"`
			OperationName *string         `json:"operationName"`
			Variables     json.RawMessage `json:"variables"`
		}
		if err := json.Unmarshal(body, &env); err != nil {
			return bad("JSON body: %v", err)
		}
		if env.Query == nil {
			return bad("JSON body without a \"query\" string")
		}
		req.Query = *env.Query
		if env.OperationName != nil {
			req.OperationName = *env.OperationName
		}
		if len(env.Variables) > 0 {
			if err := decodeVariables(env.Variables, &req.Variables); err != nil {
				return bad("variables: %v", err)
			}
		}
	default:
		return bad("content type %q: want application/json or application/graphql", contentType)
	}
	if strings.TrimSpace(req.Query) == "" {
		return bad("empty query")
	}
	if err := fromURL(&req); err != nil {
		return bad("variables: %v", err)
	}
	return req, nil
}

func decodeVariables(raw []byte, out *map[string]any) error {
	if string(bytes.TrimSpace(raw)) == "null" {
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(out); err != nil {
		return errors.New("want a JSON object")
	}
	return nil
}

// Check applies the limits to a request and returns the first fault, or
// nil. Checks run in this order: payload size, parsing (a document that does
// not parse, refers to an unknown fragment or has a fragment cycle is
// invalid whatever the action; GraphQL validation forbids cycles, and
// following one would never end), then with parse the operation type, the
// fragment count and the depth, then with verify the schema. Every
// operation of the document is checked, not only the one OperationName
// picks, so a second operation cannot smuggle a mutation or a deep query.
func (l GraphQLLimits) Check(req GraphQLRequest) *GraphQLViolation {
	if limit := l.MaxPayloadSizeInBytes; limit > 0 && req.PayloadSize > limit {
		return graphQLFault(GraphQLMaxPayloadSizeExceeded, "payload of %d bytes exceeds MaxPayloadSizeInBytes %d", req.PayloadSize, limit)
	}
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Name: "request", Input: req.Query}, graphQLTokenLimit)
	if err != nil {
		return graphQLFault(GraphQLInvalidPayload, "%v", err)
	}
	if len(doc.Operations) == 0 {
		return graphQLFault(GraphQLInvalidPayload, "the document has no operation")
	}
	depth, err := documentDepth(doc)
	if err != nil {
		return graphQLFault(GraphQLInvalidPayload, "%v", err)
	}
	if l.parses() {
		if v := l.checkOperationTypes(doc); v != nil {
			return v
		}
		count := len(doc.Operations) + len(doc.Fragments)
		if limit := l.MaxCount; limit > 0 && count > limit {
			return graphQLFault(GraphQLMaxCountExceeded, "%d fragments (operations and fragment definitions) exceed MaxCount %d", count, limit)
		}
		if limit := l.MaxDepth; limit > 0 && depth > limit {
			return graphQLFault(GraphQLMaxDepthExceeded, "depth %d exceeds MaxDepth %d", depth, limit)
		}
	}
	if l.verifies() {
		if l.Schema == nil {
			return graphQLFault(GraphQLSchemaValidationFailed, "no schema configured")
		}
		if errs := validator.ValidateWithRules(l.Schema, doc, nil); len(errs) > 0 {
			return graphQLFault(GraphQLSchemaValidationFailed, "%s", errs.Error())
		}
	}
	return nil
}

func (l GraphQLLimits) checkOperationTypes(doc *ast.QueryDocument) *GraphQLViolation {
	if l.OperationType == "" {
		return nil
	}
	for _, op := range doc.Operations {
		ok := false
		switch op.Operation {
		case ast.Query:
			ok = l.OperationType != GraphQLOperationMutation
		case ast.Mutation:
			ok = l.OperationType != GraphQLOperationQuery
		}
		if !ok {
			name := op.Name
			if name == "" {
				name = "(anonymous)"
			}
			return graphQLFault(GraphQLOperationTypeNotAllowed, "%s %s is not allowed by OperationType %s", op.Operation, name, l.OperationType)
		}
	}
	return nil
}

// documentDepth returns the deepest field nesting of any operation,
// following fragments, and fails on unknown fragments and on cycles.
// Fragment depths are memoised, so the work is linear in the document
// however often fragments are spread.
func documentDepth(doc *ast.QueryDocument) (int, error) {
	d := depthWalker{
		frags: map[string]*ast.FragmentDefinition{},
		memo:  map[string]int{},
		state: map[string]int{},
	}
	for _, f := range doc.Fragments {
		d.frags[f.Name] = f
	}
	// Every fragment, used or not, must be free of cycles.
	for _, f := range doc.Fragments {
		if _, err := d.fragment(f.Name); err != nil {
			return 0, err
		}
	}
	deepest := 0
	for _, op := range doc.Operations {
		n, err := d.set(op.SelectionSet)
		if err != nil {
			return 0, err
		}
		deepest = max(deepest, n)
	}
	return deepest, nil
}

type depthWalker struct {
	frags map[string]*ast.FragmentDefinition
	memo  map[string]int
	state map[string]int // 1 visiting, 2 done
	path  []string       // fragments being expanded, for the cycle message
}

func (d *depthWalker) set(s ast.SelectionSet) (int, error) {
	deepest := 0
	for _, sel := range s {
		var n int
		var err error
		switch x := sel.(type) {
		case *ast.Field:
			n, err = d.set(x.SelectionSet)
			n++
		case *ast.InlineFragment:
			n, err = d.set(x.SelectionSet)
		case *ast.FragmentSpread:
			n, err = d.fragment(x.Name)
		}
		if err != nil {
			return 0, err
		}
		deepest = max(deepest, n)
	}
	return deepest, nil
}

func (d *depthWalker) fragment(name string) (int, error) {
	switch d.state[name] {
	case 2:
		return d.memo[name], nil
	case 1:
		cycle := append([]string{}, d.path...)
		for i, n := range cycle {
			if n == name {
				cycle = cycle[i:]
				break
			}
		}
		return 0, fmt.Errorf("fragment cycle %s -> %s", strings.Join(cycle, " -> "), name)
	}
	f, ok := d.frags[name]
	if !ok {
		return 0, fmt.Errorf("unknown fragment %q", name)
	}
	d.state[name] = 1
	d.path = append(d.path, name)
	n, err := d.set(f.SelectionSet)
	d.path = d.path[:len(d.path)-1]
	if err != nil {
		return 0, err
	}
	d.state[name], d.memo[name] = 2, n
	return n, nil
}
