package ollama

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ollama/ollama/api"
	"github.com/ollama/ollama/envconfig"

	"github.com/gatecheck/gatecheck/models/tiny"
)

// DefaultPort is Ollama's port when a host names none.
const DefaultPort = "11434"

// TinyParameters are the parameters the tiny model is created with: short
// answers by default (a random-weight model rarely samples its end token)
// and its trained context.
var TinyParameters = map[string]any{
	"num_predict": 64,
	"num_ctx":     tiny.ContextLength,
}

// ParseHost reads an Ollama host as the ollama CLI reads OLLAMA_HOST:
// [scheme://]host[:port][/path]. Without a scheme it is http on port 11434;
// with http:// or https:// and no port, 80 or 443. A bare port (":11434")
// means 127.0.0.1. Unlike the CLI, a bad port is an error, not a warning.
func ParseHost(s string) (*url.URL, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("empty ollama host")
	}
	port := DefaultPort
	scheme, hostport, ok := strings.Cut(s, "://")
	switch {
	case !ok:
		scheme, hostport = "http", s
	case scheme == "http":
		port = "80"
	case scheme == "https":
		port = "443"
	default:
		return nil, fmt.Errorf("ollama host %q: scheme %q is not http or https", s, scheme)
	}
	hostport, path, _ := strings.Cut(hostport, "/")
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		host = strings.Trim(hostport, "[]")
	} else {
		port = p
	}
	if host == "" {
		host = "127.0.0.1"
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return nil, fmt.Errorf("ollama host %q: port %q is not a number in 1..65535", s, port)
	}
	u := &url.URL{Scheme: scheme, Host: net.JoinHostPort(host, port)}
	if path != "" {
		u.Path = "/" + path
	}
	return u, nil
}

// EnvHost is the Ollama host of the environment (OLLAMA_HOST), read as the
// ollama CLI reads it: http://127.0.0.1:11434 when unset.
func EnvHost() *url.URL { return envconfig.Host() }

// Server is one Ollama server and a client for it.
type Server struct {
	// URL is the server's base URL.
	URL *url.URL
	// Client is Ollama's API client for URL.
	Client *api.Client
}

// NewServer makes a client for the Ollama at host (see ParseHost); an empty
// host means OLLAMA_HOST. Requests run until their context ends: pulls and
// generations can be long.
func NewServer(host string) (*Server, error) {
	u := EnvHost()
	if host != "" {
		var err error
		if u, err = ParseHost(host); err != nil {
			return nil, err
		}
	}
	return &Server{URL: u, Client: api.NewClient(u, &http.Client{})}, nil
}

// String is the server's base URL.
func (s *Server) String() string { return s.URL.String() }

// reach turns a transport error (nothing answers at the URL) into an error
// that says what to do; other errors come back as they are.
func (s *Server) reach(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("no Ollama answers at %s (is `ollama serve` running? OLLAMA_HOST or --host names another): %w", s, err)
	}
	return err
}

// Has reports whether the server has the model name (Ollama's Show; a 404 is
// no).
func (s *Server) Has(ctx context.Context, name string) (bool, error) {
	_, err := s.Client.Show(ctx, &api.ShowRequest{Model: name})
	var se api.StatusError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &se) && se.StatusCode == http.StatusNotFound:
		return false, nil
	}
	return false, fmt.Errorf("show %s on Ollama at %s: %w", name, s, s.reach(err))
}

// CreateTiny writes the tiny model for seed, uploads it as a blob and
// creates the model name from it, so the server serves it without any
// download. It returns the blob's digest ("sha256:...").
func (s *Server) CreateTiny(ctx context.Context, name string, seed int64) (string, error) {
	b, err := tiny.Encode(seed)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	if err := s.Client.CreateBlob(ctx, digest, bytes.NewReader(b)); err != nil {
		return "", fmt.Errorf("upload the tiny model to Ollama at %s: %w", s, s.reach(err))
	}
	stream := false
	req := &api.CreateRequest{
		Model:      name,
		Stream:     &stream,
		Files:      map[string]string{"model.gguf": digest},
		Parameters: TinyParameters,
	}
	if err := s.Client.Create(ctx, req, func(api.ProgressResponse) error { return nil }); err != nil {
		return "", fmt.Errorf("create %s on Ollama at %s: %w", name, s, s.reach(err))
	}
	return digest, nil
}

// PullError is a pull that failed. Its message says why and suggests the
// way that needs no registry: gatecheck's tiny model under the same name.
type PullError struct {
	// Model is the model asked for.
	Model string
	// Host is the Ollama server's base URL.
	Host string
	// Offline says the server could not reach its registry.
	Offline bool
	// Err is the error Ollama answered.
	Err error
}

// Suggestion is the command that serves a model of that name with no
// registry: gatecheck's tiny random-weight model.
func Suggestion(model, host string) string {
	cmd := "gatecheck model tiny --create " + model
	if host != "" && host != EnvHost().String() {
		cmd += " --host " + host
	}
	return cmd
}

// Error says why the pull failed and what serves a model without it.
func (e *PullError) Error() string {
	why, instead := "the pull failed", "to serve a model with no registry, create gatecheck's tiny random-weight model under that name:"
	if e.Offline {
		why, instead = "it cannot reach its model registry (offline?)", "without a registry, serve gatecheck's tiny random-weight model under that name instead:"
	}
	return fmt.Sprintf("pull %s on Ollama at %s: %s: %v\n%s\n  %s",
		e.Model, e.Host, why, e.Err, instead, Suggestion(e.Model, e.Host))
}

// Unwrap is the error Ollama answered.
func (e *PullError) Unwrap() error { return e.Err }

// offlineMarks are the words of the errors Ollama passes on when its
// registry is out of reach: DNS, routing, refused or timed-out connections.
var offlineMarks = []string{
	"dial tcp", "no such host", "server misbehaving", "name resolution",
	"network is unreachable", "no route to host", "connection refused",
	"connection reset", "i/o timeout", "tls handshake timeout", "context deadline exceeded",
}

func isOffline(err error) bool {
	msg := strings.ToLower(err.Error())
	for _, m := range offlineMarks {
		if strings.Contains(msg, m) {
			return true
		}
	}
	return false
}

// Pull pulls the model name onto the server, drawing its progress on
// progress (nil draws nothing). It does not retry: offline, Ollama fails the
// pull at once and so does Pull, with a *PullError. When nothing answers at
// the server's URL the error says so instead.
func (s *Server) Pull(ctx context.Context, name string, progress io.Writer) error {
	bar := NewProgressBar(progress)
	err := s.Client.Pull(ctx, &api.PullRequest{Model: name}, func(r api.ProgressResponse) error {
		bar.Update(r)
		return nil
	})
	bar.Done()
	if err == nil {
		return nil
	}
	var ue *url.Error
	if errors.As(err, &ue) || ctx.Err() != nil {
		return fmt.Errorf("pull %s on Ollama at %s: %w", name, s, s.reach(err))
	}
	return &PullError{Model: name, Host: s.String(), Offline: isOffline(err), Err: err}
}

// Outcome says what Ensure did.
type Outcome string

// Outcomes of Ensure.
const (
	// Present: the server had the model.
	Present Outcome = "present"
	// Created: the tiny model was created.
	Created Outcome = "created"
	// Pulled: the model was pulled.
	Pulled Outcome = "pulled"
)

// EnsureOptions say how Ensure may get a missing model.
type EnsureOptions struct {
	// Pull pulls a missing model other than the tiny one.
	Pull bool
	// Progress receives the pull's progress bar; nil draws none.
	Progress io.Writer
	// Seed is the tiny model's seed; 0 means tiny.DefaultSeed.
	Seed int64
}

// ErrMissing is wrapped by Ensure's error for a model the server lacks and
// may not pull.
var ErrMissing = errors.New("model not found")

// Ensure makes sure the server has the model name: nothing to do when it
// has it; the tiny model (tiny.Name) is created; another model is pulled
// when opts.Pull says so, and is otherwise an error that wraps ErrMissing
// and says how to get it.
func (s *Server) Ensure(ctx context.Context, name string, opts EnsureOptions) (Outcome, error) {
	has, err := s.Has(ctx, name)
	if err != nil {
		return "", err
	}
	if has {
		return Present, nil
	}
	if name == tiny.Name {
		seed := opts.Seed
		if seed == 0 {
			seed = tiny.DefaultSeed
		}
		if _, err := s.CreateTiny(ctx, name, seed); err != nil {
			return "", err
		}
		return Created, nil
	}
	if !opts.Pull {
		return "", fmt.Errorf("%w: Ollama at %s has no model %s: pull it (--pull, or gatecheck model pull %s), or, with no registry, serve gatecheck's tiny model under that name: %s",
			ErrMissing, s, name, name, Suggestion(name, s.String()))
	}
	if err := s.Pull(ctx, name, opts.Progress); err != nil {
		return "", err
	}
	return Pulled, nil
}
