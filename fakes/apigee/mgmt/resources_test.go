package mgmt_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatecheck/gatecheck/internal/apigeeapi"
)

func TestDevelopers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d, err := e.client.CreateDeveloper(ctx, developer("ana@example.com"))
	require.NoError(t, err)
	assert.NotEmpty(t, d.DeveloperID)
	assert.Equal(t, "active", d.Status)
	assert.Equal(t, ms(epoch), d.CreatedAt, "timestamps come from the clock")
	assert.Equal(t, ms(epoch), d.LastModifiedAt)
	assert.Equal(t, "gatecheck", d.OrganizationName)

	_, err = e.client.CreateDeveloper(ctx, developer("ana@example.com"))
	apiError(t, err, 409, "ALREADY_EXISTS")

	for _, tc := range []struct {
		field string
		edit  func(*apigeeapi.Developer)
	}{
		{"email", func(d *apigeeapi.Developer) { d.Email = "" }},
		{"email", func(d *apigeeapi.Developer) { d.Email = "not-an-email" }},
		{"firstName", func(d *apigeeapi.Developer) { d.FirstName = "" }},
		{"lastName", func(d *apigeeapi.Developer) { d.LastName = "" }},
		{"userName", func(d *apigeeapi.Developer) { d.UserName = "" }},
		{"attributes", func(d *apigeeapi.Developer) { d.Attributes = make([]apigeeapi.Attribute, 19) }},
	} {
		bad := developer("bob@example.com")
		tc.edit(&bad)
		_, err := e.client.CreateDeveloper(ctx, bad)
		ae := apiError(t, err, 400, "INVALID_ARGUMENT")
		assert.Contains(t, ae.Message, tc.field)
	}

	_, err = e.client.CreateDeveloper(ctx, developer("zed@example.com"))
	require.NoError(t, err)
	e.provision("ana@example.com", "chat", product("gold"))

	got, err := e.client.GetDeveloper(ctx, "ana@example.com")
	require.NoError(t, err)
	assert.Equal(t, []string{"chat"}, got.Apps, "a developer lists its apps")
	assert.Equal(t, d.DeveloperID, got.DeveloperID)

	list, err := e.client.ListDevelopers(ctx)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, "ana@example.com", list[0].Email)
	assert.Equal(t, "Ana", list[0].FirstName, "expanded")
	code, _, body := e.raw("GET", "/v1/organizations/gatecheck/developers", "", "")
	require.Equal(t, 200, code)
	assert.JSONEq(t, `{"developer":[{"email":"ana@example.com"},{"email":"zed@example.com"}]}`, body)

	e.clock.Advance(time.Minute)
	upd := developer("ana@example.com")
	upd.FirstName = "Ana Maria"
	upd.DeveloperID = "forged"
	got, err = e.client.UpdateDeveloper(ctx, upd)
	require.NoError(t, err)
	assert.Equal(t, "Ana Maria", got.FirstName)
	assert.Equal(t, d.DeveloperID, got.DeveloperID, "output-only fields are kept")
	assert.Equal(t, ms(epoch), got.CreatedAt)
	assert.Equal(t, ms(epoch.Add(time.Minute)), got.LastModifiedAt)
	code, _, body = e.raw("PUT", "/v1/organizations/gatecheck/developers/ana@example.com", "application/json",
		`{"email":"other@example.com","firstName":"A","lastName":"L","userName":"u"}`)
	assert.Equal(t, 400, code)
	assert.Contains(t, googleError(t, body).Message, "cannot change a developer's email")
	_, err = e.client.UpdateDeveloper(ctx, developer("nobody@example.com"))
	apiError(t, err, 404, "NOT_FOUND")

	require.NoError(t, e.client.SetDeveloperStatus(ctx, "ana@example.com", false))
	got, err = e.client.GetDeveloper(ctx, "ana@example.com")
	require.NoError(t, err)
	assert.Equal(t, "inactive", got.Status)
	require.NoError(t, e.client.SetDeveloperStatus(ctx, "ana@example.com", true))
	code, _, _ = e.raw("POST", "/v1/organizations/gatecheck/developers/ana@example.com?action=sleep", "", "")
	assert.Equal(t, 400, code)

	require.NoError(t, e.client.DeleteDeveloper(ctx, "ana@example.com"))
	_, err = e.client.GetDeveloper(ctx, "ana@example.com")
	apiError(t, err, 404, "NOT_FOUND")
	_, err = e.client.GetApp(ctx, "ana@example.com", "chat")
	apiError(t, err, 404, "NOT_FOUND")
	err = e.client.DeleteDeveloper(ctx, "ana@example.com")
	apiError(t, err, 404, "NOT_FOUND")
}

func TestApps(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, err := e.client.CreateDeveloper(ctx, developer("ana@example.com"))
	require.NoError(t, err)
	gold := product("gold", "read", "write")
	manual := product("manual", "admin")
	manual.ApprovalType = "manual"
	for _, p := range []apigeeapi.APIProduct{gold, manual} {
		_, err := e.client.CreateProduct(ctx, p)
		require.NoError(t, err)
	}

	app, err := e.client.CreateApp(ctx, "ana@example.com", apigeeapi.DeveloperApp{
		Name: "chat", APIProducts: []string{"gold", "manual"}, Scopes: []string{"read"},
		Attributes: []apigeeapi.Attribute{{Name: "tier", Value: "gold"}}, CallbackURL: "https://example.com/cb",
		KeyExpiresIn: "60000",
	})
	require.NoError(t, err)
	assert.Equal(t, "chat", app.Name)
	assert.Equal(t, "approved", app.Status)
	assert.NotEmpty(t, app.AppID)
	assert.Equal(t, []string{"gold", "manual"}, app.APIProducts)
	assert.Empty(t, app.KeyExpiresIn, "keyExpiresIn is input only")
	require.Len(t, app.Credentials, 1)
	c := app.Credentials[0]
	assert.Regexp(t, `^[A-Za-z0-9]{32}$`, c.ConsumerKey)
	assert.GreaterOrEqual(t, len(c.ConsumerSecret), 16)
	assert.Equal(t, "approved", c.Status)
	assert.Equal(t, ms(epoch), c.IssuedAt)
	assert.Equal(t, ms(epoch.Add(time.Minute)), c.ExpiresAt, "expiresAt = now + keyExpiresIn")
	assert.Equal(t, []string{"read"}, c.Scopes)
	assert.Equal(t, []apigeeapi.APIProductRef{
		{APIProduct: "gold", Status: "approved"}, {APIProduct: "manual", Status: "pending"},
	}, c.APIProducts, "auto products are approved, manual ones pending")

	never, err := e.client.CreateApp(ctx, "ana@example.com", apigeeapi.DeveloperApp{Name: "never", APIProducts: []string{"gold"}})
	require.NoError(t, err)
	assert.Equal(t, "-1", never.Credentials[0].ExpiresAt)

	for _, tc := range []struct {
		name       string
		app        apigeeapi.DeveloperApp
		code       int
		status     string
		wantInText string
	}{
		{"duplicate", apigeeapi.DeveloperApp{Name: "chat"}, 409, "ALREADY_EXISTS", "already exists"},
		{"no name", apigeeapi.DeveloperApp{}, 400, "INVALID_ARGUMENT", "name: required"},
		{"slash in name", apigeeapi.DeveloperApp{Name: "a/b"}, 400, "INVALID_ARGUMENT", "name"},
		{"unknown product", apigeeapi.DeveloperApp{Name: "x", APIProducts: []string{"gold", "nope"}}, 400, "INVALID_ARGUMENT",
			`apiProducts[1]: API product "nope" does not exist`},
		{"scope not on products", apigeeapi.DeveloperApp{Name: "x", APIProducts: []string{"gold"}, Scopes: []string{"admin"}},
			400, "INVALID_ARGUMENT", `scopes[0]: scope "admin"`},
		{"bad keyExpiresIn", apigeeapi.DeveloperApp{Name: "x", KeyExpiresIn: "soon"}, 400, "INVALID_ARGUMENT", "keyExpiresIn"},
	} {
		_, err := e.client.CreateApp(ctx, "ana@example.com", tc.app)
		ae := apiError(t, err, tc.code, tc.status)
		assert.Contains(t, ae.Message, tc.wantInText, tc.name)
	}
	_, err = e.client.CreateApp(ctx, "nobody@example.com", apigeeapi.DeveloperApp{Name: "x"})
	apiError(t, err, 404, "NOT_FOUND")

	got, err := e.client.GetApp(ctx, "ana@example.com", "chat")
	require.NoError(t, err)
	assert.Equal(t, app, got)
	apps, err := e.client.ListApps(ctx, "ana@example.com")
	require.NoError(t, err)
	require.Len(t, apps, 2)
	assert.Equal(t, app, apps[0])
	code, _, body := e.raw("GET", "/v1/organizations/gatecheck/developers/ana@example.com/apps", "", "")
	require.Equal(t, 200, code)
	assert.JSONEq(t, fmt.Sprintf(`{"app":[{"appId":%q,"name":"chat"},{"appId":%q,"name":"never"}]}`, app.AppID, never.AppID), body)

	// Update: attributes are replaced; a new product gets a new credential.
	_, err = e.client.CreateProduct(ctx, product("silver"))
	require.NoError(t, err)
	upd, err := e.client.UpdateApp(ctx, "ana@example.com", apigeeapi.DeveloperApp{
		Name: "chat", APIProducts: []string{"gold", "manual", "silver"},
		Attributes: []apigeeapi.Attribute{{Name: "tier", Value: "silver"}},
	})
	require.NoError(t, err)
	assert.Equal(t, []apigeeapi.Attribute{{Name: "tier", Value: "silver"}}, upd.Attributes)
	assert.Equal(t, []string{"gold", "manual", "silver"}, upd.APIProducts)
	require.Len(t, upd.Credentials, 2)
	assert.Equal(t, c, upd.Credentials[0], "the first credential is untouched")
	assert.Equal(t, []apigeeapi.APIProductRef{{APIProduct: "silver", Status: "approved"}}, upd.Credentials[1].APIProducts)
	_, err = e.client.UpdateApp(ctx, "ana@example.com", apigeeapi.DeveloperApp{Name: "chat", Scopes: []string{"write"}})
	apiError(t, err, 400, "INVALID_ARGUMENT")
	code, _, _ = e.raw("PUT", "/v1/organizations/gatecheck/developers/ana@example.com/apps/chat", "application/json", `{"name":"renamed"}`)
	assert.Equal(t, 400, code)
	_, err = e.client.UpdateApp(ctx, "ana@example.com", apigeeapi.DeveloperApp{Name: "ghost"})
	apiError(t, err, 404, "NOT_FOUND")

	// Status.
	require.NoError(t, e.client.RevokeApp(ctx, "ana@example.com", "chat"))
	got, err = e.client.GetApp(ctx, "ana@example.com", "chat")
	require.NoError(t, err)
	assert.Equal(t, "revoked", got.Status)
	require.NoError(t, e.client.ApproveApp(ctx, "ana@example.com", "chat"))
	got, err = e.client.GetApp(ctx, "ana@example.com", "chat")
	require.NoError(t, err)
	assert.Equal(t, "approved", got.Status)
	code, _, _ = e.raw("POST", "/v1/organizations/gatecheck/developers/ana@example.com/apps/chat", "application/octet-stream", "")
	assert.Equal(t, 400, code, "POST without an action")
	err = e.client.RevokeApp(ctx, "ana@example.com", "ghost")
	apiError(t, err, 404, "NOT_FOUND")

	require.NoError(t, e.client.DeleteApp(ctx, "ana@example.com", "chat"))
	_, err = e.client.GetApp(ctx, "ana@example.com", "chat")
	apiError(t, err, 404, "NOT_FOUND")
	_, err = e.store.Consumer(ctx, c.ConsumerKey)
	require.Error(t, err, "a deleted app's key is gone from the store")
}

func TestKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	manual := product("manual", "admin")
	manual.ApprovalType = "manual"
	_, err := e.client.CreateProduct(ctx, manual)
	require.NoError(t, err)
	app := e.provision("ana@example.com", "chat", product("gold", "read"))
	key := app.Credentials[0].ConsumerKey
	const dev = "ana@example.com"

	got, err := e.client.GetKey(ctx, dev, "chat", key)
	require.NoError(t, err)
	assert.Equal(t, app.Credentials[0], got)
	_, err = e.client.GetKey(ctx, dev, "chat", "nope")
	apiError(t, err, 404, "NOT_FOUND")

	require.NoError(t, e.client.RevokeKey(ctx, dev, "chat", key))
	got, _ = e.client.GetKey(ctx, dev, "chat", key)
	assert.Equal(t, "revoked", got.Status)
	require.NoError(t, e.client.ApproveKey(ctx, dev, "chat", key))
	got, _ = e.client.GetKey(ctx, dev, "chat", key)
	assert.Equal(t, "approved", got.Status)

	got, err = e.client.AddKeyProducts(ctx, dev, "chat", key, []string{"manual", "gold"})
	require.NoError(t, err)
	assert.Equal(t, []apigeeapi.APIProductRef{
		{APIProduct: "gold", Status: "approved"}, {APIProduct: "manual", Status: "pending"},
	}, got.APIProducts, "a product already on the key keeps its status; a manual one is pending")
	_, err = e.client.AddKeyProducts(ctx, dev, "chat", key, []string{"nope"})
	apiError(t, err, 400, "INVALID_ARGUMENT")

	// Apigee's own body shape for adding products, with attributes and scopes.
	code, _, body := e.raw("POST", "/v1/organizations/gatecheck/developers/ana@example.com/apps/chat/keys/"+key, "application/json",
		`{"apiProducts":["gold"],"attributes":[{"name":"a","value":"b"}],"scopes":["admin","read"]}`)
	require.Equal(t, 200, code, body)
	var cred apigeeapi.Credential
	require.NoError(t, json.Unmarshal([]byte(body), &cred))
	assert.Equal(t, []string{"admin", "read"}, cred.Scopes)
	assert.Equal(t, []apigeeapi.Attribute{{Name: "a", Value: "b"}}, cred.Attributes)
	code, _, _ = e.raw("POST", "/v1/organizations/gatecheck/developers/ana@example.com/apps/chat/keys/"+key, "application/json",
		`{"scopes":["nope"]}`)
	assert.Equal(t, 400, code, "scopes must be on the key's products")

	require.NoError(t, e.client.ApproveKeyProduct(ctx, dev, "chat", key, "manual"))
	got, _ = e.client.GetKey(ctx, dev, "chat", key)
	assert.Equal(t, "approved", got.APIProducts[1].Status)
	require.NoError(t, e.client.RevokeKeyProduct(ctx, dev, "chat", key, "gold"))
	got, _ = e.client.GetKey(ctx, dev, "chat", key)
	assert.Equal(t, "revoked", got.APIProducts[0].Status)
	err = e.client.ApproveKeyProduct(ctx, dev, "chat", key, "silver")
	apiError(t, err, 404, "NOT_FOUND")
	code, _, body = e.raw("POST", "/v1/organizations/gatecheck/developers/ana@example.com/apps/chat/keys/"+key+"/apiproducts/gold?action=approve", "", "")
	assert.Equal(t, 200, code)
	assert.JSONEq(t, `{}`, body)

	require.NoError(t, e.client.RemoveKeyProduct(ctx, dev, "chat", key, "manual"))
	got, _ = e.client.GetKey(ctx, dev, "chat", key)
	assert.Equal(t, []apigeeapi.APIProductRef{{APIProduct: "gold", Status: "approved"}}, got.APIProducts)
	err = e.client.RemoveKeyProduct(ctx, dev, "chat", key, "manual")
	apiError(t, err, 404, "NOT_FOUND")

	// Create (import) keys.
	imported, err := e.client.CreateKey(ctx, dev, "chat", apigeeapi.Credential{
		ConsumerKey: "my-imported_key-0001", ConsumerSecret: "my-imported-secret", ExpiresInSeconds: "3600",
		APIProducts: []apigeeapi.APIProductRef{{APIProduct: "gold"}},
	})
	require.NoError(t, err)
	assert.Equal(t, "my-imported_key-0001", imported.ConsumerKey)
	assert.Equal(t, "my-imported-secret", imported.ConsumerSecret)
	assert.Equal(t, "approved", imported.Status)
	assert.Equal(t, ms(epoch.Add(time.Hour)), imported.ExpiresAt)
	assert.Empty(t, imported.ExpiresInSeconds, "input only")
	c, err := e.store.Consumer(ctx, "my-imported_key-0001")
	require.NoError(t, err, "an imported key is indexed")
	assert.Equal(t, "chat", c.App.Name)

	code, _, body = e.raw("POST", "/v1/organizations/gatecheck/developers/ana@example.com/apps/chat/keys/create", "application/json",
		`{"expiresAt":"`+ms(epoch.Add(24*time.Hour))+`"}`)
	require.Equal(t, 201, code, body)
	require.NoError(t, json.Unmarshal([]byte(body), &cred))
	assert.Regexp(t, `^[A-Za-z0-9]{32}$`, cred.ConsumerKey, "a key left out is generated")
	assert.Equal(t, ms(epoch.Add(24*time.Hour)), cred.ExpiresAt)

	e.provision("bob@example.com", "other")
	for _, tc := range []struct {
		name string
		app  string
		key  apigeeapi.Credential
		code int
	}{
		{"same key twice in an app", "chat", apigeeapi.Credential{ConsumerKey: "my-imported_key-0001"}, 409},
		{"key of another app", "other", apigeeapi.Credential{ConsumerKey: "my-imported_key-0001"}, 409},
		{"bad characters", "chat", apigeeapi.Credential{ConsumerKey: "has space"}, 400},
		{"both expiries", "chat", apigeeapi.Credential{ExpiresAt: "1", ExpiresInSeconds: "1"}, 400},
		{"bad expiry", "chat", apigeeapi.Credential{ExpiresInSeconds: "-5"}, 400},
		{"unknown product", "chat", apigeeapi.Credential{APIProducts: []apigeeapi.APIProductRef{{APIProduct: "x"}}}, 400},
	} {
		email := dev
		if tc.app == "other" {
			email = "bob@example.com"
		}
		_, err := e.client.CreateKey(ctx, email, tc.app, tc.key)
		require.Error(t, err, tc.name)
		var ae *apigeeapi.APIError
		require.ErrorAs(t, err, &ae)
		assert.Equal(t, tc.code, ae.StatusCode, "%s: %v", tc.name, err)
	}

	require.NoError(t, e.client.DeleteKey(ctx, dev, "chat", "my-imported_key-0001"))
	_, err = e.client.GetKey(ctx, dev, "chat", "my-imported_key-0001")
	apiError(t, err, 404, "NOT_FOUND")
	_, err = e.store.Consumer(ctx, "my-imported_key-0001")
	require.Error(t, err)
	// The key is free for another app now.
	_, err = e.client.CreateKey(ctx, "bob@example.com", "other", apigeeapi.Credential{ConsumerKey: "my-imported_key-0001"})
	require.NoError(t, err)
}

func TestConcurrentKeyEditsAreNotLost(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	app := e.provision("ana@example.com", "chat")
	key := app.Credentials[0].ConsumerKey
	const n = 16
	for i := range n {
		_, err := e.client.CreateProduct(ctx, product(fmt.Sprintf("p%02d", i)))
		require.NoError(t, err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			_, err := e.client.AddKeyProducts(ctx, "ana@example.com", "chat", key, []string{fmt.Sprintf("p%02d", i)})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	got, err := e.client.GetKey(ctx, "ana@example.com", "chat", key)
	require.NoError(t, err)
	assert.Len(t, got.APIProducts, n, "every concurrent edit is kept")
}

func TestProducts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := product("gold", "read")
	p.LLMOperationGroup = &apigeeapi.LLMOperationGroup{OperationConfigs: []apigeeapi.LLMOperationConfig{{
		APISource:     "inference-gateway-apim",
		LLMOperations: []apigeeapi.LLMOperation{{Resource: "/v1/chat/completions", Methods: []string{"POST"}, Model: "tiny"}},
		LLMTokenQuota: &apigeeapi.Quota{Limit: "1000", Interval: "1", TimeUnit: "hour"},
	}}}
	p.ApprovalType = ""
	created, err := e.client.CreateProduct(ctx, p)
	require.NoError(t, err)
	assert.Equal(t, "auto", created.ApprovalType, "approvalType defaults to auto")
	assert.Equal(t, "gold", created.DisplayName, "displayName defaults to the name")
	assert.Equal(t, ms(epoch), created.CreatedAt)
	assert.Equal(t, p.LLMOperationGroup, created.LLMOperationGroup)
	_, err = e.client.CreateProduct(ctx, p)
	apiError(t, err, 409, "ALREADY_EXISTS")

	got, err := e.client.GetProduct(ctx, "gold")
	require.NoError(t, err)
	assert.Equal(t, created, got)
	_, err = e.client.CreateProduct(ctx, product("bronze"))
	require.NoError(t, err)
	list, err := e.client.ListProducts(ctx)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, "bronze", list[0].Name)
	code, _, body := e.raw("GET", "/v1/organizations/gatecheck/apiproducts", "", "")
	require.Equal(t, 200, code)
	assert.JSONEq(t, `{"apiProduct":[{"name":"bronze"},{"name":"gold"}]}`, body)

	e.clock.Advance(time.Minute)
	got.Description = "now with a description"
	got.CreatedAt = "1"
	upd, err := e.client.UpdateProduct(ctx, got)
	require.NoError(t, err)
	assert.Equal(t, "now with a description", upd.Description)
	assert.Equal(t, ms(epoch), upd.CreatedAt, "createdAt is kept")
	assert.Equal(t, ms(epoch.Add(time.Minute)), upd.LastModifiedAt)
	_, err = e.client.UpdateProduct(ctx, product("ghost"))
	apiError(t, err, 404, "NOT_FOUND")
	code, _, _ = e.raw("PUT", "/v1/organizations/gatecheck/apiproducts/gold", "application/json", `{"name":"other"}`)
	assert.Equal(t, 400, code)

	require.NoError(t, e.client.DeleteProduct(ctx, "gold"))
	_, err = e.client.GetProduct(ctx, "gold")
	apiError(t, err, 404, "NOT_FOUND")
	apiError(t, e.client.DeleteProduct(ctx, "gold"), 404, "NOT_FOUND")
}

func TestProductValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	llm := func(edit func(*apigeeapi.LLMOperationConfig)) func(*apigeeapi.APIProduct) {
		return func(p *apigeeapi.APIProduct) {
			oc := apigeeapi.LLMOperationConfig{
				APISource:     "gw",
				LLMOperations: []apigeeapi.LLMOperation{{Resource: "/v1/chat/completions", Model: "tiny"}},
				LLMTokenQuota: &apigeeapi.Quota{Limit: "10", Interval: "1", TimeUnit: "minute"},
			}
			edit(&oc)
			p.LLMOperationGroup = &apigeeapi.LLMOperationGroup{OperationConfigs: []apigeeapi.LLMOperationConfig{oc}}
		}
	}
	op := func(p *apigeeapi.APIProduct) *apigeeapi.OperationConfig { return &p.OperationGroup.OperationConfigs[0] }
	for _, tc := range []struct {
		want string
		edit func(*apigeeapi.APIProduct)
	}{
		{"name: required", func(p *apigeeapi.APIProduct) { p.Name = "" }},
		{"name:", func(p *apigeeapi.APIProduct) { p.Name = "a/b" }},
		{"approvalType:", func(p *apigeeapi.APIProduct) { p.ApprovalType = "sometimes" }},
		{"attributes: 19 attributes", func(p *apigeeapi.APIProduct) {
			p.Attributes = make([]apigeeapi.Attribute, 19)
			for i := range p.Attributes {
				p.Attributes[i].Name = fmt.Sprint(i)
			}
		}},
		{"attributes[0].name: required", func(p *apigeeapi.APIProduct) { p.Attributes[0].Name = "" }},
		{"scopes[0]", func(p *apigeeapi.APIProduct) { p.Scopes = []string{"two words"} }},
		{"quota:", func(p *apigeeapi.APIProduct) { p.Quota, p.QuotaInterval, p.QuotaTimeUnit = "0", "1", "minute" }},
		{"quotaInterval:", func(p *apigeeapi.APIProduct) { p.Quota, p.QuotaInterval, p.QuotaTimeUnit = "5", "x", "minute" }},
		{"quotaTimeUnit:", func(p *apigeeapi.APIProduct) { p.Quota, p.QuotaInterval, p.QuotaTimeUnit = "5", "1", "week" }},
		{"operationGroup.operationConfigType:", func(p *apigeeapi.APIProduct) { p.OperationGroup.OperationConfigType = "grpc" }},
		{"operationGroup.operationConfigs[0].apiSource: required", func(p *apigeeapi.APIProduct) { op(p).APISource = "" }},
		{`operationGroup.operationConfigs[0].operations[0].resource: "v1/chat" must start with "/"`, func(p *apigeeapi.APIProduct) {
			op(p).Operations[0].Resource = "v1/chat"
		}},
		{"operationGroup.operationConfigs[0].operations[0].methods[0]", func(p *apigeeapi.APIProduct) {
			op(p).Operations[0].Methods = []string{"FETCH"}
		}},
		{"operationGroup.operationConfigs[0].quota.limit", func(p *apigeeapi.APIProduct) { op(p).Quota.Limit = "-1" }},
		{"operationGroup.operationConfigs[0].quota.limit", func(p *apigeeapi.APIProduct) { op(p).Quota.Limit = "1.5" }},
		{"operationGroup.operationConfigs[0].quota.interval", func(p *apigeeapi.APIProduct) { op(p).Quota.Interval = "0" }},
		{"operationGroup.operationConfigs[0].quota.timeUnit", func(p *apigeeapi.APIProduct) { op(p).Quota.TimeUnit = "fortnight" }},
		{"operationGroup.operationConfigs[0].attributes[0].name", func(p *apigeeapi.APIProduct) {
			op(p).Attributes = []apigeeapi.Attribute{{Value: "v"}}
		}},
		{"llmOperationGroup.operationConfigs[0].apiSource: required", llm(func(oc *apigeeapi.LLMOperationConfig) { oc.APISource = "" })},
		{"llmOperationGroup.operationConfigs[0].llmOperations[0].model: required", llm(func(oc *apigeeapi.LLMOperationConfig) {
			oc.LLMOperations[0].Model = ""
		})},
		{"llmOperationGroup.operationConfigs[0].llmOperations[0].resource", llm(func(oc *apigeeapi.LLMOperationConfig) {
			oc.LLMOperations[0].Resource = "chat"
		})},
		{"llmOperationGroup.operationConfigs[0].llmTokenQuota.limit", llm(func(oc *apigeeapi.LLMOperationConfig) {
			oc.LLMTokenQuota.Limit = "lots"
		})},
		{"llmOperationGroup.operationConfigs[0].llmTokenQuota.timeUnit", llm(func(oc *apigeeapi.LLMOperationConfig) {
			oc.LLMTokenQuota.TimeUnit = ""
		})},
	} {
		p := product("p", "read")
		tc.edit(&p)
		_, err := e.client.CreateProduct(ctx, p)
		ae := apiError(t, err, 400, "INVALID_ARGUMENT")
		assert.Contains(t, ae.Message, tc.want)
		if p.Name == "p" {
			// PUT validates the same way.
			_, err = e.client.UpdateProduct(ctx, p)
			apiError(t, err, 400, "INVALID_ARGUMENT")
		}
	}
	list, err := e.client.ListProducts(ctx)
	require.NoError(t, err)
	assert.Empty(t, list)
}
