package conformance_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"sigs.k8s.io/e2e-framework/pkg/env"
	"sigs.k8s.io/e2e-framework/pkg/envconf"
	"sigs.k8s.io/e2e-framework/pkg/features"

	"github.com/gatecheck/gatecheck/conformance"
	"github.com/gatecheck/gatecheck/conformance/harness/sim"
)

// The environment lifecycle (bringing the target up before the scenarios and
// down after) is e2e-framework's, as it will be for the kind target.
var testenv env.Environment

type targetKey struct{}

func TestMain(m *testing.M) {
	testenv = env.NewWithConfig(envconf.New())
	testenv.Setup(func(ctx context.Context, _ *envconf.Config) (context.Context, error) {
		t, err := sim.NewTarget(ctx, sim.Options{})
		if err != nil {
			return ctx, err
		}
		return context.WithValue(ctx, targetKey{}, t), nil
	})
	testenv.Finish(func(ctx context.Context, _ *envconf.Config) (context.Context, error) {
		if t, ok := ctx.Value(targetKey{}).(*sim.Target); ok {
			return ctx, t.Close()
		}
		return ctx, nil
	})
	os.Exit(testenv.Run(m))
}

// TestScenarios runs every embedded scenario against the simulation, each as
// a subtest: a scenario that fails fails the test.
func TestScenarios(t *testing.T) {
	f := features.New("conformance").Assess("scenarios", func(ctx context.Context, t *testing.T, _ *envconf.Config) context.Context {
		target := ctx.Value(targetKey{}).(*sim.Target)
		results, err := conformance.RunT(ctx, conformance.TestingT(t), target, conformance.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(results) == 0 {
			t.Fatal("no scenarios ran")
		}
		var skipped []string
		for _, r := range results {
			if r.Outcome == conformance.Skipped {
				skipped = append(skipped, r.Name+": "+r.Reason)
			}
		}
		if len(skipped) > 0 {
			t.Errorf("on the simulation every scenario must run; skipped:\n%s", strings.Join(skipped, "\n"))
		}
		return ctx
	}).Feature()
	testenv.Test(t, f)
}
