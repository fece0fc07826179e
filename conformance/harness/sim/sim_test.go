package sim

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	ollama "github.com/ollama/ollama/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatecheck/gatecheck/fakes/epp"
	"github.com/gatecheck/gatecheck/manifests"
)

var pool = manifests.Ref{Namespace: "default", Name: "vllm-pool"}

// edit changes the text of a topology's files.
type edit func(t testing.TB, files map[string]string)

// replace replaces old with new in file; old must occur exactly once.
func replace(file, old, new string) edit {
	return func(t testing.TB, files map[string]string) {
		require.Equal(t, 1, strings.Count(files[file], old), "%s must contain %q once", file, old)
		files[file] = strings.Replace(files[file], old, new, 1)
	}
}

// without removes a file.
func without(file string) edit {
	return func(_ testing.TB, files map[string]string) { delete(files, file) }
}

// withFile adds (or replaces) a file.
func withFile(file, text string) edit {
	return func(_ testing.TB, files map[string]string) { files[file] = text }
}

// topology returns the default topology with edits applied, compiled.
func topology(t testing.TB, edits ...edit) *manifests.Snapshot {
	t.Helper()
	files := map[string]string{}
	err := fs.WalkDir(manifests.Default(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(manifests.Default(), p)
		files[p] = string(b)
		return err
	})
	require.NoError(t, err)
	for _, e := range edits {
		e(t, files)
	}
	dir := t.TempDir()
	for p, text := range files {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, p), []byte(text), 0o644))
	}
	objs, policies, err := manifests.Load(os.DirFS(dir), ".")
	require.NoError(t, err)
	snap, err := manifests.Compile(objs, policies)
	require.NoError(t, err)
	return snap
}

// withArgs adds model server flags to the default model Deployment.
func withArgs(args ...string) edit {
	var b strings.Builder
	for _, a := range args {
		b.WriteString("        - \"" + a + "\"\n")
	}
	// Appended after the existing flags: a repeated flag's last value wins.
	return replace("models.yaml", "        - \"5\"\n        ports:", "        - \"5\"\n"+b.String()+"        ports:")
}

func start(t testing.TB, snap *manifests.Snapshot) *Env {
	t.Helper()
	env, err := Start(context.Background(), Options{Snapshot: snap, Provision: true})
	require.NoError(t, err)
	t.Cleanup(env.Close)
	return env
}

// post sends a JSON body through the gateway with the sandbox app's key.
func post(t testing.TB, env *Env, path, body string, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, env.GatewayURL()+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if k := env.APIKey(); k != "" {
		req.Header.Set("x-api-key", k)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

type chatCompletion struct {
	Model   string `json:"model"`
	Choices []struct {
		Message struct {
			Content string `json:"content"`
		} `json:"message"`
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	} `json:"usage"`
}

func TestOpenAIThroughGateway(t *testing.T) {
	t.Parallel()
	env := start(t, nil)
	body := `{"model":"qwen2.5-0.5b-instruct","seed":7,"messages":[{"role":"user","content":"Say [[gatecheck:say hello from the pool]]"}]}`

	resp := post(t, env, "/v1/chat/completions", body)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var plain chatCompletion
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&plain))
	require.Len(t, plain.Choices, 1)
	assert.Equal(t, "hello from the pool", plain.Choices[0].Message.Content)
	require.NotNil(t, plain.Usage)
	assert.Equal(t, plain.Usage.PromptTokens+plain.Usage.CompletionTokens, plain.Usage.TotalTokens)
	assert.Positive(t, plain.Usage.CompletionTokens)
	pod := resp.Header.Get("x-inference-pod")
	assert.Regexp(t, `^vllm-sim-[0-2]$`, pod)
	served := resp.Header.Get("x-gateway-destination-endpoint-served")
	assert.Equal(t, served, "127.0.0.1:"+resp.Header.Get("x-inference-port"), "the served endpoint is the replica that answered")

	// The same request streamed: SSE chunks whose deltas add up to the same
	// text, a usage chunk, then [DONE].
	stream := strings.Replace(body, `"seed":7,`, `"seed":7,"stream":true,"stream_options":{"include_usage":true},`, 1)
	resp = post(t, env, "/v1/chat/completions", stream)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Content-Type"), "text/event-stream")
	var text strings.Builder
	var usage *chatCompletion
	done := false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if line == "[DONE]" {
			done = true
			break
		}
		var c chatCompletion
		require.NoError(t, json.Unmarshal([]byte(line), &c), line)
		for _, ch := range c.Choices {
			text.WriteString(ch.Delta.Content)
		}
		if c.Usage != nil {
			usage = &c
		}
	}
	require.NoError(t, sc.Err())
	assert.True(t, done, "stream ends with [DONE]")
	assert.Equal(t, plain.Choices[0].Message.Content, text.String())
	require.NotNil(t, usage, "include_usage adds a usage chunk")
	assert.Equal(t, *plain.Usage, *usage.Usage)
}

func TestOllamaThroughGateway(t *testing.T) {
	t.Parallel()
	env := start(t, nil)
	u, err := url.Parse(env.GatewayURL())
	require.NoError(t, err)
	client := ollama.NewClient(u, &http.Client{Transport: withKey{env.APIKey()}})
	ctx := context.Background()

	msgs := []ollama.Message{{Role: "user", Content: "[[gatecheck:say the gateway speaks ollama]]"}}
	for _, streamed := range []bool{false, true} {
		var chunks int
		var text strings.Builder
		var final ollama.ChatResponse
		err := client.Chat(ctx, &ollama.ChatRequest{Model: "llama-3.2-1b-instruct", Messages: msgs, Stream: &streamed}, func(r ollama.ChatResponse) error {
			chunks++
			text.WriteString(r.Message.Content)
			if r.Done {
				final = r
			}
			return nil
		})
		require.NoError(t, err, "stream=%v", streamed)
		assert.Equal(t, "the gateway speaks ollama", text.String())
		assert.True(t, final.Done)
		assert.Equal(t, "stop", final.DoneReason)
		assert.Positive(t, final.PromptEvalCount)
		assert.Positive(t, final.EvalCount)
		if streamed {
			assert.Equal(t, final.EvalCount+1, chunks, "one chunk per token, then the final one")
		} else {
			assert.Equal(t, 1, chunks)
		}
	}
}

// withKey adds the API key to every request, as a client configured with
// custom headers would.
type withKey struct{ key string }

func (w withKey) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("x-api-key", w.key)
	return http.DefaultTransport.RoundTrip(r)
}

// metric reads one unlabelled gauge from a model server's /metrics.
func metric(t testing.TB, base, name string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, name+" ") || strings.HasPrefix(line, name+"{") {
			var v float64
			_, err := fmtSscan(line[strings.LastIndexByte(line, ' ')+1:], &v)
			require.NoError(t, err)
			return v
		}
	}
	t.Fatalf("metric %s not found at %s", name, base)
	return 0
}

// pickerSees reports whether the pool's picker's view of the endpoint at
// addr satisfies cond.
func pickerSees(env *Env, addr string, cond func(epp.EndpointStatus) bool) bool {
	for _, s := range env.PickerView(pool) {
		if s.Endpoint.Address == addr {
			return cond(s)
		}
	}
	return false
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// occupy sends n slow requests straight to one replica (not through the
// gateway) and returns a function that cancels them.
func occupy(t testing.TB, addr string, n int, model string) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A canned answer of 1500 tokens: at the test's inter-token
			// latency it runs for half a minute (the topology raises
			// --max-model-len to fit it), longer than any test, even under
			// the race detector, until stop cancels it.
			body := `{"model":"` + model + `","messages":[{"role":"user","content":"[[gatecheck:say ` + strings.Repeat("busy ", 1500) + `]]"}]}`
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/v1/chat/completions", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			if resp, err := http.DefaultClient.Do(req); err == nil {
				if resp.StatusCode != http.StatusOK {
					b, _ := io.ReadAll(resp.Body)
					t.Errorf("occupying request: %d %s", resp.StatusCode, b)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	stop := func() { cancel(); wg.Wait() }
	t.Cleanup(stop)
	return stop
}

func TestRoutingFollowsLoad(t *testing.T) {
	t.Parallel()
	env := start(t, topology(t, withArgs("--inter-token-latency", "20ms", "--max-num-seqs", "2", "--max-model-len", "8192")))
	eps := env.Endpoints(pool)
	require.Len(t, eps, 3)
	busy := eps[0]
	// Two running and four waiting on the busy replica.
	occupy(t, busy.Address, 6, "qwen2.5-0.5b-instruct")
	eventually(t, "the busy replica to queue requests", func() bool {
		return metric(t, "http://"+busy.Address, "vllm:num_requests_waiting") >= 4
	})
	eventually(t, "the picker to see the queue", func() bool {
		return pickerSees(env, busy.Address, func(s epp.EndpointStatus) bool { return s.Metrics.Waiting >= 4 })
	})
	elsewhere := 0
	const n = 40
	for i := 0; i < n; i++ {
		resp := post(t, env, "/v1/chat/completions", `{"model":"qwen2.5-0.5b-instruct","max_tokens":2,"messages":[{"role":"user","content":"route me `+strings.Repeat("x", i)+`"}]}`)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.Header.Get("x-inference-pod") != busy.Pod {
			elsewhere++
		}
	}
	assert.GreaterOrEqual(t, elsewhere, n*9/10, "at least 90%% of new requests avoid the replica with a queue")
}

func TestLoRAPrefersLoadedAdapter(t *testing.T) {
	t.Parallel()
	// A large KV cache keeps the long answer's share of it, and so the kv-cache
	// scorer, out of the way: the test is about LoRA affinity.
	env := start(t, topology(t, withArgs("--inter-token-latency", "20ms", "--max-model-len", "8192", "--kv-cache-size", "65536")))
	eps := env.Endpoints(pool)
	loaded := eps[1]
	occupy(t, loaded.Address, 1, "support-bot")
	eventually(t, "the adapter to run on one replica", func() bool {
		resp, err := http.Get("http://" + loaded.Address + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), `running_lora_adapters="support-bot"`)
	})
	eventually(t, "the picker to see the adapter", func() bool {
		return pickerSees(env, loaded.Address, func(s epp.EndpointStatus) bool { return slices.Contains(s.Metrics.RunningLoRA, "support-bot") })
	})
	same := 0
	const n = 20
	for i := 0; i < n; i++ {
		resp := post(t, env, "/v1/chat/completions", `{"model":"support-bot","max_tokens":1,"messages":[{"role":"user","content":"help `+strings.Repeat("y", i)+`"}]}`)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp.Header.Get("x-inference-pod") == loaded.Pod {
			same++
		}
	}
	assert.GreaterOrEqual(t, same, n*9/10, "LoRA requests go to the replica with the adapter loaded")
}

func TestStreamingReallyStreams(t *testing.T) {
	t.Parallel()
	env := start(t, topology(t, withArgs("--inter-token-latency", "30ms")))
	body := `{"model":"qwen2.5-0.5b-instruct","stream":true,"messages":[{"role":"user","content":"[[gatecheck:say one two three four five six seven eight nine ten]]"}]}`
	resp := post(t, env, "/v1/chat/completions", body)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	r := bufio.NewReader(resp.Body)
	for {
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		if strings.HasPrefix(line, "data: ") {
			break
		}
	}
	// The first chunk is here. The model is still producing the rest: the
	// replica that serves the request still counts it as running.
	served := resp.Header.Get("x-inference-port")
	running := metric(t, "http://127.0.0.1:"+served, "vllm:num_requests_running")
	assert.Equal(t, 1.0, running, "the first chunk arrived before the model produced the last one")
	rest, err := io.ReadAll(r)
	require.NoError(t, err)
	assert.Contains(t, string(rest), "data: [DONE]")
}

func TestPickerFailureModes(t *testing.T) {
	t.Parallel()
	body := `{"model":"qwen2.5-0.5b-instruct","messages":[{"role":"user","content":"hi"}]}`
	t.Run("FailClose", func(t *testing.T) {
		t.Parallel()
		env := start(t, nil)
		require.NoError(t, env.StopPicker(pool))
		resp := post(t, env, "/v1/chat/completions", body)
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		require.NoError(t, env.StartPicker(context.Background(), pool))
		// The gateway reconnects with a short backoff: poll until it does.
		eventually(t, "a restarted picker to route again", func() bool {
			return post(t, env, "/v1/chat/completions", body).StatusCode == http.StatusOK
		})
	})
	t.Run("FailOpen", func(t *testing.T) {
		t.Parallel()
		env := start(t, topology(t, replace("inferencepool.yaml", "failureMode: FailClose", "failureMode: FailOpen")))
		require.NoError(t, env.StopPicker(pool))
		resp := post(t, env, "/v1/chat/completions", body)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Regexp(t, `^vllm-sim-[0-2]$`, resp.Header.Get("x-inference-pod"))
	})
}

func TestNoReadyEndpointIs503(t *testing.T) {
	t.Parallel()
	env := start(t, topology(t, replace("models.yaml", "replicas: 3", "replicas: 0")))
	resp := post(t, env, "/v1/chat/completions", `{"model":"qwen2.5-0.5b-instruct","messages":[{"role":"user","content":"hi"}]}`)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
}

func TestMissingModelIs400(t *testing.T) {
	t.Parallel()
	env := start(t, nil)
	resp := post(t, env, "/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}]}`)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	b, _ := io.ReadAll(resp.Body)
	assert.Contains(t, string(b), "model not found in request body")

	resp = post(t, env, "/v1/chat/completions", `{"model":"gpt-5","messages":[{"role":"user","content":"hi"}]}`)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "an unknown model is the model server's 404")
	b, _ = io.ReadAll(resp.Body)
	assert.Contains(t, string(b), "does not exist")
}

func TestReadyFile(t *testing.T) {
	t.Parallel()
	env := start(t, nil)
	path := filepath.Join(t.TempDir(), "ready.json")
	require.NoError(t, WriteReadyFile(path, env.Ready()))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var r Ready
	require.NoError(t, json.Unmarshal(b, &r))
	assert.Equal(t, env.GatewayURL(), r.Gateway)
	assert.Len(t, r.Models, 3)
	assert.Len(t, r.Pickers, 1)
	resp, err := http.Get(r.Models["vllm-sim-0"] + "/health")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}
