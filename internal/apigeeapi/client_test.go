package apigeeapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatecheck/gatecheck/fakes/apigee/mgmt"
	"github.com/gatecheck/gatecheck/fakes/apigee/state"
	"github.com/gatecheck/gatecheck/internal/apigeeapi"
)

var ctx = context.Background()

// TestClientAgainstManagementAPI walks a provisioning flow through the client
// against the real management handler.
func TestClientAgainstManagementAPI(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var advanced time.Duration
	api, err := mgmt.New(mgmt.Options{Store: state.NewMemory(), AdminToken: "secret-admin", Org: "acme",
		OnClockAdvance: func(d time.Duration) error { mu.Lock(); advanced += d; mu.Unlock(); return nil }})
	require.NoError(t, err)
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	c := apigeeapi.NewClient(srv.URL+"/", "acme", "secret-admin", srv.Client())

	// An email that needs care in a path.
	email := "ana+test@example.com"
	_, err = c.CreateDeveloper(ctx, apigeeapi.Developer{Email: email, FirstName: "A", LastName: "L", UserName: "a"})
	require.NoError(t, err)
	d, err := c.GetDeveloper(ctx, email)
	require.NoError(t, err)
	assert.Equal(t, email, d.Email)

	_, err = c.CreateProduct(ctx, apigeeapi.APIProduct{Name: "chat basic", Scopes: []string{"chat"}})
	require.NoError(t, err, "a product name with a space")
	app, err := c.CreateApp(ctx, email, apigeeapi.DeveloperApp{Name: "my app", APIProducts: []string{"chat basic"}})
	require.NoError(t, err)
	key := app.Credentials[0]
	tok, err := c.AccessToken(ctx, key.ConsumerKey, key.ConsumerSecret, []string{"chat"})
	require.NoError(t, err)
	assert.Equal(t, "BearerToken", tok.TokenType)
	assert.Equal(t, "chat", tok.Scope)

	require.NoError(t, c.AdvanceClock(ctx, 90*time.Second))
	mu.Lock()
	assert.Equal(t, 90*time.Second, advanced)
	mu.Unlock()

	_, err = c.GetProduct(ctx, "missing")
	var ae *apigeeapi.APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, 404, ae.StatusCode)
	assert.Equal(t, "NOT_FOUND", ae.Status)
	assert.Contains(t, err.Error(), "apigee: 404 NOT_FOUND")

	_, err = c.AccessToken(ctx, key.ConsumerKey, "wrong", nil)
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, apigeeapi.APIError{StatusCode: 401, Status: "oauth.v2.InvalidClientIdentifier",
		Message: "Invalid client identifier {0}"}, *ae)
}

// recorded is one request a stub server saw.
type recorded struct {
	method, path, rawQuery, auth, contentType, body string
}

// stub answers every request with code and body, recording the requests.
func stub(t *testing.T, code int, body string) (*apigeeapi.Client, func() []recorded) {
	t.Helper()
	var mu sync.Mutex
	var seen []recorded
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, recorded{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Get("Authorization"),
			r.Header.Get("Content-Type"), string(data)})
		mu.Unlock()
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return apigeeapi.NewClient(srv.URL, "org", "tok", srv.Client()), func() []recorded {
		mu.Lock()
		defer mu.Unlock()
		return append([]recorded(nil), seen...)
	}
}

// TestClientRequests checks each call's method, path, query and body are
// Apigee's (https://cloud.google.com/apigee/docs/reference/apis/apigee/rest).
func TestClientRequests(t *testing.T) {
	t.Parallel()
	const dev = "/v1/organizations/org/developers/a@example.com"
	for _, tc := range []struct {
		name                      string
		call                      func(c *apigeeapi.Client) error
		method, path, query, body string
	}{
		{"CreateDeveloper", func(c *apigeeapi.Client) error {
			_, err := c.CreateDeveloper(ctx, apigeeapi.Developer{Email: "a@example.com"})
			return err
		}, "POST", "/v1/organizations/org/developers", "", `{"email":"a@example.com"}`},
		{"GetDeveloper", func(c *apigeeapi.Client) error { _, err := c.GetDeveloper(ctx, "a@example.com"); return err },
			"GET", dev, "", ""},
		{"ListDevelopers", func(c *apigeeapi.Client) error { _, err := c.ListDevelopers(ctx); return err },
			"GET", "/v1/organizations/org/developers", "expand=true", ""},
		{"UpdateDeveloper", func(c *apigeeapi.Client) error {
			_, err := c.UpdateDeveloper(ctx, apigeeapi.Developer{Email: "a@example.com"})
			return err
		}, "PUT", dev, "", `{"email":"a@example.com"}`},
		{"SetDeveloperStatus", func(c *apigeeapi.Client) error { return c.SetDeveloperStatus(ctx, "a@example.com", false) },
			"POST", dev, "action=inactive", ""},
		{"DeleteDeveloper", func(c *apigeeapi.Client) error { return c.DeleteDeveloper(ctx, "a@example.com") },
			"DELETE", dev, "", ""},
		{"CreateApp", func(c *apigeeapi.Client) error {
			_, err := c.CreateApp(ctx, "a@example.com", apigeeapi.DeveloperApp{Name: "x", APIProducts: []string{"p"}})
			return err
		}, "POST", dev + "/apps", "", `{"name":"x","apiProducts":["p"]}`},
		{"GetApp", func(c *apigeeapi.Client) error { _, err := c.GetApp(ctx, "a@example.com", "my app"); return err },
			"GET", dev + "/apps/my%20app", "", ""},
		{"ListApps", func(c *apigeeapi.Client) error { _, err := c.ListApps(ctx, "a@example.com"); return err },
			"GET", dev + "/apps", "expand=true", ""},
		{"UpdateApp", func(c *apigeeapi.Client) error {
			_, err := c.UpdateApp(ctx, "a@example.com", apigeeapi.DeveloperApp{Name: "x"})
			return err
		}, "PUT", dev + "/apps/x", "", `{"name":"x"}`},
		{"DeleteApp", func(c *apigeeapi.Client) error { return c.DeleteApp(ctx, "a@example.com", "x") },
			"DELETE", dev + "/apps/x", "", ""},
		{"ApproveApp", func(c *apigeeapi.Client) error { return c.ApproveApp(ctx, "a@example.com", "x") },
			"POST", dev + "/apps/x", "action=approve", ""},
		{"RevokeApp", func(c *apigeeapi.Client) error { return c.RevokeApp(ctx, "a@example.com", "x") },
			"POST", dev + "/apps/x", "action=revoke", ""},
		{"CreateKey", func(c *apigeeapi.Client) error {
			_, err := c.CreateKey(ctx, "a@example.com", "x", apigeeapi.Credential{ConsumerKey: "k", ConsumerSecret: "s"})
			return err
		}, "POST", dev + "/apps/x/keys", "", `{"consumerKey":"k","consumerSecret":"s"}`},
		{"GetKey", func(c *apigeeapi.Client) error { _, err := c.GetKey(ctx, "a@example.com", "x", "k"); return err },
			"GET", dev + "/apps/x/keys/k", "", ""},
		{"DeleteKey", func(c *apigeeapi.Client) error { return c.DeleteKey(ctx, "a@example.com", "x", "k") },
			"DELETE", dev + "/apps/x/keys/k", "", ""},
		{"ApproveKey", func(c *apigeeapi.Client) error { return c.ApproveKey(ctx, "a@example.com", "x", "k") },
			"POST", dev + "/apps/x/keys/k", "action=approve", ""},
		{"RevokeKey", func(c *apigeeapi.Client) error { return c.RevokeKey(ctx, "a@example.com", "x", "k") },
			"POST", dev + "/apps/x/keys/k", "action=revoke", ""},
		{"AddKeyProducts", func(c *apigeeapi.Client) error {
			_, err := c.AddKeyProducts(ctx, "a@example.com", "x", "k", []string{"p", "q"})
			return err
		}, "POST", dev + "/apps/x/keys/k", "", `{"apiProducts":["p","q"]}`},
		{"RemoveKeyProduct", func(c *apigeeapi.Client) error { return c.RemoveKeyProduct(ctx, "a@example.com", "x", "k", "p") },
			"DELETE", dev + "/apps/x/keys/k/apiproducts/p", "", ""},
		{"ApproveKeyProduct", func(c *apigeeapi.Client) error { return c.ApproveKeyProduct(ctx, "a@example.com", "x", "k", "p") },
			"POST", dev + "/apps/x/keys/k/apiproducts/p", "action=approve", ""},
		{"RevokeKeyProduct", func(c *apigeeapi.Client) error { return c.RevokeKeyProduct(ctx, "a@example.com", "x", "k", "p") },
			"POST", dev + "/apps/x/keys/k/apiproducts/p", "action=revoke", ""},
		{"CreateProduct", func(c *apigeeapi.Client) error {
			_, err := c.CreateProduct(ctx, apigeeapi.APIProduct{Name: "p"})
			return err
		},
			"POST", "/v1/organizations/org/apiproducts", "", `{"name":"p"}`},
		{"GetProduct", func(c *apigeeapi.Client) error { _, err := c.GetProduct(ctx, "p"); return err },
			"GET", "/v1/organizations/org/apiproducts/p", "", ""},
		{"UpdateProduct", func(c *apigeeapi.Client) error {
			_, err := c.UpdateProduct(ctx, apigeeapi.APIProduct{Name: "p"})
			return err
		},
			"PUT", "/v1/organizations/org/apiproducts/p", "", `{"name":"p"}`},
		{"DeleteProduct", func(c *apigeeapi.Client) error { return c.DeleteProduct(ctx, "p") },
			"DELETE", "/v1/organizations/org/apiproducts/p", "", ""},
		{"ListProducts", func(c *apigeeapi.Client) error { _, err := c.ListProducts(ctx); return err },
			"GET", "/v1/organizations/org/apiproducts", "expand=true", ""},
		{"AdvanceClock", func(c *apigeeapi.Client) error { return c.AdvanceClock(ctx, 61*time.Second) },
			"POST", "/v1/emulator/clock:advance", "", `{"duration":"1m1s"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, seen := stub(t, 200, `{}`)
			require.NoError(t, tc.call(c))
			got := seen()
			require.Len(t, got, 1)
			r := got[0]
			assert.Equal(t, tc.method, r.method)
			assert.Equal(t, tc.path, r.path)
			assert.Equal(t, tc.query, r.rawQuery)
			assert.Equal(t, "Bearer tok", r.auth)
			if tc.body == "" {
				assert.Empty(t, r.body)
				if tc.method == "POST" {
					assert.Equal(t, "application/octet-stream", r.contentType, "Apigee's ?action= calls")
				}
			} else {
				assert.JSONEq(t, tc.body, r.body)
				assert.Equal(t, "application/json", r.contentType)
			}
		})
	}
}

func TestClientErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		code int
		body string
		want apigeeapi.APIError
	}{
		{"google", 409, `{"error":{"code":409,"message":"exists","status":"ALREADY_EXISTS"}}`,
			apigeeapi.APIError{StatusCode: 409, Status: "ALREADY_EXISTS", Message: "exists"}},
		{"fault", 401, `{"fault":{"faultstring":"Invalid ApiKey","detail":{"errorcode":"oauth.v2.InvalidApiKey"}}}`,
			apigeeapi.APIError{StatusCode: 401, Status: "oauth.v2.InvalidApiKey", Message: "Invalid ApiKey"}},
		{"html", 502, "<html>Bad Gateway</html>",
			apigeeapi.APIError{StatusCode: 502, Status: "Bad Gateway", Message: "<html>Bad Gateway</html>"}},
		{"empty", 503, "", apigeeapi.APIError{StatusCode: 503, Status: "Service Unavailable"}},
		{"long", 500, strings.Repeat("x", 2000),
			apigeeapi.APIError{StatusCode: 500, Status: "Internal Server Error", Message: strings.Repeat("x", 512) + "…"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, _ := stub(t, tc.code, tc.body)
			_, err := c.GetProduct(ctx, "p")
			var ae *apigeeapi.APIError
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, tc.want, *ae)
		})
	}

	c, _ := stub(t, 200, `not json`)
	_, err := c.GetProduct(ctx, "p")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "decode answer")

	c, _ = stub(t, 204, "")
	require.NoError(t, c.ApproveApp(ctx, "a@example.com", "x"), "204 with no body")

	c, _ = stub(t, 200, `{"token_type":"BearerToken"}`)
	_, err = c.AccessToken(ctx, "k", "s", nil)
	require.Error(t, err, "an answer without a token")

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	c, _ = stub(t, 200, `{}`)
	_, err = c.GetProduct(cctx, "p")
	require.ErrorIs(t, err, context.Canceled)

	dead := apigeeapi.NewClient("http://127.0.0.1:1", "org", "tok", nil)
	_, err = dead.GetProduct(ctx, "p")
	require.Error(t, err)
	var ae *apigeeapi.APIError
	assert.False(t, errors.As(err, &ae), "a transport error is not an APIError")
}

func TestAccessTokenRequest(t *testing.T) {
	t.Parallel()
	c, seen := stub(t, 200, `{"access_token":"t","token_type":"BearerToken","expires_in":"3599"}`)
	c.TokenURL = strings.Replace(c.TokenURL, "/oauth/token", "/oauth/client_credential/accesstoken", 1)
	tok, err := c.AccessToken(ctx, "key", "secret", []string{"read", "write"})
	require.NoError(t, err)
	assert.Equal(t, "t", tok.AccessToken)
	r := seen()[0]
	assert.Equal(t, "POST", r.method)
	assert.Equal(t, "/oauth/client_credential/accesstoken", r.path, "TokenURL is honoured")
	assert.Equal(t, "Basic a2V5OnNlY3JldA==", r.auth, "key and secret as Basic auth, never the admin token")
	assert.Equal(t, "application/x-www-form-urlencoded", r.contentType)
	assert.Equal(t, "grant_type=client_credentials&scope=read+write", r.body)
}

func TestAPIProductRefDecodesNamesAndObjects(t *testing.T) {
	t.Parallel()
	var c apigeeapi.Credential
	require.NoError(t, json.Unmarshal([]byte(`{"consumerKey":"k","apiProducts":["p",{"apiproduct":"q","status":"revoked"}]}`), &c))
	assert.Equal(t, []apigeeapi.APIProductRef{{APIProduct: "p"}, {APIProduct: "q", Status: "revoked"}}, c.APIProducts)
	data, err := json.Marshal(c.APIProducts)
	require.NoError(t, err)
	assert.JSONEq(t, `[{"apiproduct":"p","status":""},{"apiproduct":"q","status":"revoked"}]`, string(data))
	var ref apigeeapi.APIProductRef
	require.Error(t, json.Unmarshal([]byte(`7`), &ref))
	require.Error(t, json.Unmarshal([]byte(`"unterminated`), &ref))
}

// FuzzAPIProductRef: the hand-written decoder never panics, and what it
// accepts re-encodes to an equal value.
func FuzzAPIProductRef(f *testing.F) {
	for _, s := range []string{`"p"`, `{"apiproduct":"p","status":"approved"}`, `null`, ` "x" `, `{}`, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var r apigeeapi.APIProductRef
		if json.Unmarshal(data, &r) != nil {
			return
		}
		again, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var r2 apigeeapi.APIProductRef
		if err := json.Unmarshal(again, &r2); err != nil || r2 != r {
			t.Fatalf("round trip: %#v → %s → %#v (%v)", r, again, r2, err)
		}
	})
}
