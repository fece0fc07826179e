package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatecheck/gatecheck/fakes/model"
	"github.com/gatecheck/gatecheck/models/tiny"
)

// fakeOllama is a hand-written Ollama for the model commands: it keeps
// models and blobs, creates models from blobs, and fails every pull as an
// offline Ollama does, at once.
type fakeOllama struct {
	mu     sync.Mutex
	models map[string]api.CreateRequest
	blobs  map[string][]byte
	pulls  int
	url    string
}

func newFakeOllama(t *testing.T, models ...string) *fakeOllama {
	t.Helper()
	f := &fakeOllama{models: map[string]api.CreateRequest{}, blobs: map[string][]byte{}}
	for _, m := range models {
		f.models[m] = api.CreateRequest{Model: m}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/show", func(w http.ResponseWriter, r *http.Request) {
		var req api.ShowRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		f.mu.Lock()
		_, ok := f.models[req.Model]
		f.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"error":"model '`+req.Model+`' not found"}`)
			return
		}
		_, _ = io.WriteString(w, `{}`)
	})
	mux.HandleFunc("POST /api/blobs/{digest}", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.blobs[r.PathValue("digest")] = b
		f.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
	})
	mux.HandleFunc("POST /api/create", func(w http.ResponseWriter, r *http.Request) {
		var req api.CreateRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		f.mu.Lock()
		f.models[req.Model] = req
		f.mu.Unlock()
		_, _ = io.WriteString(w, `{"status":"success"}`+"\n")
	})
	mux.HandleFunc("POST /api/pull", func(w http.ResponseWriter, _ *http.Request) {
		f.mu.Lock()
		f.pulls++
		f.mu.Unlock()
		_, _ = io.WriteString(w, `{"status":"pulling manifest"}`+"\n"+
			`{"error":"pull model manifest: Get \"https://registry.ollama.ai/v2/library/llama3.2/manifests/latest\": dial tcp: lookup registry.ollama.ai: no such host"}`+"\n")
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

func TestModelTinyOut(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "m.gguf")
	var out bytes.Buffer
	require.NoError(t, Run([]string{"model", "tiny", "--out", path, "--seed", "3"}, &out, &out))
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	want, err := tiny.Encode(3)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(want, got), "the file is the model of seed 3")
	sum := sha256.Sum256(want)
	assert.Contains(t, out.String(), "wrote "+path+": tiny random-weight llama model, seed 3,")
	assert.Contains(t, out.String(), "sha256:"+hex.EncodeToString(sum[:]))
}

func TestModelTinyCreate(t *testing.T) {
	t.Parallel()
	f := newFakeOllama(t)
	var out bytes.Buffer
	require.NoError(t, Run([]string{"model", "tiny", "--create", tiny.Name, "--host", f.url}, &out, &out))
	want, err := tiny.Encode(tiny.DefaultSeed)
	require.NoError(t, err)
	sum := sha256.Sum256(want)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	f.mu.Lock()
	defer f.mu.Unlock()
	assert.True(t, bytes.Equal(want, f.blobs[digest]), "the blob is the model, under its digest")
	assert.Equal(t, map[string]string{"model.gguf": digest}, f.models[tiny.Name].Files)
	u, err := url.Parse(f.url)
	require.NoError(t, err)
	assert.Contains(t, out.String(), "created "+tiny.Name+" on Ollama at "+f.url+" from blob "+digest)
	assert.Contains(t, out.String(), "gatecheck sandbox up --models ollama --ollama-host "+u.Host+"\n")
	_, err = os.Stat(tiny.Name + ".gguf")
	assert.True(t, os.IsNotExist(err), "--create alone writes no file")
}

func TestModelPull(t *testing.T) {
	t.Parallel()
	t.Run("Offline", func(t *testing.T) {
		t.Parallel()
		f := newFakeOllama(t)
		var out bytes.Buffer
		start := time.Now()
		err := Run([]string{"model", "pull", "llama3.2", "--host", f.url}, &out, &out)
		require.Error(t, err)
		assert.Less(t, time.Since(start), 2*time.Second, "fails at once")
		assert.Contains(t, err.Error(), "cannot reach its model registry (offline?)")
		assert.Contains(t, err.Error(), "gatecheck model tiny --create llama3.2 --host "+f.url)
		assert.Contains(t, out.String(), "pulling manifest", "the progress so far")
		assert.Equal(t, 1, f.pulls)
	})
	t.Run("Present", func(t *testing.T) {
		t.Parallel()
		f := newFakeOllama(t, "llama3.2")
		var out bytes.Buffer
		require.NoError(t, Run([]string{"model", "pull", "llama3.2", "--host", f.url}, &out, &out))
		assert.Equal(t, "llama3.2 is on Ollama at "+f.url+"\n", out.String())
		assert.Zero(t, f.pulls)
	})
}

func TestModelBadInvocations(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"model", "pull"}, "accepts 1 arg(s), received 0"},
		{[]string{"model", "tiny", "--create", "m", "--host", "ftp://box"}, `--host: ollama host "ftp://box": scheme "ftp" is not http or https`},
		{[]string{"model", "tiny", "--seed", "many"}, `invalid argument "many" for "--seed"`},
		{[]string{"sandbox", "up", "--models", "vllm"}, `--models "vllm": want fake or ollama`},
		{[]string{"sandbox", "up", "--pull"}, "--pull needs --models ollama"},
		{[]string{"sandbox", "up", "--ollama-host", "box"}, "--ollama-host needs --models ollama"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			err := Run(tc.args, &out, &out)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// TestSandboxUpOllama runs `sandbox up --models ollama` against a stand-in
// Ollama (the fake model server answering as the tiny model, with no
// metrics): the sandbox names the Ollama model in its curl lines, and both
// APIs answer through the gateway with the sandbox key.
func TestSandboxUpOllama(t *testing.T) {
	t.Parallel()
	m, err := model.New(model.Config{Model: tiny.Name, PodName: "ollama"})
	require.NoError(t, err)
	t.Cleanup(m.Close)
	h := m.Handler()
	standIn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(standIn.Close)
	u, err := url.Parse(standIn.URL)
	require.NoError(t, err)

	r, out, stop := sandbox(t, "--models", "ollama", "--ollama-host", u.Host)
	assert.Equal(t, map[string]string{"ollama-0": standIn.URL}, r.Models)
	assert.Contains(t, out.String(), "models:      "+tiny.Name+"\n")
	assert.Contains(t, out.String(), "ollama:      "+standIn.URL+"  (the pool's endpoints)")
	assert.Contains(t, out.String(), `-d '{"model":"`+tiny.Name+`","messages":[{"role":"user","content":"Hello"}]}'`)
	assert.Contains(t, out.String(), "curl -s "+r.Gateway+"/api/chat -H 'x-api-key: "+r.APIKey+"'")

	for path, body := range map[string]string{
		"/v1/chat/completions": `{"model":"` + tiny.Name + `","messages":[{"role":"user","content":"Hello"}]}`,
		"/api/chat":            `{"model":"` + tiny.Name + `","stream":false,"messages":[{"role":"user","content":"Hello"}]}`,
	} {
		req, err := http.NewRequest(http.MethodPost, r.Gateway+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("x-api-key", r.APIKey)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", path, b)
		assert.Equal(t, u.Host, resp.Header.Get("x-gateway-destination-endpoint-served"), path)
	}
	require.NoError(t, stop())
}
