package model

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestQueueingShowsInMetrics(t *testing.T) {
	t.Parallel()
	_, ts := newTestServer(t, Config{MaxNumSeqs: 1, InterTokenLatency: 50 * time.Millisecond, KVCacheBlocks: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Each request would take about a second: far longer than the polls.
	first := start(ctx, ts.URL+"/v1/chat/completions", chatBody("qwen", "one two", 20))
	eventually(t, "the first request running", func() bool {
		r, _ := load(t, ts.URL)
		return r == 1
	})
	second := start(ctx, ts.URL+"/v1/chat/completions", chatBody("qwen", "three four", 20))
	eventually(t, "one running, one waiting", func() bool {
		r, w := load(t, ts.URL)
		return r == 1 && w == 1
	})
	eventually(t, "the KV cache to fill with the running request's tokens", func() bool {
		v, _ := metricValue(scrape(t, ts.URL), "vllm:kv_cache_usage_perc", nil)
		return v > 2.0/16 // more than the two prompt tokens of 16
	})

	// Clients that go away free their slot and queue place at once.
	cancel()
	for _, ch := range []<-chan result{first, second} {
		require.Error(t, (<-ch).err)
	}
	eventually(t, "an idle server", func() bool {
		r, w := load(t, ts.URL)
		return r == 0 && w == 0
	})
	fams := scrape(t, ts.URL)
	v, _ := metricValue(fams, "vllm:kv_cache_usage_perc", nil)
	require.Zero(t, v)
	_, ok := metricValue(fams, "vllm:request_success_total", nil)
	require.False(t, ok, "cancelled requests are not successes")
}

func TestStreamingReallyStreams(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		path string
		body map[string]any
	}{
		{"openai", "/v1/chat/completions", with(chatBody("qwen", "count to ten", 10), "stream", true)},
		{"ollama", "/api/chat", map[string]any{"model": "qwen", "messages": []map[string]any{{"role": "user", "content": "count"}},
			"options": map[string]any{"num_predict": 10}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, ts := newTestServer(t, Config{InterTokenLatency: 20 * time.Millisecond})
			resp := post(t, context.Background(), ts.URL+tc.path, tc.body)
			defer resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			sc := bufio.NewScanner(resp.Body)
			require.True(t, sc.Scan())
			require.NotEmpty(t, sc.Text())
			// The first token is here; the request must still be generating the
			// other nine, so the server still counts it as running.
			r, _ := load(t, ts.URL)
			require.Equal(t, 1.0, r, "first chunk arrived only after the request finished")
			lines := 1
			for sc.Scan() {
				if sc.Text() != "" {
					lines++
				}
			}
			require.NoError(t, sc.Err())
			// 10 tokens, plus [DONE] (OpenAI) or the done object (Ollama).
			require.Equal(t, 11, lines)
		})
	}
}

func TestLoRAAdapters(t *testing.T) {
	t.Parallel()
	_, ts := newTestServer(t, Config{LoRAModules: []string{"sql-lora", "tweet-lora"}, MaxLoRAs: 1,
		InterTokenLatency: 50 * time.Millisecond})
	loraInfo := func() map[string]string { return labelsOf(t, scrape(t, ts.URL), "vllm:lora_requests_info") }

	// Served, and named in the answer.
	var got chatResult
	require.Equal(t, http.StatusOK, postDecode(t, ts.URL+"/v1/chat/completions", chatBody("sql-lora", "hi", 1), &got))
	require.Equal(t, "sql-lora", got.Model)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sql := start(ctx, ts.URL+"/v1/chat/completions", chatBody("sql-lora", "SELECT 1", 40))
	eventually(t, "sql-lora running", func() bool {
		return loraInfo()["running_lora_adapters"] == "sql-lora"
	})
	// Only one adapter may run: tweet-lora waits though a slot is free, and
	// the base model is not held up.
	tweet := start(ctx, ts.URL+"/v1/chat/completions", chatBody("tweet-lora", "tweet", 40))
	eventually(t, "tweet-lora waiting", func() bool {
		l := loraInfo()
		return l["running_lora_adapters"] == "sql-lora" && l["waiting_lora_adapters"] == "tweet-lora" && l["max_lora"] == "1"
	})
	base := start(ctx, ts.URL+"/v1/chat/completions", chatBody("qwen", "base", 40))
	eventually(t, "base running beside sql-lora", func() bool {
		r, w := load(t, ts.URL)
		return r == 2 && w == 1
	})
	// A second sql-lora request joins the running adapter.
	sql2 := start(ctx, ts.URL+"/v1/chat/completions", chatBody("sql-lora", "SELECT 2", 40))
	eventually(t, "two sql-lora requests running", func() bool {
		r, w := load(t, ts.URL)
		return r == 3 && w == 1
	})
	cancel()
	for _, ch := range []<-chan result{sql, tweet, base, sql2} {
		<-ch
	}
	eventually(t, "no adapter in use", func() bool {
		l := loraInfo()
		return l["running_lora_adapters"] == "" && l["waiting_lora_adapters"] == ""
	})
}

func TestLoRAUnknownModel(t *testing.T) {
	t.Parallel()
	_, ts := newTestServer(t, Config{LoRAModules: []string{"sql-lora"}})
	var openai struct {
		Error openAIError `json:"error"`
	}
	require.Equal(t, http.StatusNotFound, postDecode(t, ts.URL+"/v1/completions", map[string]any{"model": "tweet-lora", "prompt": "x"}, &openai))
	require.Equal(t, "The model `tweet-lora` does not exist.", openai.Error.Message)
	require.Equal(t, "NotFoundError", openai.Error.Type)

	var ollama map[string]any
	require.Equal(t, http.StatusNotFound, postDecode(t, ts.URL+"/api/generate", map[string]any{"model": "tweet-lora", "prompt": "x"}, &ollama))
	require.Equal(t, map[string]any{"error": `model "tweet-lora" not found, try pulling it first`}, ollama)
}

func TestLatencyAppliesToNonStreamed(t *testing.T) {
	t.Parallel()
	_, ts := newTestServer(t, Config{TimeToFirstToken: 30 * time.Millisecond, TimeToFirstTokenStdDev: 5 * time.Millisecond,
		InterTokenLatency: 5 * time.Millisecond, InterTokenLatencyStdDev: time.Millisecond})
	ch := start(context.Background(), ts.URL+"/api/generate", map[string]any{"model": "qwen", "prompt": "hi", "stream": false,
		"options": map[string]any{"num_predict": 5}})
	eventually(t, "the request running", func() bool {
		r, _ := load(t, ts.URL)
		return r == 1
	})
	res := <-ch
	require.NoError(t, res.err)
	require.Equal(t, http.StatusOK, res.status)
	var got struct {
		PromptEvalDuration time.Duration `json:"prompt_eval_duration"`
		EvalDuration       time.Duration `json:"eval_duration"`
	}
	require.NoError(t, json.Unmarshal(res.body, &got))
	// The model's own measurements (not the test's wall clock) show the waits.
	require.Greater(t, got.PromptEvalDuration, 10*time.Millisecond)
	require.Greater(t, got.EvalDuration, 10*time.Millisecond)
	fams := scrape(t, ts.URL)
	n, _ := metricValue(fams, "vllm:time_per_output_token_seconds", nil)
	require.Equal(t, 4.0, n, "one observation per gap between tokens")
}

func TestSchedulerOrder(t *testing.T) {
	t.Parallel()
	now := func() time.Time { return time.Unix(1700000000, 0) }
	s := newScheduler(1, 1, now)
	ctx := context.Background()
	first, err := s.acquire(ctx, "", 1)
	require.NoError(t, err)

	type grant struct {
		name string
		t    *ticket
	}
	granted := make(chan grant, 4)
	enqueue := func(name, lora string) {
		waiting := s.state().waiting
		go func() {
			tk, err := s.acquire(ctx, lora, 1)
			if err == nil {
				granted <- grant{name, tk}
			}
		}()
		eventually(t, name+" queued", func() bool { return s.state().waiting == waiting+1 })
	}
	enqueue("a", "")
	enqueue("x", "lora-x")
	enqueue("b", "")
	require.Equal(t, []string{"lora-x"}, s.state().waitingLoRAs)

	// First in, first out, one at a time.
	next := func() grant {
		s.release(first)
		g := <-granted
		first = g.t
		return g
	}
	require.Equal(t, "a", next().name)
	require.Equal(t, "x", next().name)
	require.Equal(t, []string{"lora-x"}, s.state().runningLoRAs)
	require.Equal(t, "b", next().name)
	s.release(first)
	s.release(first) // twice is harmless
	st := s.state()
	require.Equal(t, 0, st.running)
	require.Equal(t, 0, st.waiting)
	require.Equal(t, 0, st.kvTokens)
}

func TestSchedulerLoRAPassing(t *testing.T) {
	t.Parallel()
	s := newScheduler(4, 1, time.Now)
	ctx := context.Background()
	x, err := s.acquire(ctx, "x", 2)
	require.NoError(t, err)
	s.grow(x, 3)
	require.Equal(t, 5, s.state().kvTokens)

	yCtx, cancelY := context.WithCancel(ctx)
	yDone := make(chan error, 1)
	go func() {
		_, err := s.acquire(yCtx, "y", 1)
		yDone <- err
	}()
	eventually(t, "y waiting", func() bool { return s.state().waiting == 1 })
	// Later requests that fit pass the waiting adapter.
	base, err := s.acquire(ctx, "", 1)
	require.NoError(t, err)
	x2, err := s.acquire(ctx, "x", 1)
	require.NoError(t, err)
	st := s.state()
	require.Equal(t, 3, st.running)
	require.Equal(t, []string{"x"}, st.runningLoRAs)
	require.Equal(t, []string{"y"}, st.waitingLoRAs)

	cancelY()
	require.ErrorIs(t, <-yDone, context.Canceled)
	require.Equal(t, 0, s.state().waiting)

	s.close()
	_, err = s.acquire(ctx, "", 1)
	require.ErrorIs(t, err, errClosed)
	for _, tk := range []*ticket{x, base, x2} {
		s.release(tk)
	}
	require.Equal(t, 0, s.state().running)
	require.Empty(t, s.state().runningLoRAs)
}

func TestSSEContentType(t *testing.T) {
	t.Parallel()
	_, ts := newTestServer(t, Config{})
	resp := post(t, context.Background(), ts.URL+"/v1/completions", map[string]any{"model": "qwen", "prompt": "x", "stream": true})
	defer resp.Body.Close()
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	require.Equal(t, "no-cache", resp.Header.Get("Cache-Control"))
	events := readSSE(t, resp.Body)
	require.NotEmpty(t, events)
	require.False(t, strings.Contains(events[0], `"usage"`), "no usage unless asked")
}
