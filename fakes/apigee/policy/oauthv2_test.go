package policy

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/fakes/apigee/state"
	"github.com/gatecheck/gatecheck/internal/apigeeapi"
	"github.com/stretchr/testify/require"
)

const (
	generateXML = `<OAuthV2 name="OA-Generate"><Operation>GenerateAccessToken</Operation>
  <SupportedGrantTypes><GrantType>client_credentials</GrantType></SupportedGrantTypes>
  <ExpiresIn>3600000</ExpiresIn></OAuthV2>`
	verifyXML = `<OAuthV2 name="OA-Verify"><Operation>VerifyAccessToken</Operation><Scope>write</Scope></OAuthV2>`
)

func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
}

func oauthFixture(t *testing.T) *fixture {
	f := newFixture(t)
	// Deterministic token values.
	f.env.Rand = bytes.NewReader(bytes.Repeat([]byte{0, 1, 2, 3, 4, 5, 6, 7, 250, 9}, 1000))
	p := chatProduct("chat", "100")
	p.Scopes = []string{"read", "write"}
	f.seed(t, "o@example.com", "o-app", "client-1", p)
	f.seed(t, "o@example.com", "ro-app", "client-ro", apigeeapi.APIProduct{Name: "ro", Scopes: []string{"read"},
		OperationGroup: &apigeeapi.OperationGroup{OperationConfigs: []apigeeapi.OperationConfig{{
			Operations: []apigeeapi.Operation{{Resource: "/v1/**"}}}}}})
	return f
}

func TestOAuthGenerateAccessToken(t *testing.T) {
	t.Parallel()
	f := oauthFixture(t)
	gen := f.parse(t, generateXML)
	const form = "application/x-www-form-urlencoded"
	for _, tc := range []struct {
		name, body  string
		headers     []string
		status      int
		code, fault string
	}{
		{"missing grant type", "", []string{"Authorization", basic("client-1", "s3cret")}, 400, "steps.oauth.v2.invalid_request", "Missing grant_type"},
		{"wrong grant type", "grant_type=password", []string{"Content-Type", form, "Authorization", basic("client-1", "s3cret")}, 400, "steps.oauth.v2.unsupported_grant_type", "Unsupported grant type : password"},
		{"no credentials", "grant_type=client_credentials", []string{"Content-Type", form}, 401, "steps.oauth.v2.invalid_client", "Client credentials are missing"},
		{"bad secret", "grant_type=client_credentials", []string{"Content-Type", form, "Authorization", basic("client-1", "nope")}, 401, "steps.oauth.v2.invalid_client", "Client credentials are invalid"},
		{"unknown client", "grant_type=client_credentials&client_id=x&client_secret=y", []string{"Content-Type", form}, 401, "steps.oauth.v2.invalid_client", "Client credentials are invalid"},
		{"scope not on product", "grant_type=client_credentials&scope=admin", []string{"Content-Type", form, "Authorization", basic("client-1", "s3cret")}, 400, "steps.oauth.v2.invalid_scope", "Invalid scope : admin"},
	} {
		m := f.msg("POST", "/oauth/token", tc.body, tc.headers...)
		requireFault(t, apply(t, gen, m), tc.status, tc.code, tc.fault)
		require.Nil(t, m.Answer, tc.name)
	}

	// Basic auth, all the products' scopes.
	m := f.msg("POST", "/oauth/token", "grant_type=client_credentials", "Content-Type", form, "Authorization", basic("client-1", "s3cret"))
	require.Nil(t, apply(t, gen, m))
	require.NotNil(t, m.Answer)
	require.Equal(t, 200, m.Answer.Status)
	require.Equal(t, "application/json", m.Answer.Header.Get("Content-Type"))
	var tok apigeeapi.AccessToken
	require.NoError(t, json.Unmarshal(m.Answer.Body, &tok))
	require.Len(t, tok.AccessToken, 32)
	require.Equal(t, apigeeapi.AccessToken{
		AccessToken: tok.AccessToken, TokenType: "BearerToken", ExpiresIn: "3600",
		IssuedAt: "1773144030000", ClientID: "client-1", ApplicationName: "o-app", Scope: "read write",
		Status: "approved", APIProductList: "[chat]", APIProductListJSON: []string{"chat"}, DeveloperEmail: "o@example.com", OrganizationName: "gatecheck",
	}, tok)
	stored, err := f.store.GetToken(context.Background(), tok.AccessToken)
	require.NoError(t, err)
	require.Equal(t, state.Token{AccessToken: tok.AccessToken, ConsumerKey: "client-1", Scopes: []string{"read", "write"},
		IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}, stored)

	// Form credentials and a narrower scope.
	m = f.msg("POST", "/oauth/token", "grant_type=client_credentials&client_id=client-1&client_secret=s3cret&scope=read", "Content-Type", form)
	require.Nil(t, apply(t, gen, m))
	require.NoError(t, json.Unmarshal(m.Answer.Body, &tok))
	require.Equal(t, "read", tok.Scope)

	// Without a generated response the token is in the flow only.
	quiet := f.parse(t, `<OAuthV2 name="Q"><Operation>GenerateAccessToken</Operation><SupportedGrantTypes><GrantType>client_credentials</GrantType></SupportedGrantTypes><GenerateResponse enabled="false"/></OAuthV2>`)
	m = f.msg("POST", "/oauth/token", "grant_type=client_credentials", "Content-Type", form, "Authorization", basic("client-1", "s3cret"))
	require.Nil(t, apply(t, quiet, m))
	require.Nil(t, m.Answer)
	require.Len(t, varOf(m, "oauthv2accesstoken.Q.access_token"), 32)
	require.Equal(t, "3600", varOf(m, "oauthv2accesstoken.Q.expires_in"))
}

func TestOAuthVerifyAccessToken(t *testing.T) {
	t.Parallel()
	f := oauthFixture(t)
	ctx := context.Background()
	put := func(value, key string, scopes []string, expires time.Time) {
		require.NoError(t, f.store.PutToken(ctx, state.Token{AccessToken: value, ConsumerKey: key, Scopes: scopes, IssuedAt: t0, ExpiresAt: expires}))
	}
	put("tok-rw", "client-1", []string{"read", "write"}, t0.Add(time.Hour))
	put("tok-r", "client-1", []string{"read"}, t0.Add(time.Hour))
	put("tok-old", "client-1", []string{"write"}, t0)
	put("tok-ro", "client-ro", []string{"write"}, time.Time{})
	put("tok-gone", "client-deleted", []string{"write"}, time.Time{})

	verify := f.parse(t, verifyXML)
	for _, tc := range []struct {
		name, auth, path string
		status           int
		code, fault      string
	}{
		{"missing", "", "/v1/chat/completions", 401, "oauth.v2.InvalidAccessToken", "Invalid access token"},
		{"not bearer", basic("a", "b"), "/v1/chat/completions", 401, "oauth.v2.InvalidAccessToken", "Invalid access token"},
		{"unknown", "Bearer nope", "/v1/chat/completions", 401, "keymanagement.service.invalid_access_token", "Invalid Access Token"},
		{"expired", "Bearer tok-old", "/v1/chat/completions", 401, "keymanagement.service.access_token_expired", "Access Token expired"},
		{"credential gone", "Bearer tok-gone", "/v1/chat/completions", 401, "keymanagement.service.invalid_access_token", "Invalid Access Token"},
		{"no product", "Bearer tok-rw", "/admin", 401, "keymanagement.service.InvalidAPICallAsNoApiProductMatchFound", "Invalid API call as no apiproduct match found"},
		{"scope", "Bearer tok-r", "/v1/chat/completions", 403, "steps.oauth.v2.InsufficientScope", "Required scope(s) : write"},
		{"ok", "bearer tok-rw", "/v1/chat/completions", 0, "", ""},
		{"never expires", "Bearer tok-ro", "/v1/models", 0, "", ""},
	} {
		var hdr []string
		if tc.auth != "" {
			hdr = []string{"Authorization", tc.auth}
		}
		m := f.msg("POST", tc.path, "", hdr...)
		fault := apply(t, verify, m)
		if tc.code == "" {
			require.Nil(t, fault, tc.name)
			continue
		}
		requireFault(t, fault, tc.status, tc.code, tc.fault)
	}

	m := f.msg("POST", "/v1/chat/completions", "", "Authorization", "Bearer tok-rw")
	require.Nil(t, apply(t, verify, m))
	for name, want := range map[string]string{
		"client_id":                        "client-1",
		"developer.email":                  "o@example.com",
		"developer.app.name":               "o-app",
		"apiproduct.name":                  "chat",
		"apiproduct.developer.quota.limit": "100",
		"apiproduct.developer.quota.scope": "client-1/chat/op0",
		"scope":                            "read write",
		"expires_in":                       "3600",
		"gatecheck.identity.product":       "chat",
		"gatecheck.credential.header":      "authorization",
	} {
		require.Equal(t, want, varOf(m, name), name)
	}

	// Revoking the app revokes its tokens.
	app, err := f.store.GetApp(ctx, "o@example.com", "o-app")
	require.NoError(t, err)
	app.Status = "revoked"
	require.NoError(t, f.store.PutApp(ctx, "o@example.com", app))
	requireFault(t, apply(t, verify, f.msg("POST", "/v1/chat/completions", "", "Authorization", "Bearer tok-rw")),
		401, "keymanagement.service.access_token_not_approved", "Access Token not approved")
}

func TestOAuthGenerateThenVerify(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := chatProduct("chat", "100")
	p.Scopes = []string{"write"}
	f.seed(t, "o@example.com", "o-app", "client-1", p)
	gen := f.parse(t, generateXML)
	m := f.msg("POST", "/oauth/token", "grant_type=client_credentials", "Content-Type", "application/x-www-form-urlencoded", "Authorization", basic("client-1", "s3cret"))
	require.Nil(t, apply(t, gen, m))
	var tok apigeeapi.AccessToken
	require.NoError(t, json.Unmarshal(m.Answer.Body, &tok))
	verify := f.parse(t, verifyXML)
	require.Nil(t, apply(t, verify, f.msg("POST", "/v1/chat/completions", "", "Authorization", "Bearer "+tok.AccessToken)))
	f.clock.Advance(time.Hour)
	requireFault(t, apply(t, verify, f.msg("POST", "/v1/chat/completions", "", "Authorization", "Bearer "+tok.AccessToken)),
		401, "keymanagement.service.access_token_expired", "Access Token expired")
}
