package epp

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatecheck/gatecheck/internal/extproc"
)

const vllmSample = `# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="Qwen/Qwen3-0.6B"} 3.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="Qwen/Qwen3-0.6B"} 4.0
vllm:num_requests_waiting{engine="1",model_name="Qwen/Qwen3-0.6B"} 1.0
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="Qwen/Qwen3-0.6B"} 0.25
vllm:kv_cache_usage_perc{engine="1",model_name="Qwen/Qwen3-0.6B"} 0.5
# TYPE vllm:lora_requests_info gauge
vllm:lora_requests_info{max_lora="4",running_lora_adapters="a, b",waiting_lora_adapters=""} 1.7e9
vllm:lora_requests_info{max_lora="4",running_lora_adapters="old",waiting_lora_adapters="c"} 1.6e9
# TYPE vllm:cache_config_info gauge
vllm:cache_config_info{block_size="16",num_gpu_blocks="4096"} 1.0
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{model_name="Qwen/Qwen3-0.6B"} 1234
# TYPE vllm:e2e_request_latency_seconds histogram
vllm:e2e_request_latency_seconds_bucket{le="0.3",model_name="Qwen/Qwen3-0.6B"} 1
vllm:e2e_request_latency_seconds_bucket{le="+Inf",model_name="Qwen/Qwen3-0.6B"} 2
vllm:e2e_request_latency_seconds_sum{model_name="Qwen/Qwen3-0.6B"} 0.9
vllm:e2e_request_latency_seconds_count{model_name="Qwen/Qwen3-0.6B"} 2
`

func TestParseMetrics(t *testing.T) {
	t.Parallel()
	m, err := parseMetrics(EngineVLLM, strings.NewReader(vllmSample))
	require.NoError(t, err)
	assert.Equal(t, Metrics{
		Waiting:      5,
		Running:      3,
		KVCacheUsage: 0.5,
		MaxLoRA:      4,
		RunningLoRA:  []string{"a", "b"},
		BlockSize:    16,
		NumGPUBlocks: 4096,
		BaseModels:   []string{"Qwen/Qwen3-0.6B"},
	}, m)

	for name, text := range map[string]string{
		"empty":       "",
		"html":        "<html><body>Ollama is running</body></html>",
		"other":       "# TYPE go_goroutines gauge\ngo_goroutines 12\n",
		"sglang text": "sglang:num_queue_reqs 3\n",
	} {
		_, err := parseMetrics(EngineVLLM, strings.NewReader(text))
		assert.ErrorIs(t, err, errNoModelMetrics, name)
	}

	// A bad line after the metrics we need does not lose them.
	m, err = parseMetrics(EngineVLLM, strings.NewReader("vllm:num_requests_waiting 2\nthis is { not prometheus\n"))
	require.NoError(t, err)
	assert.Equal(t, 2, m.Waiting)

	// Out-of-range values are clamped.
	m, err = parseMetrics(EngineVLLM, strings.NewReader("vllm:num_requests_waiting -3\nvllm:kv_cache_usage_perc 7\n"))
	require.NoError(t, err)
	assert.Equal(t, 0, m.Waiting)
	assert.Equal(t, 1.0, m.KVCacheUsage)
}

func TestParseBody(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body, model, prompt string
	}{
		{"completion", `{"model":"m","prompt":"once upon"}`, "m", "once upon"},
		{"prompt list", `{"model":"m","prompt":["a","b"]}`, "m", "ab"},
		{"prompt tokens", `{"model":"m","prompt":[1,2]}`, "m", "12"},
		{"chat", `{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"hi"}]}]}`,
			"m", "system: be brief\nuser: hi\n"},
		{"responses", `{"model":"m","input":"hello"}`, "m", "hello"},
		{"no prompt", `{"model":"m"}`, "m", ""},
		{"odd messages", `{"model":"m","messages":"x"}`, "m", `"x"`},
		{"spaces", " \n{\"model\":\"m\"}\n", "m", ""},
	} {
		info, err := parseBody([]byte(tc.body))
		require.NoError(t, err, tc.name)
		assert.Equal(t, tc.model, info.model, tc.name)
		assert.Equal(t, tc.prompt, info.prompt, tc.name)
	}
	_, err := parseBody([]byte(`{"Model":"m"}`))
	assert.ErrorIs(t, err, errModelNotFound, "the key is exactly \"model\"")
}

func TestPrefixLRUEvicts(t *testing.T) {
	t.Parallel()
	l := newPrefixLRU(3)
	l.add([]uint64{1, 2, 3})
	assert.Equal(t, 3, l.matched([]uint64{1, 2, 3, 4}))
	l.add([]uint64{4})
	assert.Equal(t, 0, l.matched([]uint64{1, 2}), "the oldest block went")
	assert.Equal(t, 3, l.matched([]uint64{2, 3, 4}))

	a := prefixBlocks("m", strings.Repeat("x", 200))
	b := prefixBlocks("m", strings.Repeat("x", 130)+"y")
	c := prefixBlocks("other", strings.Repeat("x", 200))
	require.Len(t, a, 3)
	require.Len(t, b, 2)
	assert.Equal(t, a[:2], b, "same prefix, same chained hashes")
	assert.NotEqual(t, a[0], c[0], "the model is part of the first hash")
	assert.Equal(t, a[1:2], prefixBlocks("m", strings.Repeat("x", 128))[1:2])
	assert.Len(t, prefixBlocks("m", strings.Repeat("x", 1<<20)), prefixMaxBlocks)
}

// FuzzParseMetrics: arbitrary text never panics and yields sane values.
func FuzzParseMetrics(f *testing.F) {
	f.Add(vllmSample)
	f.Add("sglang:num_queue_reqs 3\nsglang:token_usage NaN\n")
	f.Add("vllm:num_requests_waiting +Inf\n")
	f.Add(`vllm:lora_requests_info{max_lora="x",running_lora_adapters=",,"} 1`)
	f.Add("# TYPE vllm:num_requests_waiting histogram\nvllm:num_requests_waiting_bucket{le=\"1\"} 1\n")
	f.Fuzz(func(t *testing.T, text string) {
		for _, engine := range []string{EngineVLLM, EngineSGLang} {
			m, err := parseMetrics(engine, strings.NewReader(text))
			if err != nil {
				if !errors.Is(err, errNoModelMetrics) {
					t.Fatalf("unexpected error %v", err)
				}
				continue
			}
			if m.Waiting < 0 || m.Running < 0 || m.KVCacheUsage < 0 || m.KVCacheUsage > 1 || m.MaxLoRA < 0 {
				t.Fatalf("out of range: %+v", m)
			}
		}
	})
}

// fuzzServer is a picker with one ready endpoint, for driving a processor
// directly.
func fuzzServer(f *testing.F) *Server {
	ms := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(vllmSample))
	}))
	f.Cleanup(ms.Close)
	s := New(Config{})
	f.Cleanup(s.Close)
	s.SetEndpoints([]Endpoint{{Address: "10.0.0.1:8000", MetricsURL: ms.URL}})
	s.ScrapeNow(context.Background())
	if !s.Ready() {
		f.Fatal("endpoint not ready")
	}
	return s
}

// FuzzRequestBody: an arbitrary full-duplex body never panics; the answer is
// a 400 or a pick with the body streamed back whole.
func FuzzRequestBody(f *testing.F) {
	s := fuzzServer(f)
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`))
	f.Add([]byte(`{"model":"Qwen/Qwen3-0.6B","prompt":["a",1,{"text":"t"}]}`))
	f.Add([]byte(`{"model":null}`))
	f.Add([]byte(`{"model":"a","messages":[{"content":[{"text":null}]}]}`))
	f.Add([]byte(`[]`))
	f.Add([]byte("\xff\xfe"))
	f.Fuzz(func(t *testing.T, body []byte) {
		p := newRequestProcessor(s)
		defer p.finish()
		ctx := context.Background()
		resps, err := p.Process(ctx, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{
			RequestHeaders: &extprocv3.HttpHeaders{Headers: extproc.HeaderMap(map[string][]string{":method": {"POST"}})}}})
		if err != nil || len(resps) != 0 {
			t.Fatalf("headers: %v %v", resps, err)
		}
		resps, err = p.Process(ctx, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{
			RequestBody: &extprocv3.HttpBody{Body: body, EndOfStream: true}}})
		if err != nil || len(resps) == 0 {
			t.Fatalf("body: %v %v", resps, err)
		}
		if ir := resps[0].GetImmediateResponse(); ir != nil {
			if len(resps) != 1 || extproc.ImmediateStatus(ir) != http.StatusBadRequest {
				t.Fatalf("want one 400, got %v", resps)
			}
			return
		}
		if dest, _ := extproc.MetadataString(resps[0].GetDynamicMetadata(), MetadataNamespace, HeaderDestination); dest != "10.0.0.1:8000" {
			t.Fatalf("destination %q", dest)
		}
		var back []byte
		for _, r := range resps[1:] {
			back = append(back, r.GetRequestBody().GetResponse().GetBodyMutation().GetStreamedResponse().GetBody()...)
		}
		if string(back) != string(body) {
			t.Fatalf("body changed")
		}
	})
}
