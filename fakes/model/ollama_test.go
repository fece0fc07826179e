package model

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ollama/ollama/api"
	"github.com/stretchr/testify/require"
)

// ollamaClient is the real Ollama client pointed at ts.
func ollamaClient(t *testing.T, baseURL string) *api.Client {
	t.Helper()
	u, err := url.Parse(baseURL)
	require.NoError(t, err)
	return api.NewClient(u, http.DefaultClient)
}

func ptr[T any](v T) *T { return &v }

func TestOllamaChat(t *testing.T) {
	t.Parallel()
	_, ts := newTestServer(t, Config{ServedModelNames: []string{"qwen:0.5b"}, LoRAModules: []string{"sql-lora"}})
	c := ollamaClient(t, ts.URL)
	card := "Card 4111 1111 1111 1111"
	for _, tc := range []struct {
		name        string
		model       string
		content     string
		options     map[string]any
		wantContent string // checked when not empty
		wantReason  string
		wantEval    int // checked when not zero
	}{
		{name: "random", model: "qwen", content: "Why is the sky blue?", wantReason: "stop"},
		{name: "served name", model: "qwen:0.5b", content: "Why is the sky blue?", wantReason: "stop"},
		{name: "latest tag", model: "qwen:latest", content: "Why is the sky blue?", wantReason: "stop"},
		{name: "adapter", model: "sql-lora", content: "SELECT 1", wantReason: "stop"},
		{name: "num_predict", model: "qwen", content: "Why?", options: map[string]any{"num_predict": 4}, wantReason: "length", wantEval: 4},
		{name: "canned", model: "qwen", content: "[[gatecheck:say " + card + "]]", wantContent: card, wantReason: "stop", wantEval: CountTokens(card)},
		{name: "stop option", model: "qwen", content: "[[gatecheck:say " + card + "]]", options: map[string]any{"stop": []string{" 1111"}},
			wantContent: "Card 4111", wantReason: "stop"},
		{name: "seed option", model: "qwen", content: "Why?", options: map[string]any{"seed": 5}, wantReason: "stop"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := &api.ChatRequest{Model: tc.model, Messages: []api.Message{
				{Role: "system", Content: "You are terse."},
				{Role: "user", Content: tc.content},
			}, Options: tc.options}

			// Streamed (the default): one line per token, then done.
			var chunks []api.ChatResponse
			require.NoError(t, c.Chat(context.Background(), req, func(r api.ChatResponse) error {
				chunks = append(chunks, r)
				return nil
			}))
			require.GreaterOrEqual(t, len(chunks), 1)
			final := chunks[len(chunks)-1]
			var streamed strings.Builder
			for _, ch := range chunks[:len(chunks)-1] {
				require.False(t, ch.Done)
				require.Equal(t, "assistant", ch.Message.Role)
				require.Equal(t, tc.model, ch.Model)
				streamed.WriteString(ch.Message.Content)
			}
			require.True(t, final.Done)
			require.Empty(t, final.Message.Content)
			require.Equal(t, tc.wantReason, final.DoneReason)
			require.Equal(t, len(chunks)-1, final.EvalCount, "one line per token")
			require.Equal(t, CountTokens("You are terse.")+CountTokens(tc.content), final.PromptEvalCount)
			require.Positive(t, final.TotalDuration)
			require.Positive(t, final.LoadDuration)
			require.Positive(t, final.PromptEvalDuration)
			require.Positive(t, final.EvalDuration)
			require.GreaterOrEqual(t, final.TotalDuration, final.EvalDuration)

			// Not streamed: one done object with the same text.
			req.Stream = ptr(false)
			var single []api.ChatResponse
			require.NoError(t, c.Chat(context.Background(), req, func(r api.ChatResponse) error {
				single = append(single, r)
				return nil
			}))
			require.Len(t, single, 1)
			require.True(t, single[0].Done)
			require.Equal(t, streamed.String(), single[0].Message.Content)
			require.Equal(t, final.EvalCount, single[0].EvalCount)
			require.Equal(t, CountTokens(streamed.String()), single[0].EvalCount)
			require.Equal(t, tc.wantReason, single[0].DoneReason)
			if tc.wantContent != "" {
				require.Equal(t, tc.wantContent, streamed.String())
			}
			if tc.wantEval != 0 {
				require.Equal(t, tc.wantEval, final.EvalCount)
			}
		})
	}
}

func TestOllamaGenerate(t *testing.T) {
	t.Parallel()
	_, ts := newTestServer(t, Config{Mode: ModeEcho})
	c := ollamaClient(t, ts.URL)
	for _, stream := range []bool{true, false} {
		var got []api.GenerateResponse
		require.NoError(t, c.Generate(context.Background(), &api.GenerateRequest{
			Model: "qwen", Prompt: "Repeat after me: streaming works", Stream: ptr(stream),
			Options: map[string]any{"num_predict": 5},
		}, func(r api.GenerateResponse) error {
			got = append(got, r)
			return nil
		}))
		var text strings.Builder
		for _, r := range got {
			text.WriteString(r.Response)
		}
		final := got[len(got)-1]
		require.Equal(t, "Repeat after me", text.String()) // "Repe", "at", " afte", "r", " me"
		require.True(t, final.Done)
		require.Equal(t, "length", final.DoneReason)
		require.Equal(t, 5, final.EvalCount)
		require.Equal(t, CountTokens("Repeat after me: streaming works"), final.PromptEvalCount)
		if stream {
			require.Len(t, got, 6)
		} else {
			require.Len(t, got, 1)
		}
	}

	// An empty prompt loads the model, as Ollama does.
	var load []api.GenerateResponse
	require.NoError(t, c.Generate(context.Background(), &api.GenerateRequest{Model: "qwen"}, func(r api.GenerateResponse) error {
		load = append(load, r)
		return nil
	}))
	require.Len(t, load, 1)
	require.True(t, load[0].Done)
	require.Equal(t, "load", load[0].DoneReason)
}

func TestOllamaListShowVersion(t *testing.T) {
	t.Parallel()
	_, ts := newTestServer(t, Config{ServedModelNames: []string{"qwen:0.5b"}, LoRAModules: []string{"sql-lora"}, MaxModelLen: 512})
	c := ollamaClient(t, ts.URL)
	ctx := context.Background()

	require.NoError(t, c.Heartbeat(ctx))
	v, err := c.Version(ctx)
	require.NoError(t, err)
	require.Equal(t, ollamaVersion, v)

	list, err := c.List(ctx)
	require.NoError(t, err)
	var names []string
	for _, m := range list.Models {
		names = append(names, m.Name)
		require.Equal(t, m.Name, m.Model)
		require.Len(t, m.Digest, 64)
		require.False(t, m.ModifiedAt.IsZero())
	}
	require.Equal(t, []string{"qwen", "qwen:0.5b", "sql-lora"}, names)
	require.Equal(t, "qwen", list.Models[2].Details.ParentModel)

	show, err := c.Show(ctx, &api.ShowRequest{Model: "qwen:0.5b"})
	require.NoError(t, err)
	require.Equal(t, "num_ctx 512", show.Parameters)
	require.Equal(t, "gguf", show.Details.Format)
	require.EqualValues(t, 512, show.ModelInfo["gatecheck.context_length"])

	_, err = c.Show(ctx, &api.ShowRequest{Model: "llama3"})
	var se api.StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusNotFound, se.StatusCode)
	require.Equal(t, "model 'llama3' not found", se.ErrorMessage)
}

func TestOllamaErrors(t *testing.T) {
	t.Parallel()
	_, ts := newTestServer(t, Config{MaxModelLen: 32})
	c := ollamaClient(t, ts.URL)
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		req     *api.ChatRequest
		status  int
		message string
	}{
		{"unknown model", &api.ChatRequest{Model: "llama3", Messages: []api.Message{{Role: "user", Content: "hi"}}},
			404, `model "llama3" not found, try pulling it first`},
		{"no model", &api.ChatRequest{Messages: []api.Message{{Role: "user", Content: "hi"}}}, 400, "model is required"},
		{"bad option", &api.ChatRequest{Model: "qwen", Messages: []api.Message{{Role: "user", Content: "hi"}},
			Options: map[string]any{"num_predict": "many"}}, 400, `option "num_predict" must be an integer`},
		{"long prompt", &api.ChatRequest{Model: "qwen", Messages: []api.Message{{Role: "user", Content: strings.Repeat("a ", 40)}}},
			400, "context length of 32"},
	} {
		for _, stream := range []bool{true, false} {
			tc.req.Stream = ptr(stream)
			err := c.Chat(ctx, tc.req, func(api.ChatResponse) error { return nil })
			var se api.StatusError
			require.ErrorAs(t, err, &se, tc.name)
			require.Equal(t, tc.status, se.StatusCode, tc.name)
			require.Contains(t, se.ErrorMessage, tc.message, tc.name)
		}
	}

	// Raw bodies the client would never send.
	for _, tc := range []struct {
		name, path, body string
		header           []string
		status           int
		message          string
	}{
		{"malformed chat", "/api/chat", `{"model":"qwen","messages":[`, nil, 400, "malformed JSON in request body"},
		{"malformed generate", "/api/generate", `{"model":}`, nil, 400, "malformed JSON in request body at byte 10"},
		{"wrong type", "/api/generate", `{"model":"qwen","prompt":1}`, nil, 400, `field "prompt" must be a string, got a JSON number`},
		{"malformed show", "/api/show", `nope`, nil, 400, "malformed JSON"},
		{"forced", "/api/chat", `{}`, []string{"X-Return-Error", "503"}, 503, "forced by X-Return-Error"},
	} {
		var got struct {
			Error string `json:"error"`
		}
		status := postDecode(t, ts.URL+tc.path, tc.body, &got, tc.header...)
		require.Equal(t, tc.status, status, tc.name)
		require.Contains(t, got.Error, tc.message, tc.name)
	}

	_, failing := newTestServer(t, Config{FailureInjectionRate: 100})
	err := ollamaClient(t, failing.URL).Generate(ctx, &api.GenerateRequest{Model: "qwen", Prompt: "hi"},
		func(api.GenerateResponse) error { return nil })
	var se api.StatusError
	require.True(t, errors.As(err, &se), "%v", err)
	require.Contains(t, []int{429, 500, 503}, se.StatusCode)
}
