package policy

import (
	"context"
	"testing"

	"github.com/gatecheck/gatecheck/internal/apigeeapi"
	"github.com/stretchr/testify/require"
)

const vaXML = `<VerifyAPIKey name="VA"><APIKey ref="request.header.x-api-key"/></VerifyAPIKey>`

func TestVerifyAPIKey(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.env.APISource = "gw-apim"
	ctx := context.Background()
	chat := chatProduct("chat-basic", "100")
	chat.Attributes = []apigeeapi.Attribute{{Name: "access", Value: "private"}, {Name: "tier", Value: "gold"}}
	f.seed(t, "ana@example.com", "ana-app", "key-ok", chat, llmProduct("llm-qwen", "1000", "qwen*"))

	// A revoked key, an expired key, a revoked app, an inactive developer,
	// a revoked product on the key, a product of another API source.
	f.seed(t, "ana@example.com", "revoked-key-app", "key-revoked", chat)
	app, err := f.store.GetApp(ctx, "ana@example.com", "revoked-key-app")
	require.NoError(t, err)
	app.Credentials[0].Status = "revoked"
	require.NoError(t, f.store.PutApp(ctx, "ana@example.com", app))

	f.seed(t, "ana@example.com", "expired-app", "key-expired", chat)
	app, _ = f.store.GetApp(ctx, "ana@example.com", "expired-app")
	app.Credentials[0].ExpiresAt = "1700000000000"
	require.NoError(t, f.store.PutApp(ctx, "ana@example.com", app))

	f.seed(t, "ana@example.com", "revoked-app", "key-app-revoked", chat)
	app, _ = f.store.GetApp(ctx, "ana@example.com", "revoked-app")
	app.Status = "revoked"
	require.NoError(t, f.store.PutApp(ctx, "ana@example.com", app))

	f.seed(t, "bo@example.com", "bo-app", "key-dev-inactive", chat)
	dev, _ := f.store.GetDeveloper(ctx, "bo@example.com")
	dev.Status = "inactive"
	require.NoError(t, f.store.PutDeveloper(ctx, dev))

	f.seed(t, "ana@example.com", "prod-revoked-app", "key-prod-revoked", chat)
	app, _ = f.store.GetApp(ctx, "ana@example.com", "prod-revoked-app")
	app.Credentials[0].APIProducts[0].Status = "revoked"
	require.NoError(t, f.store.PutApp(ctx, "ana@example.com", app))

	other := chatProduct("other-source", "100")
	other.OperationGroup.OperationConfigs[0].APISource = "another-gateway"
	f.seed(t, "ana@example.com", "other-app", "key-other-source", other)

	f.seed(t, "ana@example.com", "legacy-app", "key-legacy", apigeeapi.APIProduct{Name: "legacy", Quota: "5", QuotaInterval: "1", QuotaTimeUnit: "hour"})

	va := f.parse(t, vaXML)
	const chatBody = `{"model":"qwen3-0.6b","messages":[{"role":"user","content":"hi"}]}`
	for _, tc := range []struct {
		name, key, method, path, body string
		status                        int
		code, faultString             string
	}{
		{"missing", "", "POST", "/v1/chat/completions", chatBody, 401, "steps.oauth.v2.FailedToResolveAPIKey", "Failed to resolve API Key variable request.header.x-api-key"},
		{"unknown", "nope", "POST", "/v1/chat/completions", chatBody, 401, "oauth.v2.InvalidApiKey", "Invalid ApiKey"},
		{"key revoked", "key-revoked", "POST", "/v1/chat/completions", chatBody, 401, "oauth.v2.ApiKeyNotApproved", "ApiKey not approved"},
		{"key expired", "key-expired", "POST", "/v1/chat/completions", chatBody, 401, "keymanagement.service.consumer_key_expired", "Consumer key is expired"},
		{"app revoked", "key-app-revoked", "POST", "/v1/chat/completions", chatBody, 401, "keymanagement.service.invalid_client-app_not_approved", "Application is not approved"},
		{"developer inactive", "key-dev-inactive", "POST", "/v1/chat/completions", chatBody, 401, "keymanagement.service.DeveloperStatusNotActive", "Developer Status is not Active"},
		{"product revoked on key", "key-prod-revoked", "POST", "/v1/chat/completions", chatBody, 401, "oauth.v2.InvalidApiKeyForGivenResource", "Invalid ApiKey for given resource"},
		{"other api source", "key-other-source", "POST", "/v1/chat/completions", chatBody, 401, "oauth.v2.InvalidApiKeyForGivenResource", "Invalid ApiKey for given resource"},
		{"path not granted", "key-ok", "POST", "/admin", chatBody, 401, "oauth.v2.InvalidApiKeyForGivenResource", "Invalid ApiKey for given resource"},
		{"model not granted", "key-ok", "POST", "/v1/completions", `{"model":"llama3"}`, 401, "oauth.v2.InvalidApiKeyForGivenResource", "Invalid ApiKey for given resource"},
		{"method not granted", "key-ok", "DELETE", "/v1/chat/completions", "", 401, "oauth.v2.InvalidApiKeyForGivenResource", "Invalid ApiKey for given resource"},
		{"granted", "key-ok", "POST", "/v1/chat/completions", chatBody, 0, "", ""},
		{"granted by model", "key-ok", "POST", "/v1/completions", `{"model":"qwen2.5"}`, 0, "", ""},
		{"legacy product grants all", "key-legacy", "PUT", "/anything/at/all", "", 0, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.key != "" {
				hdr = []string{"x-api-key", tc.key}
			}
			m := f.msg(tc.method, tc.path, tc.body, hdr...)
			fault := apply(t, va, m)
			if tc.code == "" {
				require.Nil(t, fault)
				return
			}
			requireFault(t, fault, tc.status, tc.code, tc.faultString)
			require.Equal(t, "true", varOf(m, "verifyapikey.VA.failed"))
		})
	}

	t.Run("flow variables", func(t *testing.T) {
		m := f.msg("POST", "/v1/chat/completions", chatBody, "X-Api-Key", "key-ok")
		require.Nil(t, apply(t, va, m))
		for name, want := range map[string]string{
			"verifyapikey.VA.client_id":                           "key-ok",
			"verifyapikey.VA.developer.email":                     "ana@example.com",
			"verifyapikey.VA.developer.id":                        "dev-ana@example.com",
			"verifyapikey.VA.app.name":                            "ana-app",
			"verifyapikey.VA.app.id":                              "id-ana-app",
			"verifyapikey.VA.developer.app.name":                  "ana-app",
			"verifyapikey.VA.apiproduct.name":                     "chat-basic",
			"verifyapikey.VA.apiproduct.tier":                     "gold",
			"verifyapikey.VA.apiproduct.access":                   "private",
			"verifyapikey.VA.apiproduct.developer.quota.limit":    "100",
			"verifyapikey.VA.apiproduct.developer.quota.interval": "1",
			"verifyapikey.VA.apiproduct.developer.quota.timeunit": "minute",
			"verifyapikey.VA.apiproduct.developer.quota.scope":    "key-ok/chat-basic/op0",
			"client_id":                    "key-ok",
			"developer.email":              "ana@example.com",
			"developer.app.name":           "ana-app",
			"apiproduct.name":              "chat-basic",
			"gatecheck.identity.app":       "ana-app",
			"gatecheck.identity.developer": "ana@example.com",
			"gatecheck.identity.product":   "chat-basic",
			"gatecheck.credential.header":  "x-api-key",
		} {
			require.Equal(t, want, varOf(m, name), name)
		}
		_, secret := m.Vars.Get("verifyapikey.VA.client_secret")
		require.False(t, secret, "secrets never become flow variables")
	})

	t.Run("llm product variables", func(t *testing.T) {
		m := f.msg("POST", "/v1/completions", `{"model":"qwen2.5"}`, "X-Api-Key", "key-ok")
		require.Nil(t, apply(t, va, m))
		require.Equal(t, "llm-qwen", varOf(m, "verifyapikey.VA.apiproduct.name"))
		require.Equal(t, "1000", varOf(m, "verifyapikey.VA.apiproduct.developer.llmQuota.limit"))
		require.Equal(t, "hour", varOf(m, "verifyapikey.VA.apiproduct.developer.llmQuota.timeunit"))
		require.Equal(t, "key-ok/llm-qwen/llm0", varOf(m, "verifyapikey.VA.apiproduct.developer.llmQuota.scope"))
	})

	t.Run("legacy quota variables", func(t *testing.T) {
		m := f.msg("GET", "/x", "", "X-Api-Key", "key-legacy")
		require.Nil(t, apply(t, va, m))
		require.Equal(t, "5", varOf(m, "verifyapikey.VA.apiproduct.developer.quota.limit"))
		require.Equal(t, "hour", varOf(m, "verifyapikey.VA.apiproduct.developer.quota.timeunit"))
	})

	t.Run("query parameter", func(t *testing.T) {
		qa := f.parse(t, `<VerifyAPIKey name="QA"><APIKey ref="request.queryparam.apikey"/></VerifyAPIKey>`)
		m := f.msg("POST", "/v1/chat/completions?apikey=key-ok", chatBody)
		require.Nil(t, apply(t, qa, m))
		require.Equal(t, "apikey", varOf(m, "gatecheck.credential.queryparam"))
		requireFault(t, apply(t, qa, f.msg("POST", "/v1/chat/completions", chatBody)), 401,
			"steps.oauth.v2.FailedToResolveAPIKey", "Failed to resolve API Key variable request.queryparam.apikey")
	})
}

func TestLegacyProducts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		p         apigeeapi.APIProduct
		apiSource string
		path      string
		want      bool
	}{
		{"no resources", apigeeapi.APIProduct{Name: "p"}, "gw", "/x", true},
		{"resource match", apigeeapi.APIProduct{Name: "p", APIResources: []string{"/v1/**"}}, "gw", "/v1/models", true},
		{"resource miss", apigeeapi.APIProduct{Name: "p", APIResources: []string{"/v1/**"}}, "gw", "/v2/models", false},
		{"proxy listed", apigeeapi.APIProduct{Name: "p", Proxies: []string{"gw"}}, "gw", "/x", true},
		{"proxy not listed", apigeeapi.APIProduct{Name: "p", Proxies: []string{"other"}}, "gw", "/x", false},
		{"runtime serves any source", apigeeapi.APIProduct{Name: "p", Proxies: []string{"other"}}, "", "/x", true},
	} {
		_, ok := productGrant(tc.p, opRequest{method: "GET", path: tc.path, apiSource: tc.apiSource})
		require.Equal(t, tc.want, ok, tc.name)
	}
}

func TestQuotaCounterScope(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// Product-level quota, two operation configs without their own.
	shared := apigeeapi.APIProduct{Name: "shared", Quota: "2", QuotaInterval: "1", QuotaTimeUnit: "minute",
		OperationGroup: &apigeeapi.OperationGroup{OperationConfigs: []apigeeapi.OperationConfig{
			{Operations: []apigeeapi.Operation{{Resource: "/a"}}},
			{Operations: []apigeeapi.Operation{{Resource: "/b"}}},
		}}}
	perOp := shared
	perOp.Name = "per-op"
	perOp.QuotaCounterScope = "OPERATION"
	f.seed(t, "s@example.com", "s-app", "key-s", shared)
	f.seed(t, "s@example.com", "o-app", "key-o", perOp)
	va := f.parse(t, vaXML)
	scope := func(key, path string) string {
		m := f.msg("GET", path, "", "x-api-key", key)
		require.Nil(t, apply(t, va, m))
		return varOf(m, "verifyapikey.VA.apiproduct.developer.quota.scope")
	}
	require.Equal(t, "key-s/shared", scope("key-s", "/a"))
	require.Equal(t, "key-s/shared", scope("key-s", "/b"), "one counter for the product")
	require.Equal(t, "key-o/per-op/op0", scope("key-o", "/a"))
	require.Equal(t, "key-o/per-op/op1", scope("key-o", "/b"), "a counter per operation")
}

func TestMatchResource(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pattern, path string
		want          bool
	}{
		{"/", "/anything/here", true},
		{"/**", "/", true},
		{"", "/x", true},
		{"/v1/chat/completions", "/v1/chat/completions", true},
		{"/v1/chat/completions", "/v1/chat/completions/", true},
		{"/v1/chat/completions", "/v1/chat", false},
		{"/v1/chat/completions", "/v1/chat/completions/x", false},
		{"/v1/*", "/v1/models", true},
		{"/v1/*", "/v1", false},
		{"/v1/*", "/v1/models/x", false},
		{"/v1/*/completions", "/v1/chat/completions", true},
		{"/v1/**", "/v1", true},
		{"/v1/**", "/v1/a/b/c", true},
		{"/v1/**", "/v2/a", false},
		{"/**/completions", "/v1/chat/completions", true},
		{"/**/completions", "/completions", true},
		{"/**/completions", "/v1/chat", false},
		{"/a/**/z", "/a/z", true},
		{"/a/**/z", "/a/b/c/z", true},
		{"/a/**/z", "/a/b/c", false},
	} {
		require.Equal(t, tc.want, matchResource(tc.pattern, tc.path), "%s vs %s", tc.pattern, tc.path)
	}
}

func TestMatchModel(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pattern, model string
		want           bool
	}{
		{"*", "anything", true},
		{"*", "", true},
		{"", "x", true},
		{"qwen3", "qwen3", true},
		{"qwen3", "qwen3-0.6b", false},
		{"qwen*", "qwen3-0.6b", true},
		{"*-instruct", "meta/llama-3-instruct", true},
		{"meta/*", "meta/llama", true},
		{"a*b*c", "aXXbYYc", true},
		{"a*b*c", "aXXbYY", false},
	} {
		require.Equal(t, tc.want, matchModel(tc.pattern, tc.model), "%s vs %s", tc.pattern, tc.model)
	}
}

func TestAuthorizePrefersFirstProduct(t *testing.T) {
	t.Parallel()
	a := chatProduct("a", "1")
	b := chatProduct("b", "2")
	g, ok := authorize([]apigeeapi.APIProduct{a, b}, opRequest{method: "POST", path: "/v1/chat/completions"})
	require.True(t, ok)
	require.Equal(t, "a", g.product.Name)
	require.Equal(t, 0, g.opIndex)
	require.Equal(t, -1, g.llmIndex)
}
