package kind

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/fakes/apigee/mgmt"
	"github.com/gatecheck/gatecheck/fakes/apigee/state"
	"github.com/gatecheck/gatecheck/internal/apigeeapi"
)

// TestManagementCalls: the clock and traces go through the runtime's
// management API, provisioning makes the sandbox app once.
func TestManagementCalls(t *testing.T) {
	t.Parallel()
	var advanced time.Duration
	api, err := mgmt.New(mgmt.Options{
		Store: state.NewMemory(), Org: Org, AdminToken: "admin",
		OnClockAdvance: func(d time.Duration) error { advanced += d; return nil },
		Emulator: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/v1/emulator/traces/abc" {
				http.Error(w, `{"error":{"code":404,"message":"trace not found","status":"NOT_FOUND"}}`, http.StatusNotFound)
				return
			}
			w.Write([]byte(`{"id":"abc","flow":"request","steps":[{"policy":"VA"}]}` + "\n"))
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	tg := &Target{mgmtURL: srv.URL, adminToken: "admin", hc: srv.Client()}
	tg.mgmt = apigeeapi.NewClient(srv.URL, Org, "admin", srv.Client())
	ctx := context.Background()

	if err := tg.AdvanceClock(ctx, time.Hour); err != nil || advanced != time.Hour {
		t.Errorf("AdvanceClock: %v, advanced %s", err, advanced)
	}
	b, err := tg.Trace(ctx, "abc")
	if err != nil {
		t.Fatal(err)
	}
	want := "{\n  \"id\": \"abc\",\n  \"flow\": \"request\",\n  \"steps\": [\n    {\n      \"policy\": \"VA\"\n    }\n  ]\n}"
	if string(b) != want {
		t.Errorf("trace:\n%s\nwant:\n%s", b, want)
	}
	if _, err := tg.Trace(ctx, "nope"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("missing trace: %v", err)
	}

	if _, err := tg.mgmt.CreateProduct(ctx, apigeeapi.APIProduct{Name: "p", ApprovalType: "auto"}); err != nil {
		t.Fatal(err)
	}
	k1, err := tg.provision(ctx, []string{"p"})
	if err != nil || k1 == "" {
		t.Fatalf("provision: %q, %v", k1, err)
	}
	k2, err := tg.provision(ctx, []string{"p"})
	if err != nil || k2 != k1 {
		t.Errorf("provisioning again gave %q, %v; want the same key %q", k2, err, k1)
	}
}
