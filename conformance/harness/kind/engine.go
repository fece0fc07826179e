package kind

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"sigs.k8s.io/kind/pkg/cluster"
)

// ErrNoEngine is returned (wrapped, with what each engine said) when no
// container engine answers.
var ErrNoEngine = errors.New("no container engine answered")

// NoEngineError is the error New returns without a container engine.
type NoEngineError struct {
	// Detail says, for each engine tried, why it did not answer.
	Detail string
}

// Error says what is missing and what to do instead.
func (e *NoEngineError) Error() string {
	return fmt.Sprintf("--target kind needs a container engine (Docker or Podman) and none answered: %s. Run the same suite in-process with --target sim.", e.Detail)
}

// Unwrap makes errors.Is(err, ErrNoEngine) true.
func (e *NoEngineError) Unwrap() error { return ErrNoEngine }

// Engine is the container engine kind will use.
type Engine struct {
	// Name is the command: docker, podman or nerdctl.
	Name string
	// Version is what the engine reported.
	Version string
	// Provider selects it in cluster.NewProvider.
	Provider cluster.ProviderOption
}

// engines are tried in kind's order of detection.
var engines = []struct {
	name    string
	info    []string
	option  func() cluster.ProviderOption
	envName []string // KIND_EXPERIMENTAL_PROVIDER values that select it
}{
	{"docker", []string{"info", "--format", "{{.ServerVersion}}"}, cluster.ProviderWithDocker, []string{"docker"}},
	{"nerdctl", []string{"info", "--format", "{{.ServerVersion}}"}, func() cluster.ProviderOption { return cluster.ProviderWithNerdctl("") }, []string{"nerdctl", "finch", "nerdctl.lima"}},
	{"podman", []string{"info", "--format", "{{.Version.Version}}"}, cluster.ProviderWithPodman, []string{"podman"}},
}

// prober runs engine commands; tests replace it.
type prober struct {
	lookPath func(string) (string, error)
	run      func(ctx context.Context, name string, args ...string) (stdout, stderr []byte, err error)
	env      func(string) string
}

var systemProber = prober{
	lookPath: exec.LookPath,
	run: func(ctx context.Context, name string, args ...string) ([]byte, []byte, error) {
		var out, errb bytes.Buffer
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return out.Bytes(), errb.Bytes(), err
	},
	env: os.Getenv,
}

// DetectEngine finds a container engine that answers: the one
// KIND_EXPERIMENTAL_PROVIDER names, or else the first installed of docker,
// nerdctl and podman whose engine answers `info` within a few seconds. A CLI
// without its engine (a docker command with no daemon behind it) does not
// count. The error is a *NoEngineError.
func DetectEngine(ctx context.Context) (Engine, error) { return systemProber.detect(ctx) }

func (p prober) detect(ctx context.Context) (Engine, error) {
	want := p.env("KIND_EXPERIMENTAL_PROVIDER")
	var details []string
	for _, e := range engines {
		if want != "" && !contains(e.envName, want) {
			continue
		}
		path, err := p.lookPath(e.name)
		if err != nil {
			details = append(details, e.name+": not installed")
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		out, stderr, err := p.run(cctx, path, e.info...)
		cancel()
		if err != nil {
			details = append(details, e.name+": "+firstLine(stderr, err))
			continue
		}
		return Engine{Name: e.name, Version: strings.TrimSpace(string(out)), Provider: e.option()}, nil
	}
	if want != "" && len(details) == 0 {
		details = append(details, fmt.Sprintf("KIND_EXPERIMENTAL_PROVIDER=%s names no engine kind supports", want))
	}
	return Engine{}, &NoEngineError{Detail: strings.Join(details, "; ")}
}

// firstLine is the most telling line of an engine's complaint.
func firstLine(stderr []byte, err error) string {
	for _, l := range strings.Split(strings.TrimSpace(string(stderr)), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "Client:") || strings.HasPrefix(l, "Server:") {
			continue
		}
		return strings.TrimSuffix(strings.TrimPrefix(l, "ERROR: "), ".")
	}
	return err.Error()
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
