package mgmt_test

import (
	"errors"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatecheck/gatecheck/fakes/apigee/mgmt"
	"github.com/gatecheck/gatecheck/fakes/apigee/state"
	"github.com/gatecheck/gatecheck/internal/apigeeapi"
	"github.com/gatecheck/gatecheck/internal/clock"
)

func TestClockAdvance(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	require.NoError(t, e.client.AdvanceClock(ctx, 61*time.Second))
	require.NoError(t, e.client.AdvanceClock(ctx, 0))
	assert.Equal(t, []time.Duration{61 * time.Second, 0}, e.advances(), "the hook sees each advance")

	code, _, body := e.raw("POST", "/v1/emulator/clock:advance", "application/json", `{"duration":"1h"}`)
	require.Equal(t, 200, code)
	assert.JSONEq(t, `{"duration":"1h0m0s","now":"`+ms(epoch.Add(time.Hour+61*time.Second))+`"}`, body)

	for _, tc := range []struct{ body, want string }{
		{`{"duration":"soon"}`, "duration"},
		{`{"duration":""}`, "duration"},
		{`{"duration":"-1s"}`, "negative"},
		{`{"duration":"1s","now":"5"}`, "output only"},
		{`{"seconds":5}`, "unknown field"},
	} {
		code, _, body := e.raw("POST", "/v1/emulator/clock:advance", "application/json", tc.body)
		assert.Equal(t, 400, code, tc.body)
		assert.Contains(t, googleError(t, body).Message, tc.want, tc.body)
	}
	assert.Len(t, e.advances(), 3, "bad requests do not reach the hook")
	code, _, _ = e.raw("GET", "/v1/emulator/clock:advance", "", "")
	assert.Equal(t, 405, code)

	real := newEnv(t, func(o *mgmt.Options) { o.OnClockAdvance = nil })
	err := real.client.AdvanceClock(ctx, time.Minute)
	apiError(t, err, 501, "UNIMPLEMENTED")

	failing := newEnv(t, func(o *mgmt.Options) {
		o.OnClockAdvance = func(time.Duration) error { return errors.New("the clock is stuck") }
	})
	err = failing.client.AdvanceClock(ctx, time.Minute)
	ae := apiError(t, err, 400, "FAILED_PRECONDITION")
	assert.Contains(t, ae.Message, "the clock is stuck")
}

func TestEmulatorRoutes(t *testing.T) {
	t.Parallel()
	var (
		mu   sync.Mutex
		seen []string
	)
	e := newEnv(t, func(o *mgmt.Options) {
		o.Emulator = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, r.Method+" "+r.URL.Path)
			w.WriteHeader(http.StatusTeapot)
		})
	})
	code, _, _ := e.raw("GET", "/v1/emulator/traces", "", "")
	assert.Equal(t, http.StatusTeapot, code)
	code, _, _ = e.raw("GET", "/v1/emulator/traces", "", "", "Authorization", "")
	assert.Equal(t, 401, code, "emulator routes need the admin token")
	require.NoError(t, e.client.AdvanceClock(ctx, time.Second), "clock:advance is not passed on")
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"GET /v1/emulator/traces"}, seen)

	none := newEnv(t)
	code, _, body := none.raw("GET", "/v1/emulator/traces", "", "")
	assert.Equal(t, 404, code)
	assert.Equal(t, "NOT_FOUND", googleError(t, body).Status)
}

// TestFileStoreSurvivesRestart provisions through the API over a file
// store, restarts everything, and gets a token with the same key.
func TestFileStoreSurvivesRestart(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.db")
	c := clock.NewManual(epoch)
	start := func() (*apigeeapi.Client, func()) {
		f, err := state.OpenFile(path, state.WithClock(c))
		require.NoError(t, err)
		api, err := mgmt.New(mgmt.Options{Store: f, AdminToken: adminToken, Clock: c})
		require.NoError(t, err)
		e := &env{t: t, store: f, clock: c}
		e.srv = newServer(t, api.Handler())
		e.client = apigeeapi.NewClient(e.srv.URL, "gatecheck", adminToken, e.srv.Client())
		return e.client, func() { e.srv.Close(); require.NoError(t, f.Close()) }
	}
	client, stop := start()
	_, err := client.CreateDeveloper(ctx, developer("ana@example.com"))
	require.NoError(t, err)
	_, err = client.CreateProduct(ctx, product("gold", "read"))
	require.NoError(t, err)
	app, err := client.CreateApp(ctx, "ana@example.com", apigeeapi.DeveloperApp{Name: "chat", APIProducts: []string{"gold"}})
	require.NoError(t, err)
	stop()

	client, stop = start()
	defer stop()
	got, err := client.GetApp(ctx, "ana@example.com", "chat")
	require.NoError(t, err)
	assert.Equal(t, app, got)
	tok, err := client.AccessToken(ctx, app.Credentials[0].ConsumerKey, app.Credentials[0].ConsumerSecret, []string{"read"})
	require.NoError(t, err)
	assert.Equal(t, "read", tok.Scope)
}
