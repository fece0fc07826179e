package sim

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatecheck/gatecheck/conformance"
	"github.com/gatecheck/gatecheck/fakes/apigee/policy"
	"github.com/gatecheck/gatecheck/fakes/epp"
	"github.com/gatecheck/gatecheck/fakes/model"
	"github.com/gatecheck/gatecheck/internal/apigeeapi"
	"github.com/gatecheck/gatecheck/models/tiny"
)

// lockedBuffer collects logs written from many goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// ollamaStandIn is an "Ollama host" for machines without Ollama: the fake
// model server (which speaks Ollama's API, and OpenAI's as Ollama does too)
// answering as the tiny model, with /metrics answering 404 and without the
// fake's x-inference-* headers, as Ollama's server. It returns the server's
// base URL.
func ollamaStandIn(t *testing.T, pod string, ttft time.Duration) string {
	t.Helper()
	m, err := model.New(model.Config{Model: tiny.Name, PodName: pod, TimeToFirstToken: ttft, MaxNumSeqs: 16})
	require.NoError(t, err)
	h := m.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" {
			http.NotFound(w, r) // Ollama exposes no metrics
			return
		}
		h.ServeHTTP(&withoutPodHeaders{ResponseWriter: w}, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(m.Close)
	return srv.URL
}

// withoutPodHeaders drops the fake model server's x-inference-pod, -port and
// -namespace headers, which Ollama does not send, and flushes as it is told.
type withoutPodHeaders struct {
	http.ResponseWriter
	sent bool
}

func (w *withoutPodHeaders) strip() {
	if !w.sent {
		w.sent = true
		for _, h := range []string{"x-inference-pod", "x-inference-port", "x-inference-namespace"} {
			w.Header().Del(h)
		}
	}
}

func (w *withoutPodHeaders) WriteHeader(code int) {
	w.strip()
	w.ResponseWriter.WriteHeader(code)
}

func (w *withoutPodHeaders) Write(b []byte) (int, error) {
	w.strip()
	return w.ResponseWriter.Write(b)
}

func (w *withoutPodHeaders) Flush() {
	w.strip()
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// ollamaRequest is one kind of request a client of Ollama sends: its own
// API or its OpenAI-compatible one, streamed or not. prompt must start
// differently for each request, so the picker's prefix scorer finds nothing
// in common.
type ollamaRequest struct {
	name     string
	path     string
	streamed bool
	body     func(model, prompt string) string
}

var ollamaRequests = []ollamaRequest{
	{"OllamaChat", "/api/chat", false, func(m, p string) string {
		return `{"model":"` + m + `","stream":false,"options":{"num_predict":8},"messages":[{"role":"user","content":"` + p + `"}]}`
	}},
	{"OllamaChatStreamed", "/api/chat", true, func(m, p string) string {
		return `{"model":"` + m + `","options":{"num_predict":8},"messages":[{"role":"user","content":"` + p + `"}]}`
	}},
	{"OllamaGenerate", "/api/generate", false, func(m, p string) string {
		return `{"model":"` + m + `","stream":false,"options":{"num_predict":8},"prompt":"` + p + `"}`
	}},
	{"OpenAIChat", "/v1/chat/completions", false, func(m, p string) string {
		return `{"model":"` + m + `","max_tokens":8,"messages":[{"role":"user","content":"` + p + `"}]}`
	}},
	{"OpenAIChatStreamed", "/v1/chat/completions", true, func(m, p string) string {
		return `{"model":"` + m + `","max_tokens":8,"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"` + p + `"}]}`
	}},
}

// giveSandboxKeyTokenQuota gives the sandbox app's product LLM operations
// (the Ollama and OpenAI chat paths) with a token quota, so that the runtime
// counts every answer's tokens for the sandbox key. (Adding a second product
// to the key would not do: the first product that grants a request is the
// one whose quotas apply.)
func giveSandboxKeyTokenQuota(t *testing.T, env *Env) {
	t.Helper()
	ctx := context.Background()
	mc := env.Management()
	app, err := mc.GetApp(ctx, SandboxDeveloper, SandboxApp)
	require.NoError(t, err)
	require.NotEmpty(t, app.APIProducts)
	p, err := mc.GetProduct(ctx, app.APIProducts[0])
	require.NoError(t, err)
	p.LLMOperationGroup = &apigeeapi.LLMOperationGroup{OperationConfigs: []apigeeapi.LLMOperationConfig{{
		APISource: apimPolicy,
		LLMOperations: []apigeeapi.LLMOperation{
			{Resource: "/api/chat", Methods: []string{"POST"}, Model: "*"},
			{Resource: "/api/generate", Methods: []string{"POST"}, Model: "*"},
			{Resource: "/v1/chat/completions", Methods: []string{"POST"}, Model: "*"},
		},
		LLMTokenQuota: &apigeeapi.Quota{Limit: "1000000", Interval: "1", TimeUnit: "hour"},
	}}}
	_, err = mc.UpdateProduct(ctx, p)
	require.NoError(t, err)
}

// checkTokensCharged sends each kind of request with the sandbox key and
// checks that the token quota was charged exactly the tokens the answer
// reports (the count step's flow variables in the decision trace), and
// that the counter is their running sum.
func checkTokensCharged(t *testing.T, env *Env, model string, endpoints []string) {
	t.Helper()
	countVar := "llmtokenquota." + policy.DefaultLLMTokenCountName + ".tokens"
	usedVar := "ratelimit." + policy.DefaultLLMTokenCountName + ".used.count"
	sum := 0
	for i, rq := range ollamaRequests {
		prompt := fmt.Sprintf("%d tokens to count: hello world, the gateway checks the tokens", i)
		r := call(t, env, http.MethodPost, rq.path, rq.body(model, prompt), "x-api-key", env.APIKey())
		require.Equal(t, http.StatusOK, r.status, "%s: %s", rq.name, r)
		assert.Contains(t, endpoints, r.header.Get("x-gateway-destination-endpoint-served"), rq.name)
		usage := usageOf(t, r, rq.streamed)
		require.Positive(t, usage, rq.name)
		vars := stepVars(traceOf(t, env, r))
		sum += usage
		assert.Equal(t, strconv.Itoa(usage), vars[countVar], "%s: the quota was charged the tokens the answer reports", rq.name)
		assert.Equal(t, strconv.Itoa(sum), vars[usedVar], "%s: the counter is the sum of the answers' usage", rq.name)
		t.Logf("%s: %d tokens, charged %s (counter %s)", rq.name, usage, vars[countVar], vars[usedVar])
	}
}

// TestOllamaStandIn runs the sandbox path of `--models ollama` against two
// stand-in Ollama hosts: no fake model server of the topology starts, the
// pool's endpoints are the hosts, the picker scores them without metrics
// (saying so once each) and spreads concurrent requests by its in-flight
// count, and both of Ollama's APIs go through the gateway with every Apigee
// policy: refused without a key, and charged the answers' tokens.
func TestOllamaStandIn(t *testing.T) {
	t.Parallel()
	hosts := []string{ollamaStandIn(t, "ollama-a", 200*time.Millisecond), ollamaStandIn(t, "ollama-b", 200*time.Millisecond)}
	var addrs []string
	for _, h := range hosts {
		u, err := url.Parse(h)
		require.NoError(t, err)
		addrs = append(addrs, u.Host)
	}
	var logs lockedBuffer
	env, err := Start(context.Background(), Options{
		Provision: true,
		Logger:    slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Ollama:    &OllamaOptions{Hosts: hosts},
	})
	require.NoError(t, err)
	t.Cleanup(env.Close)

	// The environment serves the Ollama model, on the hosts, and nothing else.
	assert.Equal(t, []string{tiny.Name}, env.Models(), "no model named: the tiny model")
	assert.Equal(t, hosts, env.OllamaHosts())
	var got []string
	for _, ep := range env.Endpoints(pool) {
		got = append(got, ep.Address)
	}
	assert.Equal(t, addrs, got, "the pool's endpoints are the Ollama hosts")
	assert.Equal(t, map[string]string{"ollama-0": hosts[0], "ollama-1": hosts[1]}, env.Ready().Models)
	assert.True(t, (&Target{env: env}).Capabilities().Ollama, "the [ollama] condition holds")
	for _, addr := range addrs {
		eventually(t, "the picker to scrape "+addr, func() bool {
			return pickerSees(env, addr, func(s epp.EndpointStatus) bool { return s.Ready && !s.HasMetrics })
		})
	}

	t.Run("APIs", func(t *testing.T) {
		for i, rq := range ollamaRequests {
			body := rq.body(tiny.Name, fmt.Sprintf("%d [[gatecheck:say real gibberish]]", i))
			r := call(t, env, http.MethodPost, rq.path, body)
			requireFault(t, r, http.StatusUnauthorized, "steps.oauth.v2.FailedToResolveAPIKey", "")
			r = call(t, env, http.MethodPost, rq.path, body, "x-api-key", env.APIKey())
			require.Equal(t, http.StatusOK, r.status, "%s: %s", rq.name, r)
			assert.Contains(t, string(r.body), "real", rq.name)
			assert.Contains(t, addrs, r.header.Get("x-gateway-destination-endpoint-served"), rq.name)
			assert.Positive(t, usageOf(t, r, rq.streamed), rq.name)
		}
	})

	t.Run("TokenQuotaChargesUsage", func(t *testing.T) {
		giveSandboxKeyTokenQuota(t, env)
		checkTokensCharged(t, env, tiny.Name, addrs)
	})

	t.Run("InFlightSpreading", func(t *testing.T) {
		// Four requests at once, each held 200ms before its first token: the
		// picker knows no load but its own in-flight count, so it sends two
		// to each host.
		const n = 4
		served := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				body := ollamaRequests[0].body(tiny.Name, fmt.Sprintf("request %d of a burst", i))
				r, err := send(http.DefaultClient, env, http.MethodPost, "/api/chat", body, "x-api-key", env.APIKey())
				if assert.NoError(t, err) && assert.Equal(t, http.StatusOK, r.status, "%s", r) {
					served[i] = r.header.Get("x-gateway-destination-endpoint-served")
				}
			})
		}
		wg.Wait()
		count := map[string]int{}
		for _, s := range served {
			count[s]++
		}
		t.Logf("served by: %v", count)
		assert.Equal(t, map[string]int{addrs[0]: n / 2, addrs[1]: n / 2}, count)
	})

	for _, addr := range addrs {
		n := 0
		for line := range strings.Lines(logs.String()) {
			if strings.Contains(line, "endpoint exposes no vLLM metrics") && strings.Contains(line, " endpoint="+addr+" ") {
				n++
			}
		}
		assert.Equal(t, 1, n, "the picker says once that %s has no metrics:\n%s", addr, logs.String())
	}
}

// TestOllamaOptionErrors: what Start refuses in Ollama mode, and says why.
func TestOllamaOptionErrors(t *testing.T) {
	t.Parallel()
	standIn := ollamaStandIn(t, "ollama", 0)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	nobody := l.Addr().String()
	require.NoError(t, l.Close())
	for _, tc := range []struct {
		name string
		opts OllamaOptions
		want []string
	}{
		{"HTTPS", OllamaOptions{Hosts: []string{"https://ollama.example"}}, []string{"plain HTTP"}},
		{"BadPort", OllamaOptions{Hosts: []string{"box:99999"}}, []string{`port "99999"`}},
		{"NobodyThere", OllamaOptions{Hosts: []string{nobody}}, []string{"no Ollama answers at http://" + nobody, "ollama serve"}},
		{"MissingModel", OllamaOptions{Hosts: []string{standIn}, Model: "llama3.2"},
			[]string{"has no model llama3.2", "--pull", "gatecheck model tiny --create llama3.2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := tc.opts
			_, err := Start(context.Background(), Options{Ollama: &opts, ReadyTimeout: 2 * time.Second})
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

// TestOllamaReal is the same path against a real Ollama: where an ollama
// binary is on the PATH, it starts `ollama serve` on a free loopback port
// with an empty models folder, lets the simulation create the tiny model
// there, and sends chats (streamed and not, both APIs) through the gateway
// with the sandbox key, checking that the token quota was charged exactly
// the token counts Ollama reported.
func TestOllamaReal(t *testing.T) {
	bin, err := exec.LookPath("ollama")
	if err != nil {
		t.Skip("no ollama binary on PATH: this test runs `ollama serve` on a free port with an empty models folder " +
			"and the tiny model; install Ollama (https://ollama.com/download) to run it. TestOllamaStandIn covers the wiring.")
	}
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())

	home := t.TempDir()
	var out lockedBuffer
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "OLLAMA_HOST="+addr, "OLLAMA_MODELS="+t.TempDir(), "HOME="+home, "OLLAMA_NOPRUNE=1")
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("ollama serve:\n%s", out.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if answers(context.Background(), &http.Client{Timeout: time.Second}, "http://"+addr+"/api/version") {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("ollama serve exited: %v\n%s", err, out.String())
		default:
		}
		require.True(t, time.Now().Before(deadline), "ollama serve did not answer within 60s:\n%s", out.String())
		time.Sleep(100 * time.Millisecond)
	}

	env, err := Start(context.Background(), Options{
		Provision: true, ReadyTimeout: 30 * time.Second,
		Ollama: &OllamaOptions{Hosts: []string{addr}},
	})
	require.NoError(t, err)
	t.Cleanup(env.Close)
	require.Equal(t, []string{tiny.Name}, env.Models())
	require.True(t, slices.Equal([]string{"http://" + addr}, env.OllamaHosts()))

	giveSandboxKeyTokenQuota(t, env)
	checkTokensCharged(t, env, tiny.Name, []string{addr})
}

// TestOllamaScenarios runs the scenarios/routing/ollama_backend_* scenarios
// against the fake model servers and against a stand-in Ollama (where their
// [ollama] lines run too): they must pass on both, with nothing skipped.
func TestOllamaScenarios(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		ollama func(t *testing.T) *OllamaOptions
	}{
		{"Fake", func(*testing.T) *OllamaOptions { return nil }},
		{"OllamaStandIn", func(t *testing.T) *OllamaOptions {
			return &OllamaOptions{Hosts: []string{ollamaStandIn(t, "ollama", 0)}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			target, err := NewTarget(context.Background(), Options{Ollama: tc.ollama(t)})
			require.NoError(t, err)
			t.Cleanup(func() { _ = target.Close() })
			results, err := conformance.RunT(context.Background(), conformance.TestingT(t), target,
				conformance.Options{Run: regexp.MustCompile(`^routing/ollama_backend_`)})
			require.NoError(t, err)
			require.Len(t, results, 3)
			for _, r := range results {
				assert.Equal(t, conformance.Passed, r.Outcome, "%s: %s", r.Name, r.Reason)
			}
		})
	}
}
