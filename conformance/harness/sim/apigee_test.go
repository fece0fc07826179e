package sim

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatecheck/gatecheck/fakes/apigee"
	"github.com/gatecheck/gatecheck/fakes/apigee/policy"
	"github.com/gatecheck/gatecheck/internal/apigeeapi"
)

// End-to-end tests of the fake Apigee: every request goes client → gateway →
// ext_proc → runtime (→ picker → model server), as on GKE.

const (
	// apimPolicy is the default topology's APIMExtensionPolicy; policy XML
	// attached to it goes under policies/<apimPolicy>/request/.
	apimPolicy = "inference-gateway-apim"
	qwen       = "qwen2.5-0.5b-instruct"
	llama      = "llama-3.2-1b-instruct"
)

// chat is a cheap chat request for model: one output token.
func chat(model string) string {
	return `{"model":"` + model + `","max_tokens":1,"messages":[{"role":"user","content":"hi"}]}`
}

// withRequestPolicy attaches policy XML to the default APIMExtensionPolicy's
// request flow; file orders the flow (policies run in file name order, after
// the default security).
func withRequestPolicy(file, xml string) edit {
	return withFile("policies/"+apimPolicy+"/request/"+file, xml)
}

// noDefaultSecurity turns the operator's default security (API key, product
// quota, token quota) off, so only the attached policies run.
func noDefaultSecurity() edit {
	return replace("apim.yaml", "defaultSecurityEnabled: true", "defaultSecurityEnabled: false")
}

// result is an answer through the gateway, read whole.
type result struct {
	status int
	header http.Header
	body   []byte
}

// faultBody is Apigee's fault JSON.
type faultBody struct {
	Fault struct {
		FaultString string `json:"faultstring"`
		Detail      struct {
			ErrorCode string `json:"errorcode"`
		} `json:"detail"`
	} `json:"fault"`
}

func (r result) fault() faultBody {
	var f faultBody
	_ = json.Unmarshal(r.body, &f)
	return f
}

func (r result) code() string { return r.fault().Fault.Detail.ErrorCode }

func (r result) String() string { return fmt.Sprintf("%d %s", r.status, r.body) }

// send does one request without a testing.T, so goroutines can use it:
// method path through the gateway with header pairs (no API key unless one
// is given), the answer read whole.
func send(c *http.Client, env *Env, method, path, body string, header ...string) (result, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, env.GatewayURL()+path, rd)
	if err != nil {
		return result{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return result{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return result{}, err
	}
	return result{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// call is send for the test's goroutine.
func call(t testing.TB, env *Env, method, path, body string, header ...string) result {
	t.Helper()
	r, err := send(http.DefaultClient, env, method, path, body, header...)
	require.NoError(t, err)
	return r
}

// chatAs posts a chat request for model with an API key.
func chatAs(t testing.TB, env *Env, key, model string) result {
	t.Helper()
	return call(t, env, http.MethodPost, "/v1/chat/completions", chat(model), "x-api-key", key)
}

// requireFault checks an Apigee refusal: the status, the error code, the
// fault string (when not empty), and the trace id every refusal carries.
func requireFault(t testing.TB, r result, status int, code, faultstring string) {
	t.Helper()
	require.Equal(t, status, r.status, "answer: %s", r)
	f := r.fault()
	assert.Equal(t, code, f.Fault.Detail.ErrorCode, "answer: %s", r)
	if faultstring != "" {
		assert.Equal(t, faultstring, f.Fault.FaultString, "answer: %s", r)
	}
	assert.Equal(t, "application/json", r.header.Get("Content-Type"))
	assert.NotEmpty(t, r.header.Get(apigee.TraceHeader), "a refusal carries its trace id")
}

var seq atomic.Int64

// unique makes a name no other test of the run uses, so tests sharing an
// environment do not share apps, products or counters.
func unique(prefix string) string { return fmt.Sprintf("%s-%d", prefix, seq.Add(1)) }

// consumer is a developer app made for one test.
type consumer struct {
	email, app, key, secret string
}

// createProduct creates an API product through the management API.
func createProduct(t testing.TB, env *Env, p apigeeapi.APIProduct) string {
	t.Helper()
	_, err := env.Management().CreateProduct(context.Background(), p)
	require.NoError(t, err, "create product %s", p.Name)
	return p.Name
}

// newConsumer creates, through the management API, a developer and an app
// holding products, and returns the app's generated key.
func newConsumer(t testing.TB, env *Env, products ...string) consumer {
	t.Helper()
	ctx := context.Background()
	mc := env.Management()
	user := unique("dev")
	c := consumer{email: user + "@gatecheck.test", app: unique("app")}
	_, err := mc.CreateDeveloper(ctx, apigeeapi.Developer{Email: c.email, FirstName: "Test", LastName: "Developer", UserName: user})
	require.NoError(t, err)
	app, err := mc.CreateApp(ctx, c.email, apigeeapi.DeveloperApp{Name: c.app, APIProducts: products})
	require.NoError(t, err)
	require.Len(t, app.Credentials, 1)
	c.key, c.secret = app.Credentials[0].ConsumerKey, app.Credentials[0].ConsumerSecret
	return c
}

// restProduct grants operations (resource paths, every method) of the
// default policy.
func restProduct(name string, resources ...string) apigeeapi.APIProduct {
	var ops []apigeeapi.Operation
	for _, r := range resources {
		ops = append(ops, apigeeapi.Operation{Resource: r})
	}
	return apigeeapi.APIProduct{Name: name, DisplayName: name, ApprovalType: "auto",
		OperationGroup: &apigeeapi.OperationGroup{OperationConfigs: []apigeeapi.OperationConfig{{APISource: apimPolicy, Operations: ops}}}}
}

// llmProduct grants LLM operations of the default policy, with an optional
// token quota.
func llmProduct(name string, quota *apigeeapi.Quota, ops ...apigeeapi.LLMOperation) apigeeapi.APIProduct {
	return apigeeapi.APIProduct{Name: name, DisplayName: name, ApprovalType: "auto",
		LLMOperationGroup: &apigeeapi.LLMOperationGroup{OperationConfigs: []apigeeapi.LLMOperationConfig{{
			APISource: apimPolicy, LLMOperations: ops, LLMTokenQuota: quota,
		}}}}
}

// traceOf waits for the trace of an answer (an allowed request's trace is
// filed once the runtime has seen the end of the answer).
func traceOf(t testing.TB, env *Env, r result) apigee.Trace {
	t.Helper()
	id := r.header.Get(apigee.TraceHeader)
	require.NotEmpty(t, id, "the answer carries %s: %s", apigee.TraceHeader, r)
	var tr apigee.Trace
	eventually(t, "trace "+id, func() bool {
		var ok bool
		tr, ok = env.Traces().Get(id)
		return ok
	})
	return tr
}

// stepVars merges the variables every step of a trace set.
func stepVars(tr apigee.Trace) map[string]string {
	out := map[string]string{}
	for _, s := range tr.Steps {
		for k, v := range s.Vars {
			out[k] = v
		}
	}
	return out
}

// TestAPIKeyFaults checks each refusal of the operator's default security
// (VerifyAPIKey on x-api-key) through the sandbox path, and what an allowed
// request carries on.
func TestAPIKeyFaults(t *testing.T) {
	t.Parallel()
	env := start(t, nil)
	ctx := context.Background()
	mc := env.Management()

	// A key whose only product grants GET /v1/models.
	modelsOnly := newConsumer(t, env, createProduct(t, env, restProduct(unique("models-only"), "/v1/models")))
	revokedKey := newConsumer(t, env, SandboxProduct)
	require.NoError(t, mc.RevokeKey(ctx, revokedKey.email, revokedKey.app, revokedKey.key))
	revokedApp := newConsumer(t, env, SandboxProduct)
	require.NoError(t, mc.RevokeApp(ctx, revokedApp.email, revokedApp.app))
	manual := restProduct(unique("manual"), "/v1/**")
	manual.ApprovalType = "manual"
	pending := newConsumer(t, env, createProduct(t, env, manual))
	inactive := newConsumer(t, env, SandboxProduct)
	require.NoError(t, mc.SetDeveloperStatus(ctx, inactive.email, false))

	// A second key on an app that expires a minute after it is made: good
	// until the clock passes it.
	expiring := newConsumer(t, env, SandboxProduct)
	cred, err := mc.CreateKey(ctx, expiring.email, expiring.app, apigeeapi.Credential{
		ExpiresInSeconds: "60", APIProducts: []apigeeapi.APIProductRef{{APIProduct: SandboxProduct}}})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, chatAs(t, env, cred.ConsumerKey, qwen).status, "the key works before it expires")
	require.NoError(t, mc.AdvanceClock(ctx, 61*time.Second))

	for _, tc := range []struct {
		name         string
		key          string // "" sends no x-api-key
		method, path string
		code, fs     string
	}{
		{"MissingKey", "", "", "", "steps.oauth.v2.FailedToResolveAPIKey", "Failed to resolve API Key variable request.header.x-api-key"},
		{"UnknownKey", "no-such-key-0123456789", "", "", "oauth.v2.InvalidApiKey", "Invalid ApiKey"},
		{"OperationNotGranted", modelsOnly.key, "", "", "oauth.v2.InvalidApiKeyForGivenResource", "Invalid ApiKey for given resource"},
		{"RevokedKey", revokedKey.key, "", "", "oauth.v2.ApiKeyNotApproved", "ApiKey not approved"},
		{"RevokedApp", revokedApp.key, "", "", "keymanagement.service.invalid_client-app_not_approved", "Application is not approved"},
		// The key's only product needs manual approval: it is pending, so
		// no approved product grants the request.
		{"PendingProduct", pending.key, "", "", "oauth.v2.InvalidApiKeyForGivenResource", "Invalid ApiKey for given resource"},
		{"ExpiredKey", cred.ConsumerKey, "", "", "keymanagement.service.consumer_key_expired", "Consumer key is expired"},
		{"InactiveDeveloper", inactive.key, "", "", "keymanagement.service.DeveloperStatusNotActive", "Developer Status is not Active"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var hdr []string
			if tc.key != "" {
				hdr = []string{"x-api-key", tc.key}
			}
			r := call(t, env, http.MethodPost, "/v1/chat/completions", chat(qwen), hdr...)
			requireFault(t, r, http.StatusUnauthorized, tc.code, tc.fs)
			tr := traceOf(t, env, r)
			assert.Equal(t, "denied", tr.Outcome)
			assert.Equal(t, tc.code, tr.Fault)
			require.NotEmpty(t, tr.Steps)
			last := tr.Steps[len(tr.Steps)-1]
			assert.Equal(t, policy.DefaultVerifyAPIKeyName, last.Policy)
			assert.Equal(t, "fault "+tc.code, last.Outcome)
		})
	}

	t.Run("GrantedOperation", func(t *testing.T) {
		t.Parallel()
		// The models-only key is good for what its product grants: the
		// runtime lets GET /v1/models through.
		r := call(t, env, http.MethodGet, "/v1/models", "", "x-api-key", modelsOnly.key)
		tr := traceOf(t, env, r)
		assert.Equal(t, "allowed", tr.Outcome, "answer: %s", r)
		assert.Equal(t, http.StatusOK, r.status, "answer: %s", r)
	})

	t.Run("Allowed", func(t *testing.T) {
		t.Parallel()
		r := call(t, env, http.MethodPost, "/v1/chat/completions", chat(qwen),
			"x-api-key", env.APIKey(), "x-apigee-developer", "mallory@evil.example")
		require.Equal(t, http.StatusOK, r.status, "answer: %s", r)
		var c chatCompletion
		require.NoError(t, json.Unmarshal(r.body, &c))
		assert.Equal(t, qwen, c.Model)
		// The identity the runtime forwards to the backend as x-apigee-app,
		// x-apigee-developer and x-apigee-product (fakes/apigee's runtime
		// test checks the header mutation itself, spoofs dropped).
		tr := traceOf(t, env, r)
		assert.Equal(t, "allowed", tr.Outcome)
		assert.Equal(t, http.StatusOK, tr.Status)
		vars := stepVars(tr)
		assert.Equal(t, SandboxApp, vars[policy.VarIdentityApp])
		assert.Equal(t, SandboxDeveloper, vars[policy.VarIdentityDeveloper])
		assert.Equal(t, SandboxProduct, vars[policy.VarIdentityProduct])
		assert.Equal(t, "x-api-key", vars[policy.VarCredentialHeader], "the runtime knows which header to drop")
	})
}

// TestAuthorizationByModel checks llmOperationGroup grants (which models a
// key may use) and the gatecheck.tier.* product attributes.
func TestAuthorizationByModel(t *testing.T) {
	t.Parallel()
	env := start(t, nil)

	t.Run("Model", func(t *testing.T) {
		t.Parallel()
		p := createProduct(t, env, llmProduct(unique("qwen-only"), nil,
			apigeeapi.LLMOperation{Resource: "/v1/chat/completions", Methods: []string{"POST"}, Model: qwen}))
		c := newConsumer(t, env, p)
		r := chatAs(t, env, c.key, qwen)
		require.Equal(t, http.StatusOK, r.status, "answer: %s", r)
		requireFault(t, chatAs(t, env, c.key, llama), http.StatusUnauthorized,
			"oauth.v2.InvalidApiKeyForGivenResource", "Invalid ApiKey for given resource")
		// The grant is for the operation, not just the model.
		r = call(t, env, http.MethodPost, "/v1/completions", `{"model":"`+qwen+`","max_tokens":1,"prompt":"hi"}`, "x-api-key", c.key)
		requireFault(t, r, http.StatusUnauthorized, "oauth.v2.InvalidApiKeyForGivenResource", "")
	})

	tier := func(t *testing.T, attr, value string) (consumer, string) {
		p := restProduct(unique("tier"), "/v1/**", "/api/**")
		p.Attributes = []apigeeapi.Attribute{{Name: attr, Value: value}}
		name := createProduct(t, env, p)
		return newConsumer(t, env, name), name
	}

	t.Run("NoStreaming", func(t *testing.T) {
		t.Parallel()
		c, product := tier(t, "gatecheck.tier.stream", "false")
		r := call(t, env, http.MethodPost, "/v1/chat/completions",
			`{"model":"`+qwen+`","stream":true,"max_tokens":1,"messages":[{"role":"user","content":"hi"}]}`, "x-api-key", c.key)
		requireFault(t, r, http.StatusForbidden, "gatecheck.tier.StreamingNotAllowed", "Streaming is not allowed by product "+product)
		r = chatAs(t, env, c.key, qwen)
		assert.Equal(t, http.StatusOK, r.status, "a request that does not stream passes: %s", r)
		// Ollama's /api/chat streams unless told not to.
		r = call(t, env, http.MethodPost, "/api/chat", `{"model":"`+llama+`","messages":[{"role":"user","content":"hi"}],"options":{"num_predict":1}}`, "x-api-key", c.key)
		requireFault(t, r, http.StatusForbidden, "gatecheck.tier.StreamingNotAllowed", "")
	})

	t.Run("MaxTokens", func(t *testing.T) {
		t.Parallel()
		c, product := tier(t, "gatecheck.tier.max_tokens", "64")
		r := call(t, env, http.MethodPost, "/v1/chat/completions",
			`{"model":"`+qwen+`","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}`, "x-api-key", c.key)
		requireFault(t, r, http.StatusForbidden, "gatecheck.tier.MaxTokensExceeded", "max_tokens 100 exceeds 64 allowed by product "+product)
		r = call(t, env, http.MethodPost, "/v1/chat/completions",
			`{"model":"`+qwen+`","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`, "x-api-key", c.key)
		assert.Equal(t, http.StatusOK, r.status, "max_tokens at the limit passes: %s", r)
	})
}

// TestAccessControl denies the loopback client with an attached
// AccessControl policy.
func TestAccessControl(t *testing.T) {
	t.Parallel()
	env := start(t, topology(t, withRequestPolicy("10-acl.xml", `<AccessControl name="AC-Deny-Loopback">
  <IPRules noRuleMatchAction="ALLOW">
    <MatchRule action="DENY"><SourceAddress mask="32">127.0.0.1</SourceAddress></MatchRule>
  </IPRules>
</AccessControl>`)))
	r := chatAs(t, env, env.APIKey(), qwen)
	requireFault(t, r, http.StatusForbidden, "accesscontrol.IPDeniedAccess", "Access Denied for client ip : 127.0.0.1")
	tr := traceOf(t, env, r)
	assert.Equal(t, "AC-Deny-Loopback", tr.Steps[len(tr.Steps)-1].Policy)

	// A client cannot talk its way past the rule with its own
	// X-Forwarded-For: the gateway appends the address it saw.
	r = call(t, env, http.MethodPost, "/v1/chat/completions", chat(qwen), "x-api-key", env.APIKey(), "X-Forwarded-For", "203.0.113.9")
	requireFault(t, r, http.StatusForbidden, "accesscontrol.IPDeniedAccess", "Access Denied for client ip : 127.0.0.1")
}

// oauthToken mints a client_credentials token at the management API's
// token endpoint, as a client would: a form POST with HTTP Basic auth.
func oauthToken(t testing.TB, env *Env, key, secret, scope string) (int, apigeeapi.AccessToken, faultBody) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	req, err := http.NewRequest(http.MethodPost, env.Ready().Admin+"/oauth/token", strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.SetBasicAuth(key, secret)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var tok apigeeapi.AccessToken
	var f faultBody
	if resp.StatusCode == http.StatusOK {
		require.NoError(t, json.Unmarshal(b, &tok), "%s", b)
	} else {
		require.NoError(t, json.Unmarshal(b, &f), "%s", b)
	}
	return resp.StatusCode, tok, f
}

// TestOAuthAccessTokens secures the policy with OAuthV2 VerifyAccessToken
// instead of API keys: tokens minted at the token endpoint work until they
// expire, and a required scope is enforced.
func TestOAuthAccessTokens(t *testing.T) {
	t.Parallel()
	const verify = `<OAuthV2 name="OA-Verify"><Operation>VerifyAccessToken</Operation></OAuthV2>`
	const verifyWrite = `<OAuthV2 name="OA-Verify"><Operation>VerifyAccessToken</Operation><Scope>write</Scope></OAuthV2>`

	t.Run("VerifyAccessToken", func(t *testing.T) {
		t.Parallel()
		env := start(t, topology(t, noDefaultSecurity(), withRequestPolicy("01-verify-token.xml", verify)))
		app, err := env.Management().GetApp(context.Background(), SandboxDeveloper, SandboxApp)
		require.NoError(t, err)
		key, secret := app.Credentials[0].ConsumerKey, app.Credentials[0].ConsumerSecret

		status, _, f := oauthToken(t, env, key, "wrong-secret", "")
		assert.Equal(t, http.StatusUnauthorized, status)
		assert.Equal(t, "oauth.v2.InvalidClientIdentifier", f.Fault.Detail.ErrorCode)

		status, tok, _ := oauthToken(t, env, key, secret, "")
		require.Equal(t, http.StatusOK, status)
		require.NotEmpty(t, tok.AccessToken)
		assert.Equal(t, key, tok.ClientID)
		ttl, err := strconv.Atoi(tok.ExpiresIn)
		require.NoError(t, err)
		require.Positive(t, ttl)

		chatWith := func(header ...string) result {
			return call(t, env, http.MethodPost, "/v1/chat/completions", chat(qwen), header...)
		}
		r := chatWith("Authorization", "Bearer "+tok.AccessToken)
		require.Equal(t, http.StatusOK, r.status, "answer: %s", r)
		vars := stepVars(traceOf(t, env, r))
		assert.Equal(t, SandboxApp, vars[policy.VarIdentityApp])
		assert.Equal(t, "authorization", vars[policy.VarCredentialHeader])

		requireFault(t, chatWith(), http.StatusUnauthorized, "oauth.v2.InvalidAccessToken", "Invalid access token")
		// An API key is no access token.
		requireFault(t, chatWith("x-api-key", key), http.StatusUnauthorized, "oauth.v2.InvalidAccessToken", "Invalid access token")
		requireFault(t, chatWith("Authorization", "Bearer not-a-token"), http.StatusUnauthorized,
			"keymanagement.service.invalid_access_token", "Invalid Access Token")

		require.NoError(t, env.Management().AdvanceClock(context.Background(), time.Duration(ttl)*time.Second+time.Second))
		requireFault(t, chatWith("Authorization", "Bearer "+tok.AccessToken), http.StatusUnauthorized,
			"keymanagement.service.access_token_expired", "Access Token expired")
		// A token minted now works: the refusal was the expiry.
		status, fresh, _ := oauthToken(t, env, key, secret, "")
		require.Equal(t, http.StatusOK, status)
		r = chatWith("Authorization", "Bearer "+fresh.AccessToken)
		assert.Equal(t, http.StatusOK, r.status, "answer: %s", r)
	})

	t.Run("Scope", func(t *testing.T) {
		t.Parallel()
		env := start(t, topology(t, noDefaultSecurity(), withRequestPolicy("01-verify-token.xml", verifyWrite)))
		app, err := env.Management().GetApp(context.Background(), SandboxDeveloper, SandboxApp)
		require.NoError(t, err)
		status, tok, _ := oauthToken(t, env, app.Credentials[0].ConsumerKey, app.Credentials[0].ConsumerSecret, "")
		require.Equal(t, http.StatusOK, status)
		r := call(t, env, http.MethodPost, "/v1/chat/completions", chat(qwen), "Authorization", "Bearer "+tok.AccessToken)
		requireFault(t, r, http.StatusForbidden, "steps.oauth.v2.InsufficientScope", "Required scope(s) : write")

		// A product with the scope, and a token that asks for it.
		p := restProduct(unique("writers"), "/v1/**")
		p.Scopes = []string{"write"}
		c := newConsumer(t, env, createProduct(t, env, p))
		status, tok, _ = oauthToken(t, env, c.key, c.secret, "write")
		require.Equal(t, http.StatusOK, status)
		assert.Equal(t, "write", tok.Scope)
		r = call(t, env, http.MethodPost, "/v1/chat/completions", chat(qwen), "Authorization", "Bearer "+tok.AccessToken)
		assert.Equal(t, http.StatusOK, r.status, "answer: %s", r)
	})
}

// jwtSigner signs RS256 tokens with a key named kid.
type jwtSigner struct {
	key *rsa.PrivateKey
	kid string
}

func newSigner(t testing.TB, kid string) jwtSigner {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	return jwtSigner{key: k, kid: kid}
}

// jwks is the public key as an inline JWKS.
func (s jwtSigner) jwks() string {
	b64 := base64.RawURLEncoding.EncodeToString
	return `{"keys":[{"kty":"RSA","use":"sig","alg":"RS256","kid":"` + s.kid + `","n":"` + b64(s.key.N.Bytes()) +
		`","e":"` + b64(big.NewInt(int64(s.key.E)).Bytes()) + `"}]}`
}

func (s jwtSigner) sign(t testing.TB, claims map[string]any) string {
	t.Helper()
	hdr, err := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": s.kid})
	require.NoError(t, err)
	payload, err := json.Marshal(claims)
	require.NoError(t, err)
	input := base64.RawURLEncoding.EncodeToString(hdr) + "." + base64.RawURLEncoding.EncodeToString(payload)
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, sum[:])
	require.NoError(t, err)
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// TestVerifyJWT secures the policy with VerifyJWT against an inline JWKS.
func TestVerifyJWT(t *testing.T) {
	t.Parallel()
	signer := newSigner(t, "k1")
	// Another key under the same kid: its signatures do not verify.
	impostor := newSigner(t, "k1")
	env := start(t, topology(t, noDefaultSecurity(), withRequestPolicy("01-jwt.xml", `<VerifyJWT name="JWT-Verify">
  <Algorithm>RS256</Algorithm>
  <PublicKey><JWKS>`+signer.jwks()+`</JWKS></PublicKey>
  <Issuer>https://issuer.example</Issuer>
  <Audience>inference</Audience>
</VerifyJWT>`)))
	now := env.Clock().Now()
	claims := func(exp time.Time, aud string) map[string]any {
		return map[string]any{"iss": "https://issuer.example", "aud": aud, "sub": "alice",
			"iat": now.Add(-time.Minute).Unix(), "exp": exp.Unix()}
	}
	good := claims(now.Add(time.Hour), "inference")
	for _, tc := range []struct {
		name         string
		token        string
		status       int
		code, fs     string
		sub          string
		noAuthHeader bool
	}{
		{name: "Valid", token: signer.sign(t, good), status: http.StatusOK},
		{name: "Expired", token: signer.sign(t, claims(now.Add(-time.Hour), "inference")), status: http.StatusUnauthorized,
			code: "steps.jwt.TokenExpired", fs: "The Token has expired: policy(JWT-Verify)"},
		{name: "BadSignature", token: impostor.sign(t, good), status: http.StatusUnauthorized,
			code: "steps.jwt.InvalidToken", fs: "Invalid Token: policy(JWT-Verify)"},
		{name: "WrongAudience", token: signer.sign(t, claims(now.Add(time.Hour), "billing")), status: http.StatusUnauthorized,
			code: "steps.jwt.JwtAudienceMismatch", fs: "Audience mismatch: policy(JWT-Verify)"},
		{name: "Garbage", token: "not.a.jwt", status: http.StatusUnauthorized, code: "steps.jwt.FailedToDecode",
			fs: "Failed to Decode Token: policy(JWT-Verify)"},
		{name: "Missing", noAuthHeader: true, status: http.StatusUnauthorized, code: "steps.jwt.FailedToResolveVariable",
			fs: "Failed to Resolve Variable : policy(JWT-Verify) variable(request.header.authorization)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var hdr []string
			if !tc.noAuthHeader {
				hdr = []string{"Authorization", "Bearer " + tc.token}
			}
			r := call(t, env, http.MethodPost, "/v1/chat/completions", chat(qwen), hdr...)
			if tc.status == http.StatusOK {
				require.Equal(t, http.StatusOK, r.status, "answer: %s", r)
				vars := stepVars(traceOf(t, env, r))
				assert.Equal(t, "true", vars["jwt.JWT-Verify.valid"])
				assert.Equal(t, "alice", vars["jwt.JWT-Verify.decoded.claim.sub"])
				return
			}
			requireFault(t, r, tc.status, tc.code, tc.fs)
		})
	}
}

// TestRuntimeFailure stops and slows the runtime: the gateway follows the
// APIMExtensionPolicy's failOpen and timeout.
func TestRuntimeFailure(t *testing.T) {
	t.Parallel()
	fast := replace("apim.yaml", "timeout: 1000ms", "timeout: 100ms")
	gatewayReason := func(r result) string {
		var b struct {
			Error struct {
				Reason string `json:"reason"`
			} `json:"error"`
		}
		_ = json.Unmarshal(r.body, &b)
		return b.Error.Reason
	}

	t.Run("FailClosed", func(t *testing.T) {
		t.Parallel()
		env := start(t, topology(t, fast))
		withKey := func() result { return chatAs(t, env, env.APIKey(), qwen) }
		require.NoError(t, env.StopRuntime(apimPolicy))
		r := withKey()
		require.Equal(t, http.StatusInternalServerError, r.status, "answer: %s", r)
		assert.Equal(t, "ExtensionUnavailable", gatewayReason(r))

		require.NoError(t, env.StartRuntime(apimPolicy))
		eventually(t, "the restarted runtime to allow again", func() bool { return withKey().status == http.StatusOK })

		require.NoError(t, env.SetRuntimeDelay(apimPolicy, 300*time.Millisecond))
		r = withKey()
		require.Equal(t, http.StatusGatewayTimeout, r.status, "answer: %s", r)
		assert.Equal(t, "ExtensionUnavailableTimeout", gatewayReason(r))
		require.NoError(t, env.SetRuntimeDelay(apimPolicy, 0))
		eventually(t, "the runtime to answer in time again", func() bool { return withKey().status == http.StatusOK })
	})

	t.Run("FailOpen", func(t *testing.T) {
		t.Parallel()
		env := start(t, topology(t, fast, replace("apim.yaml", "failOpen: false", "failOpen: true")))
		noKey := func() result { return call(t, env, http.MethodPost, "/v1/chat/completions", chat(qwen)) }
		requireFault(t, noKey(), http.StatusUnauthorized, "steps.oauth.v2.FailedToResolveAPIKey", "")

		require.NoError(t, env.StopRuntime(apimPolicy))
		r := noKey()
		assert.Equal(t, http.StatusOK, r.status, "fail open: the request goes on without Apigee: %s", r)

		require.NoError(t, env.StartRuntime(apimPolicy))
		eventually(t, "the restarted runtime to enforce again", func() bool { return noKey().status == http.StatusUnauthorized })

		require.NoError(t, env.SetRuntimeDelay(apimPolicy, 300*time.Millisecond))
		r = noKey()
		assert.Equal(t, http.StatusOK, r.status, "fail open past the timeout: %s", r)
		require.NoError(t, env.SetRuntimeDelay(apimPolicy, 0))
		eventually(t, "the runtime to enforce in time again", func() bool { return noKey().status == http.StatusUnauthorized })
	})
}

// startWith starts an environment with opts; the caller closes it.
func startWith(t testing.TB, opts Options) (*Env, func()) {
	t.Helper()
	env, err := Start(context.Background(), opts)
	require.NoError(t, err)
	var once sync.Once
	closeEnv := func() { once.Do(env.Close) }
	t.Cleanup(closeEnv)
	return env, closeEnv
}

// TestStateSurvivesRestart keeps the fake Apigee's state in a directory: a
// second start finds the same key and the same quota counters.
func TestStateSurvivesRestart(t *testing.T) {
	t.Parallel()
	t.Run("Restart", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		snap := topology(t, replace("apim.yaml", "limit: 1000", "limit: 3"))
		env, closeEnv := startWith(t, Options{Snapshot: snap, StateDir: dir, Provision: true})
		key := env.APIKey()
		require.NotEmpty(t, key)
		for i := 0; i < 2; i++ {
			r := chatAs(t, env, key, qwen)
			require.Equal(t, http.StatusOK, r.status, "request %d: %s", i+1, r)
		}
		closeEnv()

		env, _ = startWith(t, Options{Snapshot: snap, StateDir: dir, Provision: true})
		require.Equal(t, key, env.APIKey(), "the sandbox app and its key are in the state")
		r := chatAs(t, env, key, qwen)
		require.Equal(t, http.StatusOK, r.status, "the third request of the quota: %s", r)
		requireFault(t, chatAs(t, env, key, qwen), http.StatusTooManyRequests, "policies.ratelimit.QuotaViolation",
			"Rate limit quota violation. Quota limit  exceeded. Identifier : _default")
	})

	t.Run("Corrupt", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		path := filepath.Join(dir, StateFile)
		garbage := []byte(strings.Repeat("this is not a state file\n", 1000))
		require.NoError(t, os.WriteFile(path, garbage, 0o600))
		env, err := Start(context.Background(), Options{StateDir: dir, Provision: true})
		if env != nil {
			env.Close()
		}
		require.Error(t, err)
		assert.Contains(t, err.Error(), path)
		assert.Contains(t, err.Error(), "not a gatecheck state file or corrupt")
		b, rerr := os.ReadFile(path)
		require.NoError(t, rerr)
		assert.Equal(t, garbage, b, "a state file that cannot be read is left as it was")
	})
}

// TestTraces looks a refusal up by its trace id in the emulator's trace API.
func TestTraces(t *testing.T) {
	t.Parallel()
	env := start(t, topology(t, replace("apim.yaml", "limit: 1000", "limit: 1")))
	ready := env.Ready()
	key := env.APIKey()
	get := func(path, token string) (int, []byte) {
		req, err := http.NewRequest(http.MethodGet, ready.Admin+path, nil)
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, b
	}
	lookup := func(r result) (apigee.Trace, string) {
		id := r.header.Get(apigee.TraceHeader)
		require.NotEmpty(t, id)
		traceOf(t, env, r) // filed
		status, b := get("/v1/emulator/traces/"+url.PathEscape(id), ready.AdminToken)
		require.Equal(t, http.StatusOK, status, "%s", b)
		var tr apigee.Trace
		require.NoError(t, json.Unmarshal(b, &tr))
		assert.Equal(t, id, tr.ID)
		return tr, string(b)
	}

	allowed := chatAs(t, env, key, qwen)
	require.Equal(t, http.StatusOK, allowed.status, "answer: %s", allowed)
	denied := chatAs(t, env, key, qwen)
	requireFault(t, denied, http.StatusTooManyRequests, "policies.ratelimit.QuotaViolation", "")
	missing := call(t, env, http.MethodPost, "/v1/chat/completions", chat(qwen))
	requireFault(t, missing, http.StatusUnauthorized, "steps.oauth.v2.FailedToResolveAPIKey", "")

	tr, raw := lookup(denied)
	assert.Equal(t, "denied", tr.Outcome)
	assert.Equal(t, http.StatusTooManyRequests, tr.Status)
	assert.Equal(t, "policies.ratelimit.QuotaViolation", tr.Fault)
	assert.Equal(t, "/v1/chat/completions", tr.Path)
	require.Len(t, tr.Steps, 2, "the key verified, then the quota refused")
	assert.Equal(t, policy.DefaultVerifyAPIKeyName, tr.Steps[0].Policy)
	assert.Equal(t, "ok", tr.Steps[0].Outcome)
	assert.Equal(t, policy.DefaultQuotaName, tr.Steps[1].Policy)
	assert.Equal(t, "fault policies.ratelimit.QuotaViolation", tr.Steps[1].Outcome)
	assert.Equal(t, "1", tr.Steps[1].Vars["ratelimit."+policy.DefaultQuotaName+".used.count"], "the refused request is not counted: %v", tr.Steps[1].Vars)
	assert.Equal(t, apigee.Redact(key), tr.Steps[0].Vars["client_id"], "the key is shown redacted")
	assert.NotContains(t, raw, key, "no full API key in the trace")

	tr, raw = lookup(allowed)
	assert.Equal(t, "allowed", tr.Outcome)
	assert.NotContains(t, raw, key, "no full API key in the trace")

	tr, _ = lookup(missing)
	assert.Equal(t, "steps.oauth.v2.FailedToResolveAPIKey", tr.Fault)
	require.Len(t, tr.Steps, 1)
	assert.Equal(t, "fault steps.oauth.v2.FailedToResolveAPIKey", tr.Steps[0].Outcome)

	status, b := get("/v1/emulator/traces?limit=10", ready.AdminToken)
	require.Equal(t, http.StatusOK, status)
	assert.NotContains(t, string(b), key, "no full API key in the trace list")

	id := denied.header.Get(apigee.TraceHeader)
	status, _ = get("/v1/emulator/traces/"+id, "")
	assert.Equal(t, http.StatusUnauthorized, status, "traces are for the admin only")
	status, _ = get("/v1/emulator/traces/"+id, "not-the-admin-token")
	assert.Equal(t, http.StatusUnauthorized, status)
	status, _ = get("/v1/emulator/traces/no-such-trace", ready.AdminToken)
	assert.Equal(t, http.StatusNotFound, status)
}
