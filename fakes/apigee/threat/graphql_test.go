package threat

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

const testSchemaSDL = `
type Query { capsules: [Capsule!]! capsule(id: ID!): Capsule user(id: ID!): User }
type Mutation { launch(id: ID!): Capsule }
type Subscription { landed: Capsule }
type Capsule { id: ID! status: String missions: [Mission!]! }
type Mission { name: String flight: Int capsule: Capsule }
type User { id: ID! name: String friends: [User!]! }
`

func TestGraphQLLimitsCheck(t *testing.T) {
	t.Parallel()
	schema, err := LoadSchema("schema.graphql", testSchemaSDL)
	if err != nil {
		t.Fatal(err)
	}
	base := GraphQLLimits{Action: GraphQLActionParseVerify, OperationType: GraphQLOperationQuery, MaxDepth: 3, MaxCount: 2, MaxPayloadSizeInBytes: 400, Schema: schema}
	tests := []struct {
		name  string
		lim   GraphQLLimits
		query string
		want  string // fault code, "" for none
	}{
		{"depth 1", base, `{ capsules { id } }`, ""},
		{"depth at limit", base, `query { capsules { missions { name } } }`, ""},
		{"depth over", base, `query { capsules { missions { capsule { id } } } }`, GraphQLMaxDepthExceeded},
		{"depth through fragment", base, `query { capsules { ...C } } fragment C on Capsule { missions { capsule { id } } }`, GraphQLMaxDepthExceeded},
		{"depth through inline fragment", base, `query { capsules { ... on Capsule { missions { capsule { id } } } } }`, GraphQLMaxDepthExceeded},
		{"fragment count at limit", base, `query { capsules { ...C } } fragment C on Capsule { id }`, ""},
		{"fragment count over", base, `query { capsules { ...C ...D } } fragment C on Capsule { id } fragment D on Capsule { status }`, GraphQLMaxCountExceeded},
		{"mutation refused", base, `mutation { launch(id: "1") { id } }`, GraphQLOperationTypeNotAllowed},
		{"mutation hidden in second operation", base, `query A { capsules { id } } mutation B { launch(id: "1") { id } }`, GraphQLOperationTypeNotAllowed},
		{"subscription refused", GraphQLLimits{OperationType: GraphQLOperationQueryMutation}, `subscription { landed { id } }`, GraphQLOperationTypeNotAllowed},
		{"mutation allowed", GraphQLLimits{OperationType: GraphQLOperationQueryMutation}, `mutation { launch(id: "1") { id } }`, ""},
		{"schema: unknown field", base, `{ capsules { mass } }`, GraphQLSchemaValidationFailed},
		{"schema skipped by parse", GraphQLLimits{Action: GraphQLActionParse}, `{ capsules { mass } }`, ""},
		{"limits skipped by verify", GraphQLLimits{Action: GraphQLActionVerify, MaxDepth: 1, Schema: schema}, `{ capsules { id } }`, ""},
		{"payload size", base, `{ capsules { id } }` + strings.Repeat(" ", 500), GraphQLMaxPayloadSizeExceeded},
		{"syntax error", base, `{ capsules { id }`, GraphQLInvalidPayload},
		{"unknown fragment", GraphQLLimits{}, `{ capsules { ...Nope } }`, GraphQLInvalidPayload},
		{"fragment cycle", GraphQLLimits{}, `{ user(id: 1) { ...A } } fragment A on User { friends { ...B } } fragment B on User { friends { ...A } }`, GraphQLInvalidPayload},
		{"unused fragment cycle", GraphQLLimits{}, `{ capsules { id } } fragment A on User { ...A }`, GraphQLInvalidPayload},
		{"only fragments", GraphQLLimits{}, `fragment A on User { id }`, GraphQLInvalidPayload},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.lim.Validate(); err != nil {
				t.Fatal(err)
			}
			v := tt.lim.Check(GraphQLRequest{Query: tt.query, PayloadSize: len(tt.query)})
			got := ""
			if v != nil {
				got = v.Code
			}
			if got != tt.want {
				t.Fatalf("Check(%q) = %v, want %q", tt.query, v, tt.want)
			}
		})
	}
}

func TestGraphQLFaultStrings(t *testing.T) {
	t.Parallel()
	v := GraphQLLimits{MaxDepth: 1}.Check(GraphQLRequest{Query: `{ a { b } }`})
	if v == nil || v.FaultString("GQL") != "Payload depth exceeds the size set in the policy: depth 2 exceeds MaxDepth 1" || v.ErrorCode() != "steps.graphql.MaxDepthExceeded" {
		t.Fatalf("violation = %+v", v)
	}
	v = GraphQLLimits{}.Check(GraphQLRequest{Query: `{ ...A } fragment A on Q { ...B } fragment B on Q { ...A }`})
	if v == nil || !strings.Contains(v.Detail, "fragment cycle A -> B -> A") {
		t.Fatalf("cycle violation = %+v", v)
	}
}

func TestGraphQLDeepAndWideDocumentsAreBounded(t *testing.T) {
	t.Parallel()
	deep := strings.Repeat("{a", 20000) + strings.Repeat("}", 20000)
	if v := (GraphQLLimits{}).Check(GraphQLRequest{Query: deep}); v == nil || v.Code != GraphQLInvalidPayload {
		t.Fatalf("20,000-deep query: %+v, want the token limit to refuse it", v)
	}
	// A fragment spread many times is expanded once.
	var b strings.Builder
	b.WriteString("{ ...F0 }")
	for i := range 30 {
		b.WriteString(" fragment F" + strconv.Itoa(i) + " on Q { a { ...F" + strconv.Itoa(i+1) + " } b { ...F" + strconv.Itoa(i+1) + " } }")
	}
	b.WriteString(" fragment F30 on Q { leaf }")
	v := GraphQLLimits{MaxDepth: 10}.Check(GraphQLRequest{Query: b.String()})
	if v == nil || v.Code != GraphQLMaxDepthExceeded || !strings.Contains(v.Detail, "depth 31") {
		t.Fatalf("fragment fan-out: %+v", v)
	}
}

func TestParseGraphQLHTTP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, method, ct, body string
		query                  url.Values
		wantQuery, wantOp      string
		wantVar                string
		wantErr                string
	}{
		{name: "get", method: "GET", query: url.Values{"query": {"{a}"}, "operationName": {"Op"}, "variables": {`{"x":1}`}}, wantQuery: "{a}", wantOp: "Op", wantVar: "1"},
		{name: "get without query", method: "GET", query: url.Values{}, wantErr: "without a query"},
		{name: "get bad variables", method: "GET", query: url.Values{"query": {"{a}"}, "variables": {"[1]"}}, wantErr: "variables"},
		{name: "post json", method: "POST", ct: "application/json; charset=utf-8", body: `{"query":"{b}","operationName":"B","variables":{"x":2}}`, wantQuery: "{b}", wantOp: "B", wantVar: "2"},
		{name: "post json null variables", method: "POST", ct: "application/json", body: `{"query":"{b}","variables":null}`, wantQuery: "{b}"},
		{name: "post graphql", method: "POST", ct: "application/graphql", body: "{c}", query: url.Values{"operationName": {"C"}}, wantQuery: "{c}", wantOp: "C"},
		{name: "batch", method: "POST", ct: "application/json", body: `[{"query":"{a}"}]`, wantErr: "batched"},
		{name: "json without query", method: "POST", ct: "application/json", body: `{"q":"{a}"}`, wantErr: "without a \"query\""},
		{name: "bad json", method: "POST", ct: "application/json", body: `{`, wantErr: "JSON body"},
		{name: "other type", method: "POST", ct: "text/plain", body: `{a}`, wantErr: "content type"},
		{name: "put", method: "PUT", ct: "application/json", body: `{}`, wantErr: "GET or POST"},
		{name: "empty", method: "POST", ct: "application/graphql", body: "  ", wantErr: "empty query"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, err := ParseGraphQLHTTP(tt.method, tt.query, tt.ct, []byte(tt.body))
			if tt.wantErr != "" {
				var v *GraphQLViolation
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.As(err, &v) || v.Code != GraphQLInvalidPayload {
					t.Fatalf("err = %v, want an InvalidPayload violation with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if req.Query != tt.wantQuery || req.OperationName != tt.wantOp {
				t.Fatalf("req = %+v", req)
			}
			if tt.wantVar != "" {
				if got := req.Variables["x"]; got == nil || got.(interface{ String() string }).String() != tt.wantVar {
					t.Fatalf("variables = %v", req.Variables)
				}
			}
		})
	}
}

func TestGraphQLLimitsValidate(t *testing.T) {
	t.Parallel()
	for _, l := range []GraphQLLimits{{Action: "bogus"}, {OperationType: "delete"}, {Action: GraphQLActionVerify}, {MaxDepth: -1}} {
		if err := l.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want an error", l)
		}
	}
}
