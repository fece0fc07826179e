package policy

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/fakes/apigee/state"
	"github.com/gatecheck/gatecheck/internal/apigeeapi"
	"github.com/gatecheck/gatecheck/internal/clock"
	"github.com/stretchr/testify/require"
)

// t0 is the tests' starting time: 30 s into a minute, so minute-aligned
// windows and flexi windows differ.
var t0 = time.Date(2026, 3, 10, 12, 0, 30, 0, time.UTC)

// fixture is a manual clock, a memory store on it, and an Env.
type fixture struct {
	clock *clock.Manual
	store *state.Memory
	env   Env
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	clk := clock.NewManual(t0)
	st := state.NewMemory(state.WithClock(clk))
	t.Cleanup(func() { _ = st.Close() })
	return &fixture{clock: clk, store: st, env: Env{Store: st, Clock: clk}.withDefaults()}
}

func (f *fixture) parse(t testing.TB, xml string) Policy {
	t.Helper()
	p, err := Parse([]byte(xml), f.env)
	require.NoError(t, err)
	return p
}

// msg builds a request-phase message; headers alternate name, value.
func (f *fixture) msg(method, path, body string, headers ...string) *Message {
	m := &Message{Phase: Request, Now: f.clock.Now(), Method: method, Path: path, Header: http.Header{}, ClientIP: "192.0.2.10"}
	if p, q, ok := strings.Cut(path, "?"); ok {
		m.Path, m.RawQuery = p, q
	}
	for i := 0; i+1 < len(headers); i += 2 {
		m.Header.Add(headers[i], headers[i+1])
	}
	if body != "" {
		m.Body = []byte(body)
	}
	return m
}

// consumer is a developer, an app and one credential, for seeding.
type consumer struct {
	dev  apigeeapi.Developer
	app  apigeeapi.DeveloperApp
	prod []apigeeapi.APIProduct
}

// chatProduct grants POST /v1/chat/completions with a quota of limit per
// minute; llm adds an llmOperationGroup for models with a token quota.
func chatProduct(name string, limit string) apigeeapi.APIProduct {
	return apigeeapi.APIProduct{
		Name: name,
		OperationGroup: &apigeeapi.OperationGroup{OperationConfigs: []apigeeapi.OperationConfig{{
			APISource:  "gw-apim",
			Operations: []apigeeapi.Operation{{Resource: "/v1/chat/completions", Methods: []string{"POST"}}},
			Quota:      &apigeeapi.Quota{Limit: limit, Interval: "1", TimeUnit: "minute"},
		}}},
	}
}

func llmProduct(name string, tokenLimit string, models ...string) apigeeapi.APIProduct {
	var ops []apigeeapi.LLMOperation
	for _, m := range models {
		ops = append(ops, apigeeapi.LLMOperation{Resource: "/v1/**", Methods: []string{"POST"}, Model: m})
	}
	return apigeeapi.APIProduct{
		Name: name,
		LLMOperationGroup: &apigeeapi.LLMOperationGroup{OperationConfigs: []apigeeapi.LLMOperationConfig{{
			APISource:     "gw-apim",
			LLMOperations: ops,
			LLMTokenQuota: &apigeeapi.Quota{Limit: tokenLimit, Interval: "1", TimeUnit: "hour"},
		}}},
	}
}

// seed stores a developer with one app holding key (secret "s3cret") for
// the products, all approved.
func (f *fixture) seed(t testing.TB, email, app, key string, products ...apigeeapi.APIProduct) {
	t.Helper()
	ctx := context.Background()
	if _, err := f.store.GetDeveloper(ctx, email); err != nil {
		require.NoError(t, f.store.PutDeveloper(ctx, apigeeapi.Developer{Email: email, DeveloperID: "dev-" + email, Status: "active"}))
	}
	var refs []apigeeapi.APIProductRef
	for _, p := range products {
		require.NoError(t, f.store.PutProduct(ctx, p))
		refs = append(refs, apigeeapi.APIProductRef{APIProduct: p.Name, Status: "approved"})
	}
	require.NoError(t, f.store.PutApp(ctx, email, apigeeapi.DeveloperApp{
		AppID: "id-" + app, Name: app, Status: "approved",
		Credentials: []apigeeapi.Credential{{
			ConsumerKey: key, ConsumerSecret: "s3cret", APIProducts: refs, Status: "approved",
			IssuedAt: "1700000000000", ExpiresAt: "-1",
		}},
	}))
}

// apply runs p and fails the test on a runtime error.
func apply(t testing.TB, p Policy, m *Message) *Fault {
	t.Helper()
	f, err := p.Apply(context.Background(), m)
	require.NoError(t, err)
	return f
}

// requireFault checks a fault's status, code and fault string.
func requireFault(t testing.TB, f *Fault, status int, code, faultString string) {
	t.Helper()
	require.NotNil(t, f, "want fault %s", code)
	require.Equal(t, status, f.Status, "status of %s", f.Code)
	require.Equal(t, code, f.Code)
	require.Equal(t, faultString, f.FaultString)
}

func varOf(m *Message, name string) string {
	v, _ := m.Vars.Get(name)
	return v
}
