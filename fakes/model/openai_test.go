package model

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// chatBody is a one-message chat request; maxTokens 0 leaves max_tokens out.
func chatBody(model, content string, maxTokens int) map[string]any {
	b := map[string]any{"model": model, "messages": []map[string]any{{"role": "user", "content": content}}}
	if maxTokens > 0 {
		b["max_tokens"] = maxTokens
	}
	return b
}

// with returns a copy of body with the given fields set.
func with(body map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range body {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

type chatResult struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index   int `json:"index"`
		Message struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"message"`
		Text         string `json:"text"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage usage `json:"usage"`
}

func TestChatCompletion(t *testing.T) {
	t.Parallel()
	_, random := newTestServer(t, Config{ServedModelNames: []string{"qwen", "qwen-alias"}})
	_, echo := newTestServer(t, Config{Mode: ModeEcho})
	card := "Your card is 4111 1111 1111 1111, expiring 12/29."
	for _, tc := range []struct {
		name        string
		url         string
		body        map[string]any
		wantContent string // checked when not empty
		wantFinish  string
		wantTokens  int // checked when not zero
	}{
		{name: "random", url: random.URL, body: chatBody("qwen", "Hello there", 0), wantFinish: "stop"},
		{name: "alias", url: random.URL, body: chatBody("qwen-alias", "Hello there", 0), wantFinish: "stop"},
		{name: "max tokens", url: random.URL, body: chatBody("qwen", "Hello there", 5), wantFinish: "length", wantTokens: 5},
		{name: "max completion tokens wins", url: random.URL,
			body: with(chatBody("qwen", "Hello there", 9), "max_completion_tokens", 3), wantFinish: "length", wantTokens: 3},
		{name: "canned", url: random.URL, body: chatBody("qwen", "Please [[gatecheck:say "+card+"]] now", 0),
			wantContent: card, wantFinish: "stop", wantTokens: CountTokens(card)},
		{name: "canned cut by max tokens", url: random.URL, body: chatBody("qwen", "[[gatecheck:say "+card+"]]", 4),
			wantContent: "Your card is 4111", wantFinish: "length", wantTokens: 4},
		{name: "canned stop string", url: random.URL,
			body:        with(chatBody("qwen", "[[gatecheck:say "+card+"]]", 0), "stop", "1111"),
			wantContent: "Your card is 4111 ", wantFinish: "stop"},
		{name: "canned earliest of stops", url: random.URL,
			body:        with(chatBody("qwen", "[[gatecheck:say "+card+"]]", 0), "stop", []string{"expiring", "card"}),
			wantContent: "Your ", wantFinish: "stop"},
		{name: "echo", url: echo.URL, body: chatBody("qwen", "Echo me, please.", 0),
			wantContent: "Echo me, please.", wantFinish: "stop", wantTokens: 6},
		{name: "echo content parts", url: echo.URL, body: map[string]any{"model": "qwen", "messages": []any{
			map[string]any{"role": "system", "content": "be brief"},
			map[string]any{"role": "user", "content": []any{
				map[string]any{"type": "text", "text": "part one"},
				map[string]any{"type": "image_url", "image_url": map[string]any{"url": "data:"}},
				map[string]any{"type": "text", "text": "part two"},
			}},
		}}, wantContent: "part one\npart two", wantFinish: "stop"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got chatResult
			resp := post(t, context.Background(), tc.url+"/v1/chat/completions", tc.body)
			defer resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))

			require.True(t, strings.HasPrefix(got.ID, "chatcmpl-"), got.ID)
			require.Equal(t, "chat.completion", got.Object)
			require.NotZero(t, got.Created)
			require.Equal(t, tc.body["model"], got.Model)
			require.Len(t, got.Choices, 1)
			c := got.Choices[0]
			require.Equal(t, 0, c.Index)
			require.Equal(t, "assistant", c.Message.Role)
			require.Equal(t, tc.wantFinish, c.FinishReason)
			if tc.wantContent != "" {
				require.Equal(t, tc.wantContent, c.Message.Content)
			}
			require.Equal(t, CountTokens(c.Message.Content), got.Usage.CompletionTokens)
			if tc.wantTokens != 0 {
				require.Equal(t, tc.wantTokens, got.Usage.CompletionTokens)
			}
			if tc.name == "random" {
				require.GreaterOrEqual(t, got.Usage.CompletionTokens, minRandomTokens)
				require.LessOrEqual(t, got.Usage.CompletionTokens, maxRandomTokens)
			}
			if msgs, ok := tc.body["messages"].([]map[string]any); ok {
				prompt := 0
				for _, m := range msgs {
					prompt += CountTokens(m["content"].(string))
				}
				require.Equal(t, prompt, got.Usage.PromptTokens)
			}
			require.Equal(t, got.Usage.PromptTokens+got.Usage.CompletionTokens, got.Usage.TotalTokens)
		})
	}
}

func TestChatCompletionExactShape(t *testing.T) {
	t.Parallel()
	_, ts := newTestServer(t, Config{})
	var got map[string]any
	require.Equal(t, http.StatusOK, postDecode(t, ts.URL+"/v1/chat/completions", chatBody("qwen", "[[gatecheck:say Hi there]]", 0), &got))
	delete(got, "id")
	delete(got, "created")
	require.Equal(t, map[string]any{
		"object": "chat.completion",
		"model":  "qwen",
		"choices": []any{map[string]any{
			"index": 0.0, "message": map[string]any{"role": "assistant", "content": "Hi there"},
			"logprobs": nil, "finish_reason": "stop",
		}},
		"usage": map[string]any{"prompt_tokens": 12.0, "completion_tokens": 3.0, "total_tokens": 15.0}, // "Hi", " ther", "e"
	}, got)
}

// chunk is a streamed chat or completion event.
type chunk struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Model   string `json:"model"`
	Choices []struct {
		Delta struct {
			Role    *string `json:"role"`
			Content string  `json:"content"`
		} `json:"delta"`
		Text         string  `json:"text"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *usage `json:"usage"`
}

func TestStreamMatchesNonStreamed(t *testing.T) {
	t.Parallel()
	_, ts := newTestServer(t, Config{LoRAModules: []string{"sql-lora"}})
	for _, tc := range []struct {
		name         string
		path         string
		body         map[string]any
		includeUsage bool
	}{
		{"chat", "/v1/chat/completions", chatBody("qwen", "Tell me a story", 0), false},
		{"chat usage", "/v1/chat/completions", chatBody("qwen", "Tell me a story", 0), true},
		{"chat max tokens", "/v1/chat/completions", chatBody("qwen", "Tell me a story", 7), true},
		{"chat seed", "/v1/chat/completions", with(chatBody("qwen", "Tell me a story", 0), "seed", 99), true},
		{"chat adapter", "/v1/chat/completions", chatBody("sql-lora", "SELECT", 0), true},
		{"chat canned", "/v1/chat/completions", chatBody("qwen", "[[gatecheck:say one two three]]", 0), true},
		{"chat empty answer", "/v1/chat/completions", with(chatBody("qwen", "[[gatecheck:say stop here]]", 0), "stop", "stop"), true},
		{"completion", "/v1/completions", map[string]any{"model": "qwen", "prompt": "Once upon a time"}, false},
		{"completion usage", "/v1/completions", map[string]any{"model": "qwen", "prompt": []string{"Once", "upon"}, "max_tokens": 6}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			chat := tc.path == "/v1/chat/completions"
			var plain chatResult
			require.Equal(t, http.StatusOK, postDecode(t, ts.URL+tc.path, tc.body, &plain))
			want := plain.Choices[0].Text
			if chat {
				want = plain.Choices[0].Message.Content
			}

			body := with(tc.body, "stream", true)
			if tc.includeUsage {
				body["stream_options"] = map[string]any{"include_usage": true}
			}
			resp := post(t, context.Background(), ts.URL+tc.path, body)
			defer resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
			events := readSSE(t, resp.Body)

			if tc.includeUsage {
				last := events[len(events)-1]
				events = events[:len(events)-1]
				var u chunk
				require.NoError(t, json.Unmarshal([]byte(last), &u))
				require.Empty(t, u.Choices)
				require.NotNil(t, u.Usage)
				require.Equal(t, plain.Usage, *u.Usage)
				require.Contains(t, last, `"choices":[]`)
			}
			var text strings.Builder
			for i, ev := range events {
				var c chunk
				require.NoError(t, json.Unmarshal([]byte(ev), &c), ev)
				require.Equal(t, plain.Model, c.Model)
				require.Len(t, c.Choices, 1)
				if chat {
					require.Equal(t, "chat.completion.chunk", c.Object)
					require.Equal(t, i == 0, c.Choices[0].Delta.Role != nil, "role only in the first delta")
					text.WriteString(c.Choices[0].Delta.Content)
				} else {
					require.Equal(t, "text_completion", c.Object)
					text.WriteString(c.Choices[0].Text)
				}
				if i == len(events)-1 {
					require.NotNil(t, c.Choices[0].FinishReason)
					require.Equal(t, plain.Choices[0].FinishReason, *c.Choices[0].FinishReason)
				} else {
					require.Nil(t, c.Choices[0].FinishReason)
				}
				// With include_usage every other chunk says "usage": null.
				require.Equal(t, tc.includeUsage, strings.Contains(ev, `"usage":null`), ev)
			}
			require.Equal(t, want, text.String())
			if plain.Usage.CompletionTokens > 0 {
				require.Len(t, events, plain.Usage.CompletionTokens, "one chunk per completion token")
			} else {
				require.Len(t, events, 1)
			}
		})
	}
}

func TestCompletion(t *testing.T) {
	t.Parallel()
	_, ts := newTestServer(t, Config{Mode: ModeEcho})
	var got chatResult
	require.Equal(t, http.StatusOK, postDecode(t, ts.URL+"/v1/completions",
		map[string]any{"model": "qwen", "prompt": "The capital of France is", "max_tokens": 3}, &got))
	require.True(t, strings.HasPrefix(got.ID, "cmpl-"), got.ID)
	require.Equal(t, "text_completion", got.Object)
	require.Equal(t, "The capital", got.Choices[0].Text) // "The", "capi", "tal"
	require.Equal(t, "length", got.Choices[0].FinishReason)
	require.Equal(t, usage{PromptTokens: 7, CompletionTokens: 3, TotalTokens: 10}, got.Usage)
}

func TestDeterministicText(t *testing.T) {
	t.Parallel()
	_, a := newTestServer(t, Config{Seed: 1})
	_, a2 := newTestServer(t, Config{Seed: 1})
	_, b := newTestServer(t, Config{Seed: 2})
	text := func(url string, body map[string]any) string {
		var got chatResult
		require.Equal(t, http.StatusOK, postDecode(t, url+"/v1/chat/completions", body, &got))
		return got.Choices[0].Message.Content
	}
	body := chatBody("qwen", "What is a gateway?", 0)
	first := text(a.URL, body)
	require.NotEmpty(t, first)
	require.Equal(t, first, text(a.URL, body), "same server, same request")
	require.Equal(t, first, text(a2.URL, body), "same seed, another server")
	require.NotEqual(t, first, text(b.URL, body), "another server seed")
	require.NotEqual(t, first, text(a.URL, with(body, "seed", 7)), "request seed")
	require.Equal(t, text(b.URL, with(body, "seed", 7)), text(a.URL, with(body, "seed", 7)), "request seed overrides the server's")
	require.NotEqual(t, first, text(a.URL, chatBody("qwen", "What is a router?", 0)), "another prompt")
	require.True(t, strings.HasPrefix(text(a.URL, chatBody("qwen", "What is a gateway?", 3)), first[:1]))
}

func TestOpenAIErrors(t *testing.T) {
	t.Parallel()
	_, ts := newTestServer(t, Config{MaxModelLen: 64})
	long := strings.Repeat("word ", 70)
	for _, tc := range []struct {
		name    string
		path    string
		body    any
		header  []string
		status  int
		errType string
		message string // substring
	}{
		{"unknown model", "/v1/chat/completions", chatBody("llama", "hi", 0), nil,
			404, "NotFoundError", "The model `llama` does not exist."},
		{"unknown model completion", "/v1/completions", map[string]any{"model": "llama", "prompt": "hi"}, nil,
			404, "NotFoundError", "The model `llama` does not exist."},
		{"malformed", "/v1/chat/completions", `{"model":"qwen",`, nil,
			400, "BadRequestError", "malformed JSON in request body"},
		{"syntax offset", "/v1/chat/completions", `{"model":"qwen" "messages":[]}`, nil,
			400, "BadRequestError", "at byte 17"},
		{"wrong type", "/v1/chat/completions", `{"model":"qwen","messages":[{"role":"user","content":"x"}],"max_tokens":"ten"}`, nil,
			400, "BadRequestError", `field "max_tokens" must be an integer, got a JSON string`},
		{"bad content", "/v1/chat/completions", `{"model":"qwen","messages":[{"role":"user","content":5}]}`, nil,
			400, "BadRequestError", "must be a string or an array of content parts"},
		{"not an object", "/v1/chat/completions", `[1]`, nil,
			400, "BadRequestError", "request body must be a JSON object"},
		{"empty body", "/v1/chat/completions", ``, nil,
			400, "BadRequestError", "request body is empty"},
		{"no messages", "/v1/chat/completions", `{"model":"qwen","messages":[]}`, nil,
			400, "BadRequestError", "messages must be a non-empty array"},
		{"no prompt", "/v1/completions", `{"model":"qwen"}`, nil,
			400, "BadRequestError", "prompt must be"},
		{"zero max tokens", "/v1/chat/completions", chatBody("qwen", "hi", -1), nil,
			400, "BadRequestError", "max_tokens must be at least 1"},
		{"context", "/v1/chat/completions", chatBody("qwen", "hi", 100), nil,
			400, "BadRequestError", "maximum context length is 64 tokens. However, you requested 101 tokens (1 in the messages, 100 in the completion)"},
		{"long prompt", "/v1/completions", map[string]any{"model": "qwen", "prompt": long}, nil,
			400, "BadRequestError", "maximum context length is 64 tokens"},
		{"forced 429", "/v1/chat/completions", chatBody("qwen", "hi", 0), []string{"X-Return-Error", "429"},
			429, "RateLimitError", "forced by X-Return-Error"},
		{"forced 503 before parsing", "/v1/completions", `{`, []string{"X-Return-Error", "503"},
			503, "ServiceUnavailableError", "Service Unavailable"},
		{"forced 500", "/v1/chat/completions", chatBody("qwen", "hi", 0), []string{"X-Return-Error", "500"},
			500, "InternalServerError", "Internal Server Error"},
		{"bad forced", "/v1/chat/completions", chatBody("qwen", "hi", 0), []string{"X-Return-Error", "200"},
			400, "BadRequestError", "X-Return-Error must be an HTTP error status"},
		{"too large", "/v1/chat/completions", make([]byte, maxBodyBytes+1), nil,
			413, "RequestEntityTooLargeError", "larger than 16777216 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.name == "zero max tokens" {
				tc.body = with(tc.body.(map[string]any), "max_tokens", 0)
			}
			var got struct {
				Error struct {
					Message string  `json:"message"`
					Type    string  `json:"type"`
					Param   *string `json:"param"`
					Code    int     `json:"code"`
				} `json:"error"`
			}
			status := postDecode(t, ts.URL+tc.path, tc.body, &got, tc.header...)
			require.Equal(t, tc.status, status)
			require.Equal(t, tc.status, got.Error.Code)
			require.Equal(t, tc.errType, got.Error.Type)
			require.Contains(t, got.Error.Message, tc.message)
			require.Nil(t, got.Error.Param)
		})
	}
}

func TestUnknownModelExactBody(t *testing.T) {
	t.Parallel()
	_, ts := newTestServer(t, Config{})
	resp := post(t, context.Background(), ts.URL+"/v1/chat/completions", chatBody("x", "hi", 0))
	defer resp.Body.Close()
	var got map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
	require.Equal(t, map[string]any{"error": map[string]any{
		"message": "The model `x` does not exist.", "type": "NotFoundError", "param": nil, "code": 404.0,
	}}, got)
}

func TestFailureInjection(t *testing.T) {
	t.Parallel()
	_, all := newTestServer(t, Config{FailureInjectionRate: 100})
	codes := map[int]int{}
	for range 30 {
		var got struct {
			Error openAIError `json:"error"`
		}
		status := postDecode(t, all.URL+"/v1/chat/completions", chatBody("qwen", "hi", 0), &got)
		require.Contains(t, []int{429, 500, 503}, status)
		require.Equal(t, status, got.Error.Code)
		require.Equal(t, openAIErrorType(status), got.Error.Type)
		require.Contains(t, got.Error.Message, "injected failure")
		codes[status]++
	}
	require.GreaterOrEqual(t, len(codes), 2, "several failure kinds: %v", codes)

	_, half := newTestServer(t, Config{FailureInjectionRate: 50})
	ok := 0
	for range 40 {
		var got map[string]any
		if postDecode(t, half.URL+"/v1/chat/completions", chatBody("qwen", "hi", 0), &got) == http.StatusOK {
			ok++
		}
	}
	require.Greater(t, ok, 5)
	require.Less(t, ok, 35)
}

func TestModelsList(t *testing.T) {
	t.Parallel()
	_, ts := newTestServer(t, Config{Model: "meta-llama/Llama-3.1-8B-Instruct", ServedModelNames: []string{"llama"},
		LoRAModules: []string{"sql-lora", `{"name":"tweet-lora","path":"/adapters/tweet"}`}, MaxModelLen: 2048})
	resp, err := http.Get(ts.URL + "/v1/models")
	require.NoError(t, err)
	defer resp.Body.Close()
	var got struct {
		Object string `json:"object"`
		Data   []struct {
			ID          string  `json:"id"`
			Object      string  `json:"object"`
			Created     int64   `json:"created"`
			OwnedBy     string  `json:"owned_by"`
			Root        string  `json:"root"`
			Parent      *string `json:"parent"`
			MaxModelLen int     `json:"max_model_len"`
		} `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
	require.Equal(t, "list", got.Object)
	var ids []string
	for _, m := range got.Data {
		ids = append(ids, m.ID)
		require.Equal(t, "model", m.Object)
		require.NotZero(t, m.Created)
		if strings.HasSuffix(m.ID, "-lora") {
			require.NotNil(t, m.Parent)
			require.Equal(t, "meta-llama/Llama-3.1-8B-Instruct", *m.Parent)
		} else {
			require.Nil(t, m.Parent)
			require.Equal(t, 2048, m.MaxModelLen)
		}
	}
	require.Equal(t, []string{"meta-llama/Llama-3.1-8B-Instruct", "llama", "sql-lora", "tweet-lora"}, ids)
}

func TestMetricsAfterRequests(t *testing.T) {
	t.Parallel()
	_, ts := newTestServer(t, Config{ServedModelNames: []string{"qwen-served"}, KVCacheBlocks: 64})
	var got chatResult
	require.Equal(t, http.StatusOK, postDecode(t, ts.URL+"/v1/chat/completions", chatBody("qwen", "one two three", 4), &got))
	require.Equal(t, http.StatusOK, postDecode(t, ts.URL+"/v1/chat/completions", chatBody("qwen-served", "[[gatecheck:say ok]]", 0), &got))

	fams := scrape(t, ts.URL)
	model := map[string]string{"model_name": "qwen-served"}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"vllm:prompt_tokens_total", model, float64(CountTokens("one two three") + CountTokens("[[gatecheck:say ok]]"))},
		{"vllm:generation_tokens_total", model, 4 + 1},
		{"vllm:request_success_total", map[string]string{"model_name": "qwen-served", "finished_reason": "length"}, 1},
		{"vllm:request_success_total", map[string]string{"model_name": "qwen-served", "finished_reason": "stop"}, 1},
		{"vllm:e2e_request_latency_seconds", model, 2},
		{"vllm:time_to_first_token_seconds", model, 2},
		{"vllm:time_per_output_token_seconds", model, 3},
		{"vllm:num_requests_running", model, 0},
		{"vllm:num_requests_waiting", model, 0},
		{"vllm:kv_cache_usage_perc", model, 0},
		{"vllm:gpu_cache_usage_perc", model, 0},
		{"vllm:cache_config_info", map[string]string{"block_size": "16", "num_gpu_blocks": "64"}, 1},
	} {
		v, ok := metricValue(fams, tc.name, tc.labels)
		require.True(t, ok, "%s%v missing", tc.name, tc.labels)
		require.Equal(t, tc.want, v, "%s%v", tc.name, tc.labels)
	}
	lora := labelsOf(t, fams, "vllm:lora_requests_info")
	require.Equal(t, map[string]string{"max_lora": "1", "running_lora_adapters": "", "waiting_lora_adapters": ""}, lora)
	v, _ := metricValue(fams, "vllm:lora_requests_info", nil)
	require.Greater(t, v, 1e9, "unix time of the last update")
}
