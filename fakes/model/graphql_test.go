package model

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

// gqlConfig is the server of the GraphQL tests: two base model names, two
// adapters, a fixed pod.
var gqlConfig = Config{Model: "qwen", ServedModelNames: []string{"qwen", "llama"},
	LoRAModules: []string{"support-bot", "sql-lora"}, PodName: "vllm-sim-0", PodNamespace: "llm", Seed: 42}

// gqlPost sends a GraphQL request as application/json and returns the
// status and body.
func gqlPost(t testing.TB, h http.Handler, query string, vars map[string]any, header ...string) (int, string) {
	t.Helper()
	body := map[string]any{"query": query}
	if vars != nil {
		body["variables"] = vars
	}
	b, err := json.Marshal(body)
	require.NoError(t, err)
	return gqlDo(t, h, http.MethodPost, "/graphql", string(b), append([]string{"Content-Type", "application/json"}, header...)...)
}

// gqlDo sends one request to h and returns the status and body.
func gqlDo(t testing.TB, h http.Handler, method, target, body string, header ...string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func newGraphQLServer(t testing.TB, cfg Config) http.Handler {
	t.Helper()
	s, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s.Handler()
}

func TestGraphQLSchemaFile(t *testing.T) {
	t.Parallel()
	s, err := gqlparser.LoadSchema(&ast.Source{Name: "schema.graphql", Input: GraphQLSchema})
	require.NoError(t, err)
	require.NotNil(t, s.Query)
	require.NotNil(t, s.Mutation)
	assert.NotNil(t, s.Query.Fields.ForName("models"))
	assert.NotNil(t, s.Mutation.Fields.ForName("chat"))
}

func TestGraphQLQueries(t *testing.T) {
	t.Parallel()
	h := newGraphQLServer(t, gqlConfig)
	for _, tc := range []struct {
		name  string
		query string
		vars  map[string]any
		want  string
	}{
		{"models, as /v1/models lists them", `{ models { id ownedBy parent } }`, nil,
			`{"data":{"models":[
				{"id":"qwen","ownedBy":"vllm","parent":null},{"id":"llama","ownedBy":"vllm","parent":null},
				{"id":"support-bot","ownedBy":"vllm","parent":"qwen"},{"id":"sql-lora","ownedBy":"vllm","parent":"qwen"}]}}`},
		{"model by id", `{ model(id: "support-bot") { id parent } }`, nil,
			`{"data":{"model":{"id":"support-bot","parent":"qwen"}}}`},
		{"unknown model is null", `{ model(id: "gpt-9") { id } }`, nil, `{"data":{"model":null}}`},
		{"nested adapters", `{ model(id: "qwen") { id adapters { id parent adapters { id adapters { id } } } } }`, nil,
			`{"data":{"model":{"id":"qwen","adapters":[
				{"id":"support-bot","parent":"qwen","adapters":[]},{"id":"sql-lora","parent":"qwen","adapters":[]}]}}}`},
		{"aliases", `{ base: model(id: "qwen") { name: id } alias: model(id: "llama") { name: id kids: adapters { id } } }`, nil,
			`{"data":{"base":{"name":"qwen"},"alias":{"name":"llama","kids":[]}}}`},
		{"named and inline fragments, merged fields", `
			query { model(id: "qwen") { ...Card ... on Model { adapters { ...Card } } id } }
			fragment Card on Model { id ownedBy }`, nil,
			`{"data":{"model":{"id":"qwen","ownedBy":"vllm","adapters":[
				{"id":"support-bot","ownedBy":"vllm"},{"id":"sql-lora","ownedBy":"vllm"}]}}}`},
		{"variables with a default", `query Pick($id: ID!, $deep: Boolean = false) {
				model(id: $id) { id adapters @include(if: $deep) { id } parent @skip(if: $deep) } }`,
			map[string]any{"id": "qwen"},
			`{"data":{"model":{"id":"qwen","parent":null}}}`},
		{"variables given", `query Pick($id: ID!, $deep: Boolean = false) {
				model(id: $id) { id adapters @include(if: $deep) { id } parent @skip(if: $deep) } }`,
			map[string]any{"id": "qwen", "deep": true},
			`{"data":{"model":{"id":"qwen","adapters":[{"id":"support-bot"},{"id":"sql-lora"}]}}}`},
		{"__typename and server", `{ __typename server { __typename pod namespace running waiting } }`, nil,
			`{"data":{"__typename":"Query","server":{"__typename":"Server","pod":"vllm-sim-0","namespace":"llm","running":0,"waiting":0}}}`},
		{"introspection", `{ __schema { queryType { name } mutationType { name } subscriptionType { name } }
				__type(name: "Completion") { kind fields { name type { kind ofType { name } } } }
				none: __type(name: "Nope") { name } }`, nil,
			`{"data":{"__schema":{"queryType":{"name":"Query"},"mutationType":{"name":"Mutation"},"subscriptionType":null},
				"__type":{"kind":"OBJECT","fields":[
					{"name":"model","type":{"kind":"NON_NULL","ofType":{"name":"ID"}}},
					{"name":"text","type":{"kind":"NON_NULL","ofType":{"name":"String"}}},
					{"name":"promptTokens","type":{"kind":"NON_NULL","ofType":{"name":"Int"}}},
					{"name":"completionTokens","type":{"kind":"NON_NULL","ofType":{"name":"Int"}}},
					{"name":"totalTokens","type":{"kind":"NON_NULL","ofType":{"name":"Int"}}},
					{"name":"finishReason","type":{"kind":"NON_NULL","ofType":{"name":"String"}}}]},
				"none":null}}`},
		{"introspection of arguments", `{ __type(name: "Mutation") { fields { name args { name defaultValue type { name kind } } } } }`, nil,
			`{"data":{"__type":{"fields":[{"name":"chat","args":[
				{"name":"model","defaultValue":null,"type":{"name":null,"kind":"NON_NULL"}},
				{"name":"prompt","defaultValue":null,"type":{"name":null,"kind":"NON_NULL"}},
				{"name":"maxTokens","defaultValue":null,"type":{"name":"Int","kind":"SCALAR"}},
				{"name":"seed","defaultValue":null,"type":{"name":"Int","kind":"SCALAR"}}]}]}}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			status, body := gqlPost(t, h, tc.query, tc.vars)
			require.Equal(t, http.StatusOK, status, body)
			// Exactly, keys in the order the query asks for them (no
			// expected string holds a space).
			assert.Equal(t, strings.Join(strings.Fields(tc.want), "")+"\n", body)
		})
	}
}

func TestGraphQLTransports(t *testing.T) {
	t.Parallel()
	h := newGraphQLServer(t, gqlConfig)
	const query = `query One($id: ID!) { model(id: $id) { id } } query Two { server { pod } }`
	const wantOne = `{"data":{"model":{"id":"llama"}}}` + "\n"
	const wantTwo = `{"data":{"server":{"pod":"vllm-sim-0"}}}` + "\n"
	params := url.Values{"query": {query}, "operationName": {"One"}, "variables": {`{"id":"llama"}`}}

	t.Run("GET", func(t *testing.T) {
		t.Parallel()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/graphql?"+params.Encode(), nil))
		assert.Equal(t, http.StatusOK, rec.Code)
		assert.Equal(t, wantOne, rec.Body.String())
		assert.Equal(t, "application/json; charset=utf-8", rec.Header().Get("Content-Type"))
		assert.Equal(t, "vllm-sim-0", rec.Header().Get("x-inference-pod"), "the inference headers as on every response")
	})
	t.Run("POST application/json", func(t *testing.T) {
		t.Parallel()
		status, body := gqlDo(t, h, http.MethodPost, "/graphql",
			`{"query":`+jsonText(query)+`,"operationName":"Two","variables":null,"extensions":{}}`,
			"Content-Type", "application/json; charset=utf-8")
		assert.Equal(t, http.StatusOK, status)
		assert.Equal(t, wantTwo, body)
	})
	t.Run("POST application/graphql", func(t *testing.T) {
		t.Parallel()
		status, body := gqlDo(t, h, http.MethodPost, "/graphql?"+url.Values{"operationName": {"One"}, "variables": {`{"id":"llama"}`}}.Encode(),
			query, "Content-Type", "application/graphql")
		assert.Equal(t, http.StatusOK, status)
		assert.Equal(t, wantOne, body)
	})
	t.Run("Accept application/graphql-response+json", func(t *testing.T) {
		t.Parallel()
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(`{ server { pod } }`))
		req.Header.Set("Content-Type", "application/graphql")
		req.Header.Set("Accept", "application/graphql-response+json, application/json;q=0.9")
		h.ServeHTTP(rec, req)
		assert.Equal(t, http.StatusOK, rec.Code)
		assert.Equal(t, "application/graphql-response+json; charset=utf-8", rec.Header().Get("Content-Type"))
		assert.Equal(t, wantTwo, rec.Body.String())
	})

	for _, tc := range []struct {
		name, method, target, contentType, body string
		status                                  int
		want                                    string
	}{
		{"mutation over GET", http.MethodGet, "/graphql?" + url.Values{"query": {`mutation { chat(model: "qwen", prompt: "hi") { text } }`}}.Encode(), "", "",
			http.StatusMethodNotAllowed, `{"errors":[{"message":"Can only perform a mutation operation from a POST request.","locations":[{"line":1,"column":1}]}]}`},
		{"other method", http.MethodPut, "/graphql", "application/json", `{"query":"{ server { pod } }"}`,
			http.StatusMethodNotAllowed, `{"errors":[{"message":"method PUT is not allowed on /graphql; use GET or POST"}]}`},
		{"GET without query", http.MethodGet, "/graphql", "", "",
			http.StatusBadRequest, `{"errors":[{"message":"the URL has no \"query\" parameter"}]}`},
		{"GET with bad variables", http.MethodGet, "/graphql?query=%7Bserver%7Bpod%7D%7D&variables=%5B1%5D", "", "",
			http.StatusBadRequest, `{"errors":[{"message":"the \"variables\" parameter: must be a JSON object or null"}]}`},
		{"unsupported content type", http.MethodPost, "/graphql", "text/plain", `{ server { pod } }`,
			http.StatusUnsupportedMediaType, `{"errors":[{"message":"unsupported Content-Type \"text/plain\": send application/json ({\"query\":...}) or application/graphql (the query itself)"}]}`},
		{"malformed JSON", http.MethodPost, "/graphql", "application/json", `{"query":`,
			http.StatusBadRequest, `{"errors":[{"message":"malformed JSON in request body at byte 9: unexpected end of JSON input"}]}`},
		{"empty body", http.MethodPost, "/graphql", "application/json", ``,
			http.StatusBadRequest, `{"errors":[{"message":"request body is empty; expected a JSON object with \"query\""}]}`},
		{"no query", http.MethodPost, "/graphql", "application/json", `{"variables":{}}`,
			http.StatusBadRequest, `{"errors":[{"message":"request body has no \"query\""}]}`},
		{"query not a string", http.MethodPost, "/graphql", "application/json", `{"query":{"models":"id"}}`,
			http.StatusBadRequest, `{"errors":[{"message":"\"query\" must be a string"}]}`},
		{"variables not an object", http.MethodPost, "/graphql", "application/json", `{"query":"{ server { pod } }","variables":"x"}`,
			http.StatusBadRequest, `{"errors":[{"message":"\"variables\": must be a JSON object or null"}]}`},
		{"operationName not a string", http.MethodPost, "/graphql", "application/json", `{"query":"{ server { pod } }","operationName":1}`,
			http.StatusBadRequest, `{"errors":[{"message":"\"operationName\" must be a string or null"}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body))
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			h.ServeHTTP(rec, req)
			assert.Equal(t, tc.status, rec.Code)
			assert.Equal(t, tc.want+"\n", rec.Body.String())
			if tc.status == http.StatusMethodNotAllowed {
				assert.NotEmpty(t, rec.Header().Get("Allow"))
			}
		})
	}
}

func TestGraphQLErrors(t *testing.T) {
	t.Parallel()
	h := newGraphQLServer(t, gqlConfig)
	for _, tc := range []struct {
		name   string
		body   string
		status int
		want   string
	}{
		{"syntax error", `{"query":"{ models { id "}`, http.StatusBadRequest,
			`{"errors":[{"message":"Expected Name, found \u003cEOF\u003e","locations":[{"line":1,"column":15}]}]}`},
		{"unknown field", `{"query":"{ models { id name } }"}`, http.StatusBadRequest,
			`{"errors":[{"message":"Cannot query field \"name\" on type \"Model\".","locations":[{"line":1,"column":15}]}]}`},
		{"missing variable", `{"query":"query ($id: ID!) { model(id: $id) { id } }"}`, http.StatusBadRequest,
			`{"errors":[{"message":"Variable \"$id\" of required type \"ID!\" was not provided.","locations":[{"line":1,"column":8}]}]}`},
		{"null variable", `{"query":"query ($id: ID!) { model(id: $id) { id } }","variables":{"id":null}}`, http.StatusBadRequest,
			`{"errors":[{"message":"Variable \"$id\" of non-null type \"ID!\" must not be null.","locations":[{"line":1,"column":8}]}]}`},
		{"variable of the wrong type", `{"query":"mutation ($n: Int) { chat(model: \"qwen\", prompt: \"hi\", maxTokens: $n) { text } }","variables":{"n":"five"}}`,
			http.StatusBadRequest,
			`{"errors":[{"message":"Variable \"$n\" got invalid value \"five\"; Int cannot represent non-integer value: \"five\"","locations":[{"line":1,"column":11}]}]}`},
		{"variable out of range", `{"query":"mutation ($n: Int) { chat(model: \"qwen\", prompt: \"hi\", maxTokens: $n) { text } }","variables":{"n":3000000000}}`,
			http.StatusBadRequest,
			`{"errors":[{"message":"Variable \"$n\" got invalid value 3000000000; Int cannot represent non 32-bit signed integer value: 3000000000","locations":[{"line":1,"column":11}]}]}`},
		{"argument of the wrong type", `{"query":"mutation { chat(model: \"qwen\", prompt: 5) { text } }"}`, http.StatusBadRequest,
			`{"errors":[{"message":"String cannot represent a non string value: 5","locations":[{"line":1,"column":40}]}]}`},
		{"several operations, no name", `{"query":"query A { server { pod } } query B { models { id } }"}`, http.StatusBadRequest,
			`{"errors":[{"message":"Must provide operation name if query contains multiple operations."}]}`},
		{"unknown operation name", `{"query":"query A { server { pod } }","operationName":"B"}`, http.StatusBadRequest,
			`{"errors":[{"message":"Unknown operation named \"B\"."}]}`},
		{"empty document", `{"query":"  "}`, http.StatusBadRequest,
			`{"errors":[{"message":"The document holds no operation."}]}`},
		{"fragment cycle", `{"query":"{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }"}`, http.StatusBadRequest,
			`{"errors":[{"message":"Cannot spread fragment \"A\" within itself via \"B\".","locations":[{"line":1,"column":64}]}]}`},
		{"recursive fragment", `{"query":"{ models { ...M } } fragment M on Model { adapters { ...M } }"}`, http.StatusBadRequest,
			`{"errors":[{"message":"Cannot spread fragment \"M\" within itself.","locations":[{"line":1,"column":57}]}]}`},
		{"subscription", `{"query":"subscription { models { id } }"}`, http.StatusBadRequest,
			`{"errors":[{"message":"Schema does not support operation type \"subscription\"","locations":[{"line":1,"column":1}]}]}`},
		{"unknown model in chat: a field error", `{"query":"mutation { chat(model: \"gpt-9\", prompt: \"hi\") { text } }"}`, http.StatusOK,
			`{"errors":[{"message":"The model ` + "`gpt-9`" + ` does not exist.","locations":[{"line":1,"column":12}],"path":["chat"],"extensions":{"code":"NotFoundError","status":404}}],"data":null}`},
		{"maxTokens below 1", `{"query":"mutation { chat(model: \"qwen\", prompt: \"hi\", maxTokens: 0) { text } }"}`, http.StatusOK,
			`{"errors":[{"message":"max_tokens must be at least 1, got 0.","locations":[{"line":1,"column":12}],"path":["chat"],"extensions":{"code":"BadRequestError","status":400}}],"data":null}`},
		{"a failed chat nulls the data (chat is non-null)", `{"query":"mutation { ok: chat(model: \"qwen\", prompt: \"[[gatecheck:say fine]]\") { text } bad: chat(model: \"gpt-9\", prompt: \"hi\") { text } }"}`,
			http.StatusOK,
			`{"errors":[{"message":"The model ` + "`gpt-9`" + ` does not exist.","locations":[{"line":1,"column":79}],"path":["bad"],"extensions":{"code":"NotFoundError","status":404}}],"data":null}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			status, body := gqlDo(t, h, http.MethodPost, "/graphql", tc.body, "Content-Type", "application/json")
			assert.Equal(t, tc.status, status)
			assert.Equal(t, tc.want+"\n", body)
		})
	}

	t.Run("X-Return-Error", func(t *testing.T) {
		t.Parallel()
		status, body := gqlPost(t, h, `{ server { pod } }`, nil, "X-Return-Error", "503")
		assert.Equal(t, http.StatusServiceUnavailable, status)
		assert.Equal(t, `{"errors":[{"message":"Service Unavailable (forced by X-Return-Error)"}]}`+"\n", body)
	})
	t.Run("closed server", func(t *testing.T) {
		t.Parallel()
		s, err := New(gqlConfig)
		require.NoError(t, err)
		s.Close()
		status, body := gqlPost(t, s.Handler(), `{ server { pod } }`, nil)
		assert.Equal(t, http.StatusServiceUnavailable, status)
		assert.Equal(t, `{"errors":[{"message":"`+errClosed.Error()+`"}]}`+"\n", body)
	})
}

// TestGraphQLChatMatchesChatCompletions: the chat mutation runs the
// generation /v1/chat/completions runs for one user message, so text and
// usage agree for the same prompt and seed.
func TestGraphQLChatMatchesChatCompletions(t *testing.T) {
	t.Parallel()
	_, ts := newTestServer(t, gqlConfig)
	const prompt = "Summarise the quarterly report in three sentences, please."
	for _, tc := range []struct {
		name      string
		model     string
		seed      *int
		maxTokens int
	}{
		{name: "server seed", model: "qwen"},
		{name: "request seed", model: "llama", seed: ptr(7)},
		{name: "adapter, cut by maxTokens", model: "support-bot", seed: ptr(3), maxTokens: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := chatBody(tc.model, prompt, tc.maxTokens)
			vars := map[string]any{"model": tc.model, "prompt": prompt}
			if tc.seed != nil {
				body["seed"] = *tc.seed
				vars["seed"] = *tc.seed
			}
			if tc.maxTokens > 0 {
				vars["maxTokens"] = tc.maxTokens
			}
			var openai chatResult
			require.Equal(t, http.StatusOK, postDecode(t, ts.URL+"/v1/chat/completions", body, &openai))

			var got struct {
				Data struct {
					Chat struct {
						Model            string `json:"model"`
						Text             string `json:"text"`
						PromptTokens     int    `json:"promptTokens"`
						CompletionTokens int    `json:"completionTokens"`
						TotalTokens      int    `json:"totalTokens"`
						FinishReason     string `json:"finishReason"`
					} `json:"chat"`
				} `json:"data"`
				Errors []any `json:"errors"`
			}
			status := postDecode(t, ts.URL+"/graphql", map[string]any{
				"query": `mutation Chat($model: ID!, $prompt: String!, $maxTokens: Int, $seed: Int) {
					chat(model: $model, prompt: $prompt, maxTokens: $maxTokens, seed: $seed) {
						model text promptTokens completionTokens totalTokens finishReason } }`,
				"variables": vars,
			}, &got)
			require.Equal(t, http.StatusOK, status)
			require.Empty(t, got.Errors)
			c := got.Data.Chat
			assert.Equal(t, tc.model, c.Model)
			assert.Equal(t, openai.Choices[0].Message.Content, c.Text)
			assert.Equal(t, openai.Choices[0].FinishReason, c.FinishReason)
			assert.Equal(t, usage{PromptTokens: c.PromptTokens, CompletionTokens: c.CompletionTokens, TotalTokens: c.TotalTokens}, openai.Usage)
			if tc.maxTokens > 0 {
				assert.Equal(t, "length", c.FinishReason)
				assert.Equal(t, tc.maxTokens, c.CompletionTokens)
			}
		})
	}
}

// TestGraphQLChatTakesASlot: a chat mutation holds a running slot while it
// generates, as completions do.
func TestGraphQLChatTakesASlot(t *testing.T) {
	t.Parallel()
	cfg := gqlConfig
	cfg.MaxNumSeqs = 1
	cfg.TimeToFirstToken = 300 * time.Millisecond
	_, ts := newTestServer(t, cfg)
	ch := start(context.Background(), ts.URL+"/graphql", map[string]any{
		"query": `mutation { chat(model: "qwen", prompt: "[[gatecheck:say slot held]]") { text completionTokens } }`,
	}, "Content-Type", "application/json")
	eventually(t, "the chat mutation to run", func() bool {
		running, _ := load(t, ts.URL)
		return running == 1
	})
	// Meanwhile the server shows the load through GraphQL too.
	resp := post(t, context.Background(), ts.URL+"/graphql", map[string]any{"query": `{ server { running } }`})
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, `{"data":{"server":{"running":1}}}`+"\n", string(b))
	res := <-ch
	require.NoError(t, res.err)
	require.Equal(t, http.StatusOK, res.status, string(res.body))
	assert.Equal(t, `{"data":{"chat":{"text":"slot held","completionTokens":2}}}`+"\n", string(res.body))
	running, _ := load(t, ts.URL)
	assert.Zero(t, running)
}

// nest is { models { adapters { ... { id } } } } with the id field at the
// given depth (at least 2).
func nest(depth int) string {
	return "{ models { " + strings.Repeat("adapters { ", depth-2) + "id" + strings.Repeat(" }", depth-1) + " }"
}

func TestGraphQLLimits(t *testing.T) {
	t.Parallel()
	h := newGraphQLServer(t, gqlConfig)

	t.Run("64 levels run", func(t *testing.T) {
		t.Parallel()
		status, body := gqlDo(t, h, http.MethodPost, "/graphql", nest(graphQLMaxDepth), "Content-Type", "application/graphql")
		assert.Equal(t, http.StatusOK, status)
		assert.True(t, strings.HasPrefix(body, `{"data":{"models":[{"adapters":[{"adapters":[]}`), body)
	})
	t.Run("200 levels are refused", func(t *testing.T) {
		t.Parallel()
		q := nest(200)
		status, body := gqlDo(t, h, http.MethodPost, "/graphql", q, "Content-Type", "application/graphql")
		assert.Equal(t, http.StatusBadRequest, status)
		// The 64th adapters field, after "{ models { " and 63 "adapters { ".
		col := len("{ models { ") + 63*len("adapters { ") + 1
		assert.Equal(t, `{"errors":[{"message":"Query is too deep: field \"adapters\" is at depth 65, and this server allows 64.","locations":[{"line":1,"column":`+
			itoa(col)+`}]}]}`+"\n", body)
	})
	t.Run("200 levels through fragments are refused", func(t *testing.T) {
		t.Parallel()
		var q strings.Builder
		q.WriteString("{ models { ...F0 } }\n")
		for i := range 200 {
			q.WriteString("fragment F" + itoa(i) + " on Model { adapters { ")
			if i < 199 {
				q.WriteString("...F" + itoa(i+1))
			} else {
				q.WriteString("id")
			}
			q.WriteString(" } }\n")
		}
		status, body := gqlDo(t, h, http.MethodPost, "/graphql", q.String(), "Content-Type", "application/graphql")
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Contains(t, body, `"message":"Query is too deep: field \"adapters\" is at depth 65, and this server allows 64."`)
	})
	t.Run("nesting beyond the parser's limit", func(t *testing.T) {
		t.Parallel()
		status, body := gqlDo(t, h, http.MethodPost, "/graphql", nest(5000), "Content-Type", "application/graphql")
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Contains(t, body, `"message":"exceeded maximum nesting depth of 1000"`)
	})
	t.Run("too many tokens", func(t *testing.T) {
		t.Parallel()
		q := "{ " + strings.Repeat("__typename ", graphQLTokenLimit) + "}"
		status, body := gqlDo(t, h, http.MethodPost, "/graphql", q, "Content-Type", "application/graphql")
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Equal(t, `{"errors":[{"message":"exceeded token limit of 15000"}]}`+"\n", body)
	})
	// A fragment of 100 fields spread under many aliased fields.
	fanOut := func(copies int) string {
		var q strings.Builder
		q.WriteString("{ ")
		for i := range copies {
			q.WriteString("m" + itoa(i) + ": models { ...F } ")
		}
		q.WriteString("}\nfragment F on Model { ")
		for i := range 100 {
			q.WriteString("f" + itoa(i) + ": id ")
		}
		q.WriteString("}")
		return q.String()
	}
	t.Run("too many selections", func(t *testing.T) {
		t.Parallel()
		status, body := gqlDo(t, h, http.MethodPost, "/graphql", fanOut(100), "Content-Type", "application/graphql")
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Contains(t, body, `"message":"Query is too large: more than 10000 selections once fragments are expanded."`)
	})
	t.Run("too many fields resolved", func(t *testing.T) {
		t.Parallel()
		// 30 × (1 + 4 models × 100) fields: under the selection limit, over
		// the field limit once the lists are resolved.
		status, body := gqlDo(t, h, http.MethodPost, "/graphql", fanOut(30), "Content-Type", "application/graphql")
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Equal(t, `{"errors":[{"message":"Query resolves too many fields: more than 10000."}]}`+"\n", body)
	})
	t.Run("deep introspection", func(t *testing.T) {
		t.Parallel()
		status, body := gqlDo(t, h, http.MethodPost, "/graphql",
			`{ __schema { types { fields { type { fields { type { fields { type { fields { name } } } } } } } } } }`,
			"Content-Type", "application/graphql")
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Contains(t, body, `"message":"Maximum introspection depth exceeded"`)
	})
}

func itoa(i int) string { return strconv.Itoa(i) }

// FuzzGraphQL sends arbitrary queries and bodies: /graphql must never panic
// and must answer 200 or a 4xx.
func FuzzGraphQL(f *testing.F) {
	for _, seed := range []string{
		`{ models { id ownedBy parent adapters { id adapters { id } } } server { pod running } }`,
		`query Q($id: ID!, $d: Boolean = true) { model(id: $id) { ...F ... on Model @include(if: $d) { adapters { ...F } } } } fragment F on Model { id }`,
		`mutation { chat(model: "qwen", prompt: "[[gatecheck:say hi]]", maxTokens: 2, seed: 1) { text totalTokens finishReason } }`,
		`mutation { a: chat(model: "nope", prompt: "x") { text } b: chat(model: "qwen", prompt: "y", maxTokens: 0) { text } }`,
		`{ __schema { types { name kind fields { name type { kind ofType { name } } } } directives { name args { name defaultValue } } } }`,
		`{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }`,
		`{ models { ...M } } fragment M on Model { adapters { ...M } }`,
		`{"query":"{ server { pod } }","variables":{"x":[1,{"y":null}]}}`,
		`{"query":"query($n: Int){ __typename }","variables":{"n":1e400}}`,
		nest(70), `{ models { id `, `subscription { models { id } }`, `{ __type(name: "__Type") { name } }`,
		``, `{`, `}`, "\xff\xfe", `query ($a: [Int!]! = [1, 2]) { __typename }`,
	} {
		f.Add(seed, `{"id":"qwen","d":false}`)
	}
	s, err := New(Config{Model: "qwen", LoRAModules: []string{"sql-lora"}, MaxModelLen: 256})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(s.Close)
	h := s.Handler()
	check := func(t *testing.T, what string, rec *httptest.ResponseRecorder) {
		t.Helper()
		if rec.Code != http.StatusOK && (rec.Code < 400 || rec.Code > 499) {
			t.Fatalf("%s answered %d: %s", what, rec.Code, rec.Body.String())
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s answered invalid JSON: %q", what, rec.Body.String())
		}
	}
	f.Fuzz(func(t *testing.T, query, variables string) {
		// The query as a raw application/graphql body, inside a JSON body,
		// and in a GET URL; the second string as variables and as a whole
		// JSON body.
		body, _ := json.Marshal(map[string]any{"query": query, "variables": json.RawMessage(variables)})
		if !json.Valid([]byte(variables)) {
			body, _ = json.Marshal(map[string]any{"query": query})
		}
		for _, tc := range []struct {
			method, target, contentType, body string
		}{
			{http.MethodPost, "/graphql", "application/graphql", query},
			{http.MethodPost, "/graphql", "application/json", string(body)},
			{http.MethodPost, "/graphql", "application/json", variables},
			{http.MethodGet, "/graphql?" + url.Values{"query": {query}, "variables": {variables}}.Encode(), "", ""},
		} {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body))
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			h.ServeHTTP(rec, req)
			check(t, tc.method+" "+tc.contentType, rec)
		}
	})
}
