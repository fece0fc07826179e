package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/conformance/harness/kind"
)

// TestKindInvocations: what the kind target refuses before it touches
// anything.
func TestKindInvocations(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"conformance", "--target", "kind", "--models", "vllm"}, "--models vllm: with --target kind, want fake or ollama"},
		{[]string{"conformance", "--target", "kind", "--manifests", "."}, "--manifests is for --target sim"},
		{[]string{"conformance", "--target", "nowhere"}, `--target "nowhere": want sim, kind or external`},
		{[]string{"sandbox", "up", "--target", "kind", "--state-dir", "x"}, "--state-dir is for --target sim"},
		{[]string{"sandbox", "up", "--target", "cloud"}, `--target "cloud": want sim or kind`},
		{[]string{"sandbox", "down", "--target", "sim"}, "sandbox down is for --target kind"},
		{[]string{"images", "build", "--platform", "darwin/arm64"}, "--platform: platform \"darwin/arm64\": only linux"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			err := Run(tc.args, &out, &out)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestConformanceOnKindWithoutEngine: with no container engine answering
// (this machine has the docker CLI and no daemon), the command stops at once
// and says to use --target sim.
func TestConformanceOnKindWithoutEngine(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if e, err := kind.DetectEngine(ctx); err == nil {
		t.Skipf("%s answers here: the kind target would run", e.Name)
	}
	var out bytes.Buffer
	err := RunContext(ctx, []string{"conformance", "--target", "kind", "--report-output", t.TempDir() + "/report.yaml"}, &out, &out)
	if err == nil || !strings.HasPrefix(err.Error(), "--target kind needs a container engine (Docker or Podman) and none answered: ") ||
		!strings.HasSuffix(err.Error(), "Run the same suite in-process with --target sim.") {
		t.Errorf("error %v", err)
	}
}
