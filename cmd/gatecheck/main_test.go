package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// syncBuffer is a bytes.Buffer safe for a command writing while a test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestVersion(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	require.NoError(t, Run([]string{"version"}, &out, &out))
	assert.Regexp(t, `^gatecheck \S+\n$`, out.String())
}

func TestBadInvocations(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate" for "gatecheck"`},
		{[]string{"sandbox", "up", "--nope"}, "unknown flag: --nope"},
		{[]string{"sandbox", "up", "--manifests", "/does/not/exist"}, "/does/not/exist"},
		{[]string{"--log-level", "loud", "sandbox", "up"}, `--log-level "loud": want debug, info, warn or error`},
		{[]string{"serve", "model", "--model", "m", "--max-num-seqs", "lots"}, "max-num-seqs"},
		{[]string{"serve", "epp", "--endpoints", "nowhere"}, `--endpoints "nowhere": want ip:port`},
		{[]string{"serve", "gateway", "--pool", "bad"}, `--pool "bad": want namespace/name=host:port`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			err := Run(tt.args, &out, &out)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// waitFile polls for a file until it exists or the deadline passes.
func waitFile(t *testing.T, path string, errc <-chan error) []byte {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, err := os.ReadFile(path); err == nil {
			return b
		}
		select {
		case err := <-errc:
			t.Fatalf("command ended before writing %s: %v", path, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s was not written", path)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type readyJSON struct {
	Gateway    string            `json:"gateway"`
	Models     map[string]string `json:"models"`
	Admin      string            `json:"admin"`
	AdminToken string            `json:"adminToken"`
	Org        string            `json:"org"`
	APIKey     string            `json:"apiKey"`
}

// sandbox runs `sandbox up` with extra args until the test ends, and returns
// its ready file's contents.
func sandbox(t *testing.T, args ...string) (readyJSON, *syncBuffer, func() error) {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready.json")
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	errc := make(chan error, 1)
	go func() {
		errc <- RunContext(ctx, append([]string{"sandbox", "up", "--gateway-addr", freeAddr(t), "--ready-file", ready}, args...), out, out)
	}()
	var r readyJSON
	require.NoError(t, json.Unmarshal(waitFile(t, ready, errc), &r))
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-errc:
			return err
		case <-time.After(10 * time.Second):
			return context.DeadlineExceeded
		}
	}
	t.Cleanup(func() { _ = stop() })
	_, err := os.Stat(ready)
	require.NoError(t, err)
	return r, out, func() error {
		err := stop()
		if _, serr := os.Stat(ready); !os.IsNotExist(serr) {
			t.Errorf("the ready file is not removed on shutdown")
		}
		return err
	}
}

func chat(t *testing.T, gateway, key string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, gateway+"/v1/chat/completions",
		strings.NewReader(`{"model":"llama-3.2-1b-instruct","messages":[{"role":"user","content":"Hello"}]}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("x-api-key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestSandboxUp(t *testing.T) {
	t.Parallel()
	r, out, stop := sandbox(t, "--admin-token", "s3cret-admin")
	assert.Len(t, r.Models, 3)
	assert.Equal(t, "gatecheck", r.Org)
	assert.Equal(t, "s3cret-admin", r.AdminToken)
	assert.NotEmpty(t, r.Admin)
	require.NotEmpty(t, r.APIKey)
	assert.Contains(t, out.String(), "gateway:     "+r.Gateway)
	assert.Contains(t, out.String(), "curl -s "+r.Gateway+"/v1/chat/completions -H 'content-type: application/json' -H 'x-api-key: "+r.APIKey+"'")

	assert.Equal(t, http.StatusOK, chat(t, r.Gateway, r.APIKey).StatusCode)
	denied := chat(t, r.Gateway, "")
	assert.Equal(t, http.StatusUnauthorized, denied.StatusCode)
	id := denied.Header.Get("x-gatecheck-trace-id")
	require.NotEmpty(t, id)

	// sandbox trace finds the denied request through the ready file's admin
	// URL and token, and shows the failing policy.
	var trace bytes.Buffer
	require.NoError(t, Run([]string{"sandbox", "trace", "--admin", r.Admin, "--admin-token", r.AdminToken, id}, &trace, &trace))
	assert.Contains(t, trace.String(), "denied steps.oauth.v2.FailedToResolveAPIKey")
	assert.Contains(t, trace.String(), "VerifyAPIKey")
	trace.Reset()
	require.NoError(t, Run([]string{"sandbox", "trace", "--admin", r.Admin, "--admin-token", r.AdminToken, "--limit", "2"}, &trace, &trace))
	assert.Contains(t, trace.String(), "allowed")
	assert.NotContains(t, trace.String(), r.APIKey, "traces never show the key")
	err := Run([]string{"sandbox", "trace", "--admin", r.Admin, "--admin-token", "wrong"}, &trace, &trace)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "401")

	require.NoError(t, stop())
	assert.Contains(t, out.String(), "shutting down")
}

func TestSandboxStateDirKeepsTheKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first, _, stop := sandbox(t, "--state-dir", dir)
	require.NoError(t, stop())
	second, _, _ := sandbox(t, "--state-dir", dir)
	assert.Equal(t, first.APIKey, second.APIKey, "the app and key provisioned on the first start are found again")
	assert.Equal(t, http.StatusOK, chat(t, second.Gateway, second.APIKey).StatusCode)
}

func TestServeModel(t *testing.T) {
	t.Parallel()
	_, port, err := net.SplitHostPort(freeAddr(t))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	errc := make(chan error, 1)
	go func() {
		errc <- RunContext(ctx, []string{"serve", "model", "--port", port, "--model", "tiny"}, &out, &out)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://127.0.0.1:" + port + "/v1/models")
		if err == nil {
			resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			break
		}
		require.True(t, time.Now().Before(deadline), "model server did not answer: %v", err)
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	require.NoError(t, <-errc)
}
