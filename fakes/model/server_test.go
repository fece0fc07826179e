package model

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	promodel "github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

// waitTimeout bounds every poll for a state the server should reach.
const waitTimeout = 5 * time.Second

// newTestServer starts cfg's server behind a real HTTP server; both stop when
// the test ends (the model server first, so blocked requests end at once).
func newTestServer(t testing.TB, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	if cfg.Model == "" {
		cfg.Model = "qwen"
	}
	s, err := New(cfg)
	require.NoError(t, err)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		s.Close()
		ts.Close()
	})
	return s, ts
}

// post sends body (JSON-encoded unless it is a string or []byte) and returns
// the response; the caller closes its body.
func post(t testing.TB, ctx context.Context, url string, body any, header ...string) *http.Response {
	t.Helper()
	var b []byte
	switch v := body.(type) {
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		var err error
		b, err = json.Marshal(v)
		require.NoError(t, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	return resp
}

// postDecode posts body and decodes the JSON answer into out, returning the
// status.
func postDecode(t testing.TB, url string, body, out any, header ...string) int {
	t.Helper()
	resp := post(t, context.Background(), url, body, header...)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, out), "body: %s", data)
	return resp.StatusCode
}

// result is the outcome of a request sent in the background.
type result struct {
	status int
	header http.Header
	body   []byte
	err    error
}

// start sends a JSON POST in the background (no require calls off the test
// goroutine); the channel yields the outcome once the body is read.
func start(ctx context.Context, url string, body any, header ...string) <-chan result {
	ch := make(chan result, 1)
	go func() {
		b, err := json.Marshal(body)
		if err != nil {
			ch <- result{err: err}
			return
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
		if err != nil {
			ch <- result{err: err}
			return
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		ch <- result{status: resp.StatusCode, header: resp.Header, body: data, err: err}
	}()
	return ch
}

// readSSE reads server-sent events up to [DONE]; it fails the test when the
// stream ends without it.
func readSSE(t testing.TB, r io.Reader) []string {
	t.Helper()
	var events []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		require.True(t, ok, "line without data: prefix: %q", line)
		if data == "[DONE]" {
			require.False(t, sc.Scan() && sc.Text() != "", "data after [DONE]")
			return events
		}
		events = append(events, data)
	}
	require.NoError(t, sc.Err())
	t.Fatalf("stream ended without [DONE] after %d events", len(events))
	return nil
}

// scrape reads the server's /metrics.
func scrape(t testing.TB, baseURL string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(baseURL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	p := expfmt.NewTextParser(promodel.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return fams
}

// metricValue returns the value of the one series of name whose labels
// include want, and whether there was one.
func metricValue(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	fam, ok := fams[name]
	if !ok {
		return 0, false
	}
	for _, m := range fam.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			if labels[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue(), true
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue(), true
		case m.GetHistogram() != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// labelsOf returns the labels of the only series of name.
func labelsOf(t testing.TB, fams map[string]*dto.MetricFamily, name string) map[string]string {
	t.Helper()
	fam, ok := fams[name]
	require.True(t, ok, "no metric %s", name)
	require.Len(t, fam.GetMetric(), 1, "metric %s", name)
	labels := map[string]string{}
	for _, l := range fam.GetMetric()[0].GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	return labels
}

// load returns the running and waiting gauges.
func load(t testing.TB, baseURL string) (running, waiting float64) {
	t.Helper()
	fams := scrape(t, baseURL)
	running, ok := metricValue(fams, "vllm:num_requests_running", nil)
	require.True(t, ok)
	waiting, ok = metricValue(fams, "vllm:num_requests_waiting", nil)
	require.True(t, ok)
	return running, waiting
}

// eventually polls cond until it holds or waitTimeout passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", waitTimeout, what)
		}
		<-tick.C
	}
}

func TestInferenceHeadersOnEveryResponse(t *testing.T) {
	t.Parallel()
	_, ts := newTestServer(t, Config{PodName: "qwen-0", PodNamespace: "llm", Port: 8123})
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/health", http.StatusOK},
		{http.MethodGet, "/metrics", http.StatusOK},
		{http.MethodGet, "/v1/models", http.StatusOK},
		{http.MethodHead, "/", http.StatusOK},
		{http.MethodGet, "/", http.StatusOK},
		{http.MethodGet, "/nowhere", http.StatusNotFound},
		{http.MethodGet, "/v1/chat/completions", http.StatusMethodNotAllowed},
	} {
		req, err := http.NewRequest(tc.method, ts.URL+tc.path, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, tc.want, resp.StatusCode, "%s %s", tc.method, tc.path)
		require.Equal(t, "qwen-0", resp.Header.Get("x-inference-pod"), tc.path)
		require.Equal(t, "8123", resp.Header.Get("x-inference-port"), tc.path)
		require.Equal(t, "llm", resp.Header.Get("x-inference-namespace"), tc.path)
		if tc.method == http.MethodGet && tc.path == "/" {
			require.Equal(t, "Ollama is running", string(body))
		}
	}
}

func TestDefaultsFilled(t *testing.T) {
	t.Parallel()
	s, err := New(Config{Model: "qwen", LoRAModules: []string{`{"name":"sql-lora","path":"/x"}`, "a=/p,b"}})
	require.NoError(t, err)
	t.Cleanup(s.Close)
	c := s.Config()
	require.Equal(t, []string{"qwen"}, c.ServedModelNames)
	require.Equal(t, []string{"sql-lora", "a", "b"}, c.LoRAModules)
	require.Equal(t, DefaultMaxNumSeqs, c.MaxNumSeqs)
	require.Equal(t, DefaultMaxModelLen, c.MaxModelLen)
	require.Equal(t, DefaultMaxLoRAs, c.MaxLoRAs)
	require.Equal(t, DefaultKVCacheBlocks, c.KVCacheBlocks)
	require.Equal(t, DefaultPort, c.Port)
	require.Equal(t, ModeRandom, c.Mode)
	require.Equal(t, DefaultNamespace, c.PodNamespace)
	require.NotEmpty(t, c.PodName)

	_, err = New(Config{})
	require.ErrorContains(t, err, "--model is required")
}

func TestCloseFailsQueuedRequests(t *testing.T) {
	t.Parallel()
	s, ts := newTestServer(t, Config{MaxNumSeqs: 1, InterTokenLatency: time.Second})
	var slow []<-chan result
	for range 2 {
		slow = append(slow, start(context.Background(), ts.URL+"/v1/chat/completions", chatBody("qwen", "hello", 5)))
	}
	eventually(t, "one running, one waiting", func() bool {
		r, w := load(t, ts.URL)
		return r == 1 && w == 1
	})
	s.Close()
	var got []int
	for _, ch := range slow {
		r := <-ch
		require.NoError(t, r.err)
		got = append(got, r.status)
	}
	require.Equal(t, []int{http.StatusServiceUnavailable, http.StatusServiceUnavailable}, got)

	resp, err := http.Get(ts.URL + "/health")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	s.Close() // twice is fine
}

// FuzzChatRequest sends arbitrary bodies to both chat endpoints: the handler
// must never panic and must answer 200 or a 4xx.
func FuzzChatRequest(f *testing.F) {
	for _, seed := range []string{
		`{"model":"qwen","messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"qwen","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"stream":true,"stream_options":{"include_usage":true}}`,
		`{"model":"qwen","messages":[{"role":"user","content":"[[gatecheck:say 4111 1111 1111 1111]]"}],"max_tokens":3,"stop":["11"]}`,
		`{"model":"sql-lora","messages":[{"role":"user","content":"x"}],"options":{"num_predict":2,"stop":"a","seed":7},"stream":false}`,
		`{"model":"nope","messages":[]}`,
		`{"model":"qwen","messages":[{"role":"user","content":null}],"max_tokens":-1,"seed":-5}`,
		`{"messages":{"role":"user"}}`,
		`[1,2,3]`, `null`, `{`, ``, "\xff\xfe",
	} {
		f.Add([]byte(seed))
	}
	s, err := New(Config{Model: "qwen", LoRAModules: []string{"sql-lora"}, MaxModelLen: 256})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(s.Close)
	h := s.Handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, path := range []string{"/v1/chat/completions", "/api/chat", "/v1/completions", "/api/generate"} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body)))
			if rec.Code != http.StatusOK && (rec.Code < 400 || rec.Code > 499) {
				t.Fatalf("%s answered %d: %s", path, rec.Code, rec.Body.String())
			}
		}
	})
}

// BenchmarkChatCompletion measures a non-streamed chat completion with no
// latency configured, through the handler, and reports its p50 and p99.
func BenchmarkChatCompletion(b *testing.B) {
	s, err := New(Config{Model: "qwen"})
	require.NoError(b, err)
	b.Cleanup(s.Close)
	h := s.Handler()
	body, err := json.Marshal(chatBody("qwen", "Summarise the quarterly report in three sentences, please.", 0))
	require.NoError(b, err)
	var took []time.Duration
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/chat/completions", bytes.NewReader(body)))
		took = append(took, time.Since(start))
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body.String())
		}
	}
	slices.Sort(took)
	if len(took) > 0 {
		b.ReportMetric(float64(took[len(took)/2].Nanoseconds()), "p50-ns")
		b.ReportMetric(float64(took[len(took)*99/100].Nanoseconds()), "p99-ns")
	}
}
