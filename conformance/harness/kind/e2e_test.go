package kind_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"sigs.k8s.io/e2e-framework/pkg/env"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	"github.com/gatecheck/gatecheck/conformance"
	"github.com/gatecheck/gatecheck/conformance/harness/kind"
)

// The suite on a kind cluster under go test, the cluster's lifecycle driven
// by e2e-framework as the simulation's is in package conformance. It needs a
// container engine and minutes, so the cluster comes up only with
// GATECHECK_KIND_E2E=1 (make conformance TARGET=kind is the usual way; this
// is for go test users; GATECHECK_KIND_KEEP=1 keeps the cluster):
//
//	GATECHECK_KIND_E2E=1 go test ./conformance/harness/kind -run TestSuiteOnKind -timeout 40m -v
var testenv env.Environment

type targetKey struct{}

func TestMain(m *testing.M) {
	testenv = env.NewWithConfig(envconf.New())
	if os.Getenv("GATECHECK_KIND_E2E") == "1" {
		testenv.Setup(func(ctx context.Context, _ *envconf.Config) (context.Context, error) {
			tctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
			defer cancel()
			tg, err := kind.New(tctx, kind.Options{
				Progress: os.Stderr, LogDir: filepath.Join(os.TempDir(), "gatecheck-kind-logs"),
				Keep: os.Getenv("GATECHECK_KIND_KEEP") == "1",
			})
			if err != nil {
				return ctx, err
			}
			return context.WithValue(ctx, targetKey{}, tg), nil
		})
		testenv.Finish(func(ctx context.Context, _ *envconf.Config) (context.Context, error) {
			if tg, ok := ctx.Value(targetKey{}).(*kind.Target); ok {
				return ctx, tg.Close()
			}
			return ctx, nil
		})
	}
	os.Exit(testenv.Run(m))
}

func TestSuiteOnKind(t *testing.T) {
	if os.Getenv("GATECHECK_KIND_E2E") != "1" {
		t.Skip("set GATECHECK_KIND_E2E=1 to bring up a kind cluster and run the suite on it")
	}
	f := features.New("conformance on kind").Assess("scenarios", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
		tg := ctx.Value(targetKey{}).(*kind.Target)
		results, err := conformance.RunT(ctx, conformance.TestingT(t), tg, conformance.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(results) == 0 {
			t.Fatal("no scenarios ran")
		}
		if t.Failed() {
			dir := filepath.Join(os.TempDir(), "gatecheck-kind-logs")
			if err := tg.CollectLogs(ctx, dir); err == nil {
				t.Logf("the cluster's logs are in %s", dir)
			}
		}
		return ctx
	}).Feature()
	testenv.Test(t, f)
}
