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

func TestSandboxUp(t *testing.T) {
	t.Parallel()
	ready := filepath.Join(t.TempDir(), "ready.json")
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	errc := make(chan error, 1)
	go func() {
		errc <- RunContext(ctx, []string{"sandbox", "up", "--gateway-addr", addr, "--ready-file", ready}, &out, &out)
	}()
	var r struct {
		Gateway string            `json:"gateway"`
		Models  map[string]string `json:"models"`
	}
	require.NoError(t, json.Unmarshal(waitFile(t, ready, errc), &r))
	assert.Equal(t, "http://"+addr, r.Gateway)
	assert.Len(t, r.Models, 3)
	assert.Contains(t, out.String(), "gateway:  http://"+addr)
	assert.Contains(t, out.String(), "curl -s http://"+addr+"/v1/chat/completions")

	resp, err := http.Post(r.Gateway+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"llama-3.2-1b-instruct","messages":[{"role":"user","content":"Hello"}]}`))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	cancel()
	select {
	case err := <-errc:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("sandbox did not stop after cancellation")
	}
	_, err = os.Stat(ready)
	assert.True(t, os.IsNotExist(err), "the ready file is removed on shutdown")
	assert.Contains(t, out.String(), "shutting down")
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
