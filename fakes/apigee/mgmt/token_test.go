package mgmt_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatecheck/gatecheck/fakes/apigee/mgmt"
	"github.com/gatecheck/gatecheck/internal/apigeeapi"
)

func TestToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	manual := product("manual", "admin")
	manual.ApprovalType = "manual"
	app := e.provision("ana@example.com", "chat", product("gold", "read", "write"), manual)
	key, secret := app.Credentials[0].ConsumerKey, app.Credentials[0].ConsumerSecret

	tok, err := e.client.AccessToken(ctx, key, secret, []string{"read"})
	require.NoError(t, err)
	assert.Regexp(t, `^[A-Za-z0-9]{32}$`, tok.AccessToken)
	assert.Equal(t, apigeeapi.AccessToken{
		AccessToken: tok.AccessToken, TokenType: "BearerToken", ExpiresIn: "3600", IssuedAt: ms(epoch),
		ClientID: key, ApplicationName: app.AppID, Scope: "read", Status: "approved",
		APIProductList: "[gold]", APIProductListJSON: []string{"gold"},
		DeveloperEmail: "ana@example.com", OrganizationName: "gatecheck",
	}, tok, "a pending product is not in the token's products")
	stored, err := e.store.GetToken(ctx, tok.AccessToken)
	require.NoError(t, err)
	assert.Equal(t, key, stored.ConsumerKey)
	assert.Equal(t, []string{"read"}, stored.Scopes)
	assert.True(t, stored.IssuedAt.Equal(epoch))
	assert.True(t, stored.ExpiresAt.Equal(epoch.Add(time.Hour)))

	all, err := e.client.AccessToken(ctx, key, secret, nil)
	require.NoError(t, err)
	assert.Equal(t, "read write", all.Scope, "no scope asked for: every scope of the approved products")
	assert.NotEqual(t, tok.AccessToken, all.AccessToken)

	fault := func(err error, code int, errorcode string) {
		t.Helper()
		ae := apiError(t, err, code, errorcode)
		assert.NotEmpty(t, ae.Message)
	}
	_, err = e.client.AccessToken(ctx, key, secret, []string{"read", "admin"})
	fault(err, 400, "oauth.v2.InvalidScope") // admin is only on the pending product
	_, err = e.client.AccessToken(ctx, key, "wrong-secret", nil)
	fault(err, 401, "oauth.v2.InvalidClientIdentifier")
	_, err = e.client.AccessToken(ctx, "unknown-key", secret, nil)
	ae := apiError(t, err, 401, "oauth.v2.InvalidClientIdentifier")
	assert.Equal(t, "Invalid client identifier {0}", ae.Message)
	_, err = e.client.AccessToken(ctx, "", "", nil)
	fault(err, 401, "oauth.v2.InvalidClientIdentifier")

	// Approving the manual product lets its scope through.
	require.NoError(t, e.client.ApproveKeyProduct(ctx, "ana@example.com", "chat", key, "manual"))
	tok, err = e.client.AccessToken(ctx, key, secret, []string{"read", "admin"})
	require.NoError(t, err)
	assert.Equal(t, "read admin", tok.Scope)
	assert.Equal(t, "[gold, manual]", tok.APIProductList)

	// Key, app and developer status.
	require.NoError(t, e.client.RevokeKey(ctx, "ana@example.com", "chat", key))
	_, err = e.client.AccessToken(ctx, key, secret, nil)
	fault(err, 401, "oauth.v2.ApiKeyNotApproved")
	require.NoError(t, e.client.ApproveKey(ctx, "ana@example.com", "chat", key))
	require.NoError(t, e.client.RevokeApp(ctx, "ana@example.com", "chat"))
	_, err = e.client.AccessToken(ctx, key, secret, nil)
	fault(err, 401, "keymanagement.service.invalid_client-app_not_approved")
	require.NoError(t, e.client.ApproveApp(ctx, "ana@example.com", "chat"))
	require.NoError(t, e.client.SetDeveloperStatus(ctx, "ana@example.com", false))
	_, err = e.client.AccessToken(ctx, key, secret, nil)
	fault(err, 401, "keymanagement.service.DeveloperStatusNotActive")
	require.NoError(t, e.client.SetDeveloperStatus(ctx, "ana@example.com", true))

	// No approved product at all.
	pending := e.provision("ana@example.com", "pending-only", manual)
	_, err = e.client.AccessToken(ctx, pending.Credentials[0].ConsumerKey, pending.Credentials[0].ConsumerSecret, nil)
	fault(err, 401, "keymanagement.service.InvalidAPICallAsNoApiProductMatchFound")

	// Expiry, on the emulator clock.
	short, err := e.client.CreateApp(ctx, "ana@example.com", apigeeapi.DeveloperApp{
		Name: "short", APIProducts: []string{"gold"}, KeyExpiresIn: "60000",
	})
	require.NoError(t, err)
	sk, ss := short.Credentials[0].ConsumerKey, short.Credentials[0].ConsumerSecret
	_, err = e.client.AccessToken(ctx, sk, ss, nil)
	require.NoError(t, err)
	require.NoError(t, e.client.AdvanceClock(ctx, time.Minute))
	_, err = e.client.AccessToken(ctx, sk, ss, nil)
	fault(err, 401, "keymanagement.service.consumer_key_expired")
}

func TestTokenRequestShapes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *mgmt.Options) { o.TokenTTL = 90 * time.Second })
	app := e.provision("ana@example.com", "chat", product("gold", "read"))
	key, secret := app.Credentials[0].ConsumerKey, app.Credentials[0].ConsumerSecret

	post := func(query, body string, basic bool) (int, string) {
		t.Helper()
		req, err := http.NewRequest("POST", e.srv.URL+"/oauth/token"+query, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if basic {
			req.SetBasicAuth(key, secret)
		}
		resp, err := e.srv.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var raw json.RawMessage
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&raw))
		return resp.StatusCode, string(raw)
	}
	errorcode := func(body string) string {
		var f apigeeapi.Fault
		require.NoError(t, json.Unmarshal([]byte(body), &f), body)
		return f.Fault.Detail.ErrorCode
	}

	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {key}, "client_secret": {secret}}
	code, body := post("", form.Encode(), false)
	require.Equal(t, 200, code, "client_id and client_secret as form fields: %s", body)
	var tok apigeeapi.AccessToken
	require.NoError(t, json.Unmarshal([]byte(body), &tok))
	assert.Equal(t, "90", tok.ExpiresIn, "TokenTTL")

	code, body = post("?grant_type=client_credentials", "", true)
	require.Equal(t, 200, code, "grant_type in the query, as Apigee's samples send it: %s", body)

	code, body = post("", "grant_type=password&username=a&password=b", true)
	assert.Equal(t, 400, code)
	assert.Equal(t, "oauth.v2.UnsupportedGrantType", errorcode(body))
	assert.Contains(t, body, "Unsupported grant type : password")

	code, body = post("", "", true)
	assert.Equal(t, 400, code)
	assert.Equal(t, "oauth.v2.InvalidRequest", errorcode(body))

	code, body = post("", "grant_type=client_credentials&client_id="+key+"&client_secret=nope", false)
	assert.Equal(t, 401, code)
	assert.JSONEq(t, `{"fault":{"faultstring":"Invalid client identifier {0}","detail":{"errorcode":"oauth.v2.InvalidClientIdentifier"}}}`, body)

	code, body = post("", "grant_type=client_credentials&x="+strings.Repeat("a", 1<<20), true)
	assert.Equal(t, 413, code)
	assert.Equal(t, "protocol.http.TooBigBody", errorcode(body))

	resp, err := e.srv.Client().Get(e.srv.URL + "/oauth/token?grant_type=client_credentials")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 405, resp.StatusCode)

	// The token endpoint needs no admin token and ignores one.
	code, _, _ = e.raw("POST", "/oauth/token?grant_type=client_credentials", "application/x-www-form-urlencoded", "",
		"Authorization", "")
	assert.Equal(t, 401, code)
}
