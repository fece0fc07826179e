package mgmt_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatecheck/gatecheck/fakes/apigee/mgmt"
	"github.com/gatecheck/gatecheck/fakes/apigee/state"
	"github.com/gatecheck/gatecheck/internal/apigeeapi"
	"github.com/gatecheck/gatecheck/internal/clock"
)

const adminToken = "admin-token-for-tests"

var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// env is a management API on a real loopback server, with a client.
type env struct {
	t      *testing.T
	store  state.Store
	clock  *clock.Manual
	srv    *httptest.Server
	client *apigeeapi.Client

	mu       sync.Mutex
	advanced []time.Duration
}

// seededIDs is a deterministic Options.IDs.
func seededIDs(seed uint64) func() string {
	r := rand.New(rand.NewPCG(seed, seed))
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	return func() string {
		b := make([]byte, 24)
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		return string(b)
	}
}

func newEnv(t *testing.T, edit ...func(*mgmt.Options)) *env {
	t.Helper()
	e := &env{t: t, store: state.NewMemory(), clock: clock.NewManual(epoch)}
	opts := mgmt.Options{
		Store: e.store, AdminToken: adminToken, Clock: e.clock, IDs: seededIDs(1),
		OnClockAdvance: func(d time.Duration) error {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.advanced = append(e.advanced, d)
			e.clock.Advance(d)
			return nil
		},
	}
	for _, f := range edit {
		f(&opts)
	}
	api, err := mgmt.New(opts)
	require.NoError(t, err)
	e.srv = httptest.NewServer(api.Handler())
	t.Cleanup(e.srv.Close)
	org := opts.Org
	if org == "" {
		org = mgmt.DefaultOrg
	}
	e.client = apigeeapi.NewClient(e.srv.URL, org, adminToken, e.srv.Client())
	return e
}

// raw sends a request with the admin token (unless headers say otherwise)
// and returns the status and body.
func (e *env) raw(method, path, contentType, body string, headers ...string) (int, http.Header, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	require.NoError(e.t, err)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	resp, err := e.srv.Client().Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	return resp.StatusCode, resp.Header, string(data)
}

// googleError decodes Google's error shape, failing if the body is not one.
func googleError(t *testing.T, body string) apigeeapi.ErrorBody {
	t.Helper()
	var g apigeeapi.Error
	require.NoError(t, json.Unmarshal([]byte(body), &g), body)
	require.NotEmpty(t, g.Err.Status, body)
	return g.Err
}

// apiError asserts err is an *APIError with this status code and canonical
// status, and returns it.
func apiError(t *testing.T, err error, code int, status string) *apigeeapi.APIError {
	t.Helper()
	require.Error(t, err)
	var ae *apigeeapi.APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, code, ae.StatusCode, "%v", err)
	require.Equal(t, status, ae.Status, "%v", err)
	return ae
}

var ctx = context.Background()

func developer(email string) apigeeapi.Developer {
	return apigeeapi.Developer{Email: email, FirstName: "Ana", LastName: "Lima", UserName: "ana",
		Attributes: []apigeeapi.Attribute{{Name: "team", Value: "ml"}}}
}

func product(name string, scopes ...string) apigeeapi.APIProduct {
	return apigeeapi.APIProduct{
		Name: name, ApprovalType: "auto", Scopes: scopes,
		Attributes: []apigeeapi.Attribute{{Name: "access", Value: "private"}},
		OperationGroup: &apigeeapi.OperationGroup{OperationConfigs: []apigeeapi.OperationConfig{{
			APISource:  "inference-gateway-apim",
			Operations: []apigeeapi.Operation{{Resource: "/v1/chat/completions", Methods: []string{"POST"}}},
			Quota:      &apigeeapi.Quota{Limit: "100", Interval: "1", TimeUnit: "minute"},
		}}},
	}
}

// provision creates a developer, products and an app with those products,
// and returns the app.
func (e *env) provision(email, appName string, products ...apigeeapi.APIProduct) apigeeapi.DeveloperApp {
	e.t.Helper()
	if _, err := e.client.GetDeveloper(ctx, email); err != nil {
		_, err := e.client.CreateDeveloper(ctx, developer(email))
		require.NoError(e.t, err)
	}
	var names []string
	for _, p := range products {
		if _, err := e.client.GetProduct(ctx, p.Name); err != nil {
			_, err := e.client.CreateProduct(ctx, p)
			require.NoError(e.t, err)
		}
		names = append(names, p.Name)
	}
	app, err := e.client.CreateApp(ctx, email, apigeeapi.DeveloperApp{Name: appName, APIProducts: names})
	require.NoError(e.t, err)
	return app
}

func ms(t time.Time) string { return fmt.Sprint(t.UnixMilli()) }

func newServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// advances returns the durations the clock hook has seen.
func (e *env) advances() []time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]time.Duration(nil), e.advanced...)
}
