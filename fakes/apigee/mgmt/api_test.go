package mgmt_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatecheck/gatecheck/fakes/apigee/mgmt"
	"github.com/gatecheck/gatecheck/fakes/apigee/state"
	"github.com/gatecheck/gatecheck/internal/apigeeapi"
)

func TestNewValidatesOptions(t *testing.T) {
	t.Parallel()
	store := state.NewMemory()
	for _, tc := range []struct {
		name string
		opts mgmt.Options
		want string
	}{
		{"no store", mgmt.Options{AdminToken: "x"}, "Store is required"},
		{"no admin token", mgmt.Options{Store: store}, "AdminToken is required"},
		{"bad org", mgmt.Options{Store: store, AdminToken: "x", Org: "Bad/Org"}, `organization "Bad/Org"`},
		{"negative ttl", mgmt.Options{Store: store, AdminToken: "x", TokenTTL: -time.Second}, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := mgmt.New(tc.opts)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// allRoutes is one request per route the API serves with an admin token.
var allRoutes = []struct{ method, path string }{
	{"GET", "/v1/organizations/gatecheck/developers"},
	{"POST", "/v1/organizations/gatecheck/developers"},
	{"GET", "/v1/organizations/gatecheck/developers/a@example.com"},
	{"PUT", "/v1/organizations/gatecheck/developers/a@example.com"},
	{"POST", "/v1/organizations/gatecheck/developers/a@example.com?action=active"},
	{"DELETE", "/v1/organizations/gatecheck/developers/a@example.com"},
	{"GET", "/v1/organizations/gatecheck/developers/a@example.com/apps"},
	{"POST", "/v1/organizations/gatecheck/developers/a@example.com/apps"},
	{"GET", "/v1/organizations/gatecheck/developers/a@example.com/apps/x"},
	{"PUT", "/v1/organizations/gatecheck/developers/a@example.com/apps/x"},
	{"POST", "/v1/organizations/gatecheck/developers/a@example.com/apps/x?action=revoke"},
	{"DELETE", "/v1/organizations/gatecheck/developers/a@example.com/apps/x"},
	{"POST", "/v1/organizations/gatecheck/developers/a@example.com/apps/x/keys"},
	{"POST", "/v1/organizations/gatecheck/developers/a@example.com/apps/x/keys/create"},
	{"GET", "/v1/organizations/gatecheck/developers/a@example.com/apps/x/keys/k"},
	{"POST", "/v1/organizations/gatecheck/developers/a@example.com/apps/x/keys/k"},
	{"POST", "/v1/organizations/gatecheck/developers/a@example.com/apps/x/keys/k?action=revoke"},
	{"DELETE", "/v1/organizations/gatecheck/developers/a@example.com/apps/x/keys/k"},
	{"POST", "/v1/organizations/gatecheck/developers/a@example.com/apps/x/keys/k/apiproducts/p?action=approve"},
	{"DELETE", "/v1/organizations/gatecheck/developers/a@example.com/apps/x/keys/k/apiproducts/p"},
	{"GET", "/v1/organizations/gatecheck/apiproducts"},
	{"POST", "/v1/organizations/gatecheck/apiproducts"},
	{"GET", "/v1/organizations/gatecheck/apiproducts/p"},
	{"PUT", "/v1/organizations/gatecheck/apiproducts/p"},
	{"DELETE", "/v1/organizations/gatecheck/apiproducts/p"},
	{"POST", "/v1/emulator/clock:advance"},
	{"GET", "/v1/emulator/traces"},
}

func TestAdminTokenRequired(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, rt := range allRoutes {
		for _, auth := range []string{"", "Bearer wrong", "Basic " + adminToken, adminToken, "Bearer " + adminToken + "x"} {
			code, hdr, body := e.raw(rt.method, rt.path, "application/json", `{}`, "Authorization", auth)
			require.Equal(t, http.StatusUnauthorized, code, "%s %s with %q: %s", rt.method, rt.path, auth, body)
			g := googleError(t, body)
			assert.Equal(t, apigeeapi.ErrorBody{
				Code: 401, Status: "UNAUTHENTICATED",
				Message: "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie " +
					"or other valid authentication credential. See " +
					"https://developers.google.com/identity/sign-in/web/devconsole-project.",
			}, g)
			assert.Contains(t, hdr.Get("WWW-Authenticate"), "Bearer")
		}
	}
	// Through the client too.
	bad := apigeeapi.NewClient(e.srv.URL, "gatecheck", "wrong", e.srv.Client())
	_, err := bad.ListProducts(ctx)
	apiError(t, err, 401, "UNAUTHENTICATED")
	err = bad.AdvanceClock(ctx, time.Minute)
	apiError(t, err, 401, "UNAUTHENTICATED")
	assert.Empty(t, e.advances(), "an unauthenticated advance does not reach the hook")
}

func TestUnknownOrganization(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	other := apigeeapi.NewClient(e.srv.URL, "other-org", adminToken, e.srv.Client())
	_, err := other.ListDevelopers(ctx)
	ae := apiError(t, err, 404, "NOT_FOUND")
	assert.Contains(t, ae.Message, `organization "other-org" not found`)
	_, err = other.CreateProduct(ctx, product("p"))
	apiError(t, err, 404, "NOT_FOUND")
	_, err = e.client.ListProducts(ctx)
	require.NoError(t, err, "the served organisation works")

	custom := newEnv(t, func(o *mgmt.Options) { o.Org = "acme" })
	_, err = custom.client.ListDevelopers(ctx)
	require.NoError(t, err)
	code, _, _ := custom.raw("GET", "/v1/organizations/gatecheck/developers", "", "")
	assert.Equal(t, 404, code)
}

func TestUnknownPathsAndMethods(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	code, _, body := e.raw("GET", "/v1/organizations/gatecheck/environments", "", "")
	assert.Equal(t, 404, code)
	assert.Equal(t, "NOT_FOUND", googleError(t, body).Status)
	code, _, body = e.raw("GET", "/nothing/here", "", "")
	assert.Equal(t, 404, code)
	assert.Equal(t, "NOT_FOUND", googleError(t, body).Status)

	code, hdr, body := e.raw("PATCH", "/v1/organizations/gatecheck/developers", "application/json", "{}")
	assert.Equal(t, 405, code)
	assert.Equal(t, "GET, POST", hdr.Get("Allow"))
	assert.Equal(t, 405, googleError(t, body).Code)
}

func TestBodies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	path := "/v1/organizations/gatecheck/apiproducts"
	for _, tc := range []struct {
		name, body string
		code       int
		want       string
	}{
		{"empty", "", 400, "request body is empty"},
		{"not json", "name=x", 400, "invalid JSON body"},
		{"unknown field", `{"name":"p","colour":"red"}`, 400, `unknown field "colour"`},
		{"trailing data", `{"name":"p"} {"name":"q"}`, 400, "data after the JSON object"},
		{"wrong type", `{"name":7}`, 400, "invalid JSON body"},
		{"too big", `{"name":"p","description":"` + strings.Repeat("x", mgmt.MaxBodyBytes) + `"}`, 413, "larger than 1048576 bytes"},
	} {
		code, _, body := e.raw("POST", path, "application/json", tc.body)
		require.Equal(t, tc.code, code, "%s: %s", tc.name, body)
		g := googleError(t, body)
		assert.Equal(t, "INVALID_ARGUMENT", g.Status, tc.name)
		assert.Contains(t, g.Message, tc.want, tc.name)
	}
	list, err := e.client.ListProducts(ctx)
	require.NoError(t, err)
	assert.Empty(t, list, "nothing was created by a bad body")
}

func TestIDsShape(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *mgmt.Options) { o.IDs = nil }) // crypto/rand
	app := e.provision("ana@example.com", "chat", product("gold"))
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	assert.Regexp(t, uuid, app.AppID)
	assert.Regexp(t, uuid, app.DeveloperID)
	assert.Regexp(t, `^[A-Za-z0-9]{32}$`, app.Credentials[0].ConsumerKey)
	assert.Regexp(t, `^[A-Za-z0-9]{16,}$`, app.Credentials[0].ConsumerSecret)
	other := e.provision("ana@example.com", "other", product("gold"))
	assert.NotEqual(t, app.Credentials[0].ConsumerKey, other.Credentials[0].ConsumerKey)

	// A seeded source gives the same answers twice.
	a, b := newEnv(t), newEnv(t)
	assert.Equal(t, a.provision("x@example.com", "app", product("p")).Credentials[0].ConsumerKey,
		b.provision("x@example.com", "app", product("p")).Credentials[0].ConsumerKey)
}

func TestIDsThatNeverYieldLettersFailCleanly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *mgmt.Options) { o.IDs = func() string { return "--" } })
	_, err := e.client.CreateDeveloper(ctx, developer("ana@example.com"))
	apiError(t, err, 500, "INTERNAL")
}
