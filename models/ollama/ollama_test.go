package ollama

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/ollama/ollama/fs/ggml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatecheck/gatecheck/models/tiny"
)

func TestParseHost(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want, err string }{
		{in: "127.0.0.1:11434", want: "http://127.0.0.1:11434"},
		{in: "localhost", want: "http://localhost:11434"},
		{in: "10.0.0.7:8000", want: "http://10.0.0.7:8000"},
		{in: ":9999", want: "http://127.0.0.1:9999"},
		{in: "http://box", want: "http://box:80"},
		{in: "https://ollama.example", want: "https://ollama.example:443"},
		{in: "http://[::1]:11434", want: "http://[::1]:11434"},
		{in: "[::1]", want: "http://[::1]:11434"},
		{in: " http://box:1234/base ", want: "http://box:1234/base"},
		{in: "", err: "empty ollama host"},
		{in: "ftp://box", err: `scheme "ftp" is not http or https`},
		{in: "box:0", err: `port "0"`},
		{in: "box:http", err: `port "http"`},
	} {
		got, err := ParseHost(tc.in)
		if tc.err != "" {
			require.Error(t, err, tc.in)
			assert.Contains(t, err.Error(), tc.err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got.String(), tc.in)
	}
}

// standIn is a hand-written Ollama: it keeps models by name, takes blobs
// and creates models from them, and answers pulls as told.
type standIn struct {
	mu      sync.Mutex
	models  map[string]api.CreateRequest
	blobs   map[string][]byte
	pull    func(w http.ResponseWriter, name string)
	pulls   []string
	creates int
}

func newStandIn(t *testing.T, models ...string) (*standIn, *Server) {
	t.Helper()
	s := &standIn{models: map[string]api.CreateRequest{}, blobs: map[string][]byte{}}
	for _, m := range models {
		s.models[m] = api.CreateRequest{Model: m}
	}
	srv := httptest.NewServer(s.handler(t))
	t.Cleanup(srv.Close)
	c, err := NewServer(srv.URL)
	require.NoError(t, err)
	return s, c
}

func (s *standIn) handler(t *testing.T) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/show", func(w http.ResponseWriter, r *http.Request) {
		var req api.ShowRequest
		require.NoError(t, json.NewDecoder(r.Body).Decode(&req))
		s.mu.Lock()
		_, ok := s.models[req.Model]
		s.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"error":"model '`+req.Model+`' not found"}`)
			return
		}
		_ = json.NewEncoder(w).Encode(api.ShowResponse{})
	})
	mux.HandleFunc("POST /api/blobs/{digest}", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		sum := sha256.Sum256(b)
		if got := "sha256:" + hex.EncodeToString(sum[:]); got != r.PathValue("digest") {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":"digest mismatch, expected \"`+r.PathValue("digest")+`\", got \"`+got+`\""}`)
			return
		}
		s.mu.Lock()
		s.blobs[r.PathValue("digest")] = b
		s.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
	})
	mux.HandleFunc("POST /api/create", func(w http.ResponseWriter, r *http.Request) {
		var req api.CreateRequest
		require.NoError(t, json.NewDecoder(r.Body).Decode(&req))
		s.mu.Lock()
		defer s.mu.Unlock()
		s.creates++
		for _, d := range req.Files {
			if _, ok := s.blobs[d]; !ok {
				w.WriteHeader(http.StatusBadRequest)
				_, _ = io.WriteString(w, `{"error":"blob `+d+` not found"}`)
				return
			}
		}
		s.models[req.Model] = req
		_, _ = io.WriteString(w, `{"status":"success"}`+"\n")
	})
	mux.HandleFunc("POST /api/pull", func(w http.ResponseWriter, r *http.Request) {
		var req api.PullRequest
		require.NoError(t, json.NewDecoder(r.Body).Decode(&req))
		s.mu.Lock()
		s.pulls = append(s.pulls, req.Model)
		pull := s.pull
		s.mu.Unlock()
		pull(w, req.Model)
	})
	return mux
}

// TestCreateTiny uploads the tiny model and creates it: the blob is the
// GGUF of the seed, the model names it as model.gguf.
func TestCreateTiny(t *testing.T) {
	t.Parallel()
	fake, srv := newStandIn(t)
	digest, err := srv.CreateTiny(t.Context(), "my-tiny", 7)
	require.NoError(t, err)
	want, err := tiny.Encode(7)
	require.NoError(t, err)
	sum := sha256.Sum256(want)
	assert.Equal(t, "sha256:"+hex.EncodeToString(sum[:]), digest)
	fake.mu.Lock()
	defer fake.mu.Unlock()
	assert.True(t, bytes.Equal(want, fake.blobs[digest]), "the uploaded blob is the model")
	req := fake.models["my-tiny"]
	assert.Equal(t, map[string]string{"model.gguf": digest}, req.Files)
	assert.EqualValues(t, 64, req.Parameters["num_predict"])
	g, err := ggml.Decode(bytes.NewReader(fake.blobs[digest]), 0)
	require.NoError(t, err)
	assert.Equal(t, "llama", g.KV().Architecture())
}

func TestEnsure(t *testing.T) {
	t.Parallel()
	t.Run("Present", func(t *testing.T) {
		t.Parallel()
		fake, srv := newStandIn(t, "llama3.2")
		got, err := srv.Ensure(t.Context(), "llama3.2", EnsureOptions{})
		require.NoError(t, err)
		assert.Equal(t, Present, got)
		assert.Zero(t, fake.creates)
	})
	t.Run("TinyIsCreated", func(t *testing.T) {
		t.Parallel()
		fake, srv := newStandIn(t)
		got, err := srv.Ensure(t.Context(), tiny.Name, EnsureOptions{})
		require.NoError(t, err)
		assert.Equal(t, Created, got)
		got, err = srv.Ensure(t.Context(), tiny.Name, EnsureOptions{})
		require.NoError(t, err)
		assert.Equal(t, Present, got, "the second time it is there")
		assert.Equal(t, 1, fake.creates)
	})
	t.Run("MissingWithoutPull", func(t *testing.T) {
		t.Parallel()
		fake, srv := newStandIn(t)
		_, err := srv.Ensure(t.Context(), "llama3.2", EnsureOptions{})
		require.ErrorIs(t, err, ErrMissing)
		assert.Contains(t, err.Error(), "gatecheck model tiny --create llama3.2")
		assert.Contains(t, err.Error(), "--pull")
		assert.Empty(t, fake.pulls, "no pull without --pull")
	})
	t.Run("Pulled", func(t *testing.T) {
		t.Parallel()
		fake, srv := newStandIn(t)
		fake.pull = func(w http.ResponseWriter, name string) {
			enc := json.NewEncoder(w)
			_ = enc.Encode(api.ProgressResponse{Status: "pulling manifest"})
			for _, done := range []int64{0, 500_000, 1_000_000, 2_000_000} {
				_ = enc.Encode(api.ProgressResponse{Status: "pulling 8eeb52dfb3bb", Digest: "sha256:8eeb52dfb3bb", Total: 2_000_000, Completed: done})
			}
			_ = enc.Encode(api.ProgressResponse{Status: "verifying sha256 digest"})
			fake.mu.Lock()
			fake.models[name] = api.CreateRequest{Model: name}
			fake.mu.Unlock()
			_ = enc.Encode(api.ProgressResponse{Status: "success"})
		}
		var progress bytes.Buffer
		got, err := srv.Ensure(t.Context(), "llama3.2", EnsureOptions{Pull: true, Progress: &progress})
		require.NoError(t, err)
		assert.Equal(t, Pulled, got)
		assert.Equal(t, []string{"llama3.2"}, fake.pulls)
		out := progress.String()
		t.Logf("progress:\n%s", out)
		assert.Contains(t, out, "pulling manifest\n")
		assert.Contains(t, out, "\rpulling 8eeb52dfb3bb [===============>              ]  50%  1 MB / 2 MB")
		assert.Contains(t, out, "[==============================] 100%  2 MB / 2 MB\n")
		assert.Contains(t, out, "verifying sha256 digest\nsuccess\n")
	})
}

// TestPullOffline: an Ollama that cannot reach its registry fails the pull
// at once, and so does Pull, suggesting the tiny model.
func TestPullOffline(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		answer  func(w http.ResponseWriter)
		offline bool
	}{
		{"DNS", func(w http.ResponseWriter) {
			_, _ = io.WriteString(w, `{"status":"pulling manifest"}`+"\n"+
				`{"error":"pull model manifest: Get \"https://registry.ollama.ai/v2/library/llama3.2/manifests/latest\": dial tcp: lookup registry.ollama.ai on 127.0.0.53:53: server misbehaving"}`+"\n")
		}, true},
		{"Unreachable", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, `{"error":"pull model manifest: Get \"https://registry.ollama.ai/v2/library/llama3.2/manifests/latest\": dial tcp 104.21.75.227:443: connect: network is unreachable"}`)
		}, true},
		{"NotInRegistry", func(w http.ResponseWriter) {
			_, _ = io.WriteString(w, `{"status":"pulling manifest"}`+"\n"+`{"error":"pull model manifest: file does not exist"}`+"\n")
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake, srv := newStandIn(t)
			fake.pull = func(w http.ResponseWriter, _ string) { tc.answer(w) }
			var progress bytes.Buffer
			start := time.Now()
			err := srv.Pull(t.Context(), "llama3.2", &progress)
			took := time.Since(start)
			var pe *PullError
			require.ErrorAs(t, err, &pe)
			assert.Less(t, took, 2*time.Second, "fails at once")
			assert.Equal(t, tc.offline, pe.Offline)
			assert.Equal(t, "llama3.2", pe.Model)
			assert.Contains(t, err.Error(), "gatecheck model tiny --create llama3.2 --host "+srv.String())
			if tc.offline {
				assert.Contains(t, err.Error(), "cannot reach its model registry (offline?)")
			}
			assert.Equal(t, []string{"llama3.2"}, fake.pulls, "one attempt, no retries")
			t.Logf("error: %v", err)
		})
	}
}

// TestNothingAnswers: with no Ollama at the host, errors say so.
func TestNothingAnswers(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	srv, err := NewServer(addr)
	require.NoError(t, err)
	_, err = srv.Ensure(t.Context(), tiny.Name, EnsureOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no Ollama answers at http://"+addr)
	var pe *PullError
	err = srv.Pull(t.Context(), "llama3.2", nil)
	require.Error(t, err)
	assert.False(t, errors.As(err, &pe), "not a registry problem: %v", err)
	assert.Contains(t, err.Error(), "is `ollama serve` running?")
}

func TestProgressBarWithoutWriter(t *testing.T) {
	t.Parallel()
	p := NewProgressBar(nil)
	p.Update(api.ProgressResponse{Status: "pulling x", Total: 10, Completed: 5})
	p.Done()
	assert.Equal(t, "12 KB", humanBytes(12_345))
	assert.Equal(t, "1.5 GB", humanBytes(1_500_000_000))
}
