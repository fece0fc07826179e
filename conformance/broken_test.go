package conformance_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatecheck/gatecheck/conformance"
	"github.com/gatecheck/gatecheck/conformance/harness/external"
	"github.com/gatecheck/gatecheck/conformance/harness/sim"
	"github.com/gatecheck/gatecheck/fakes/model"
)

// TestSuiteCatchesABrokenGateway points the suite at a bare model server —
// no gateway, no Apigee in front — with a working management API beside it,
// so every scenario provisions keys and products that nothing enforces. The
// security profiles must fail, each with reasons a reader understands.
func TestSuiteCatchesABrokenGateway(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env, err := sim.Start(ctx, sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	m, err := model.New(model.Config{Model: "qwen2.5-0.5b-instruct", ServedModelNames: []string{"qwen2.5-0.5b-instruct", "llama-3.2-1b-instruct"}, LoRAModules: []string{"support-bot"}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	bare := httptest.NewServer(m.Handler())
	defer bare.Close()

	r := env.Ready()
	target, err := external.New(external.Options{
		GatewayURL: bare.URL, ManagementURL: r.Admin, Org: r.Org, Token: r.AdminToken,
		Models: []string{"qwen2.5-0.5b-instruct"},
	})
	if err != nil {
		t.Fatal(err)
	}
	results, err := conformance.Run(ctx, target, conformance.Options{})
	if err != nil {
		t.Fatal(err)
	}
	failed := map[conformance.ProfileName][]conformance.Result{}
	for _, res := range results {
		if res.Outcome != conformance.Failed {
			continue
		}
		seen := map[conformance.ProfileName]bool{}
		for _, f := range res.Features {
			feat, _ := conformance.LookupFeature(f)
			if !seen[feat.Profile] {
				seen[feat.Profile] = true
				failed[feat.Profile] = append(failed[feat.Profile], res)
			}
		}
	}
	for _, p := range []conformance.ProfileName{conformance.ProfileAuthn, conformance.ProfileAuthz, conformance.ProfileRateLimit, conformance.ProfileThreat} {
		if len(failed[p]) == 0 {
			t.Errorf("profile %s: no scenario failed against a bare model server", p)
			continue
		}
		for _, res := range failed[p] {
			// A readable reason names the scenario file and line and says
			// what went wrong: "status is 200, want 401 (answer 200: ...)".
			file, msg, _ := strings.Cut(res.Reason, ": ")
			if !strings.HasPrefix(file, "scenarios/"+res.Name+".txtar:") || len(strings.TrimSpace(msg)) < 10 {
				t.Errorf("%s: unreadable failure reason: %q", res.Name, res.Reason)
			}
		}
		t.Logf("%s: %d scenarios failed, e.g. %s: %s", p, len(failed[p]), failed[p][0].Name, firstLine(failed[p][0].Reason))
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
