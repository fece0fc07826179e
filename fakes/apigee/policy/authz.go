package policy

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatecheck/gatecheck/fakes/apigee/state"
	"github.com/gatecheck/gatecheck/internal/apigeeapi"
)

// Authorisation, shared by VerifyAPIKey and OAuthV2 VerifyAccessToken.
//
// A credential's products are those it lists with status approved (or no
// status). A product grants a request when
//   - one of its operationGroup operation configs whose apiSource is the
//     runtime's (Env.APISource; an empty apiSource on either side matches)
//     has an operation whose resource matches the path and whose methods
//     include the method (no methods: all), or
//   - one of its llmOperationGroup configs (same apiSource rule) has an LLM
//     operation whose resource and methods match and whose model matches the
//     request's model (the "model" field of a JSON body; "*" or empty: any
//     model; "*" inside a pattern matches any run of characters), or
//   - it has neither group (a legacy product): its apiResources (resource
//     patterns) match the path — none listed grants every path — and its
//     proxies, if listed, include the runtime's API source.
//
// The first granting product, in the credential's order, is the matched one.
// A request for a model no product grants is InvalidApiKeyForGivenResource
// (VerifyAPIKey) or InvalidAPICallAsNoApiProductMatchFound (tokens), like
// any other resource the key is not good for.

// opRequest is what authorisation looks at in a request.
type opRequest struct {
	method, path, model string
	apiSource           string
}

func requestOf(m *Message, apiSource string) opRequest {
	return opRequest{method: m.Method, path: m.Path, model: requestModel(m.Body), apiSource: apiSource}
}

// requestModel reads the top-level "model" of a JSON body ("" if none).
func requestModel(body []byte) string {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return ""
	}
	var v struct {
		Model string `json:"model"`
	}
	if json.Unmarshal(body, &v) != nil {
		return ""
	}
	return v.Model
}

// grant is a product that grants a request, with the operation configs that
// matched (nil when the product has no such group or it did not match).
type grant struct {
	product  apigeeapi.APIProduct
	op       *apigeeapi.OperationConfig
	opIndex  int
	llm      *apigeeapi.LLMOperationConfig
	llmIndex int
}

// approvedProducts are the credential's products with an approved status.
func approvedProducts(c state.Consumer) []apigeeapi.APIProduct {
	status := make(map[string]string, len(c.Credential.APIProducts))
	for _, r := range c.Credential.APIProducts {
		status[r.APIProduct] = r.Status
	}
	var out []apigeeapi.APIProduct
	for _, p := range c.Products {
		if s := status[p.Name]; s == "" || strings.EqualFold(s, "approved") {
			out = append(out, p)
		}
	}
	return out
}

// authorize returns the first product that grants req.
func authorize(products []apigeeapi.APIProduct, req opRequest) (grant, bool) {
	for _, p := range products {
		if g, ok := productGrant(p, req); ok {
			return g, true
		}
	}
	return grant{}, false
}

func productGrant(p apigeeapi.APIProduct, req opRequest) (grant, bool) {
	hasOps := p.OperationGroup != nil && len(p.OperationGroup.OperationConfigs) > 0
	hasLLM := p.LLMOperationGroup != nil && len(p.LLMOperationGroup.OperationConfigs) > 0
	g := grant{product: p, opIndex: -1, llmIndex: -1}
	if !hasOps && !hasLLM {
		return g, legacyGrants(p, req)
	}
	if hasLLM {
	llm:
		for i := range p.LLMOperationGroup.OperationConfigs {
			cfg := &p.LLMOperationGroup.OperationConfigs[i]
			if !sourceMatches(cfg.APISource, req.apiSource) {
				continue
			}
			for _, op := range cfg.LLMOperations {
				if matchResource(op.Resource, req.path) && matchMethod(op.Methods, req.method) && matchModel(op.Model, req.model) {
					g.llm, g.llmIndex = cfg, i
					break llm
				}
			}
		}
	}
	if hasOps {
	ops:
		for i := range p.OperationGroup.OperationConfigs {
			cfg := &p.OperationGroup.OperationConfigs[i]
			if !sourceMatches(cfg.APISource, req.apiSource) {
				continue
			}
			for _, op := range cfg.Operations {
				if matchResource(op.Resource, req.path) && matchMethod(op.Methods, req.method) {
					g.op, g.opIndex = cfg, i
					break ops
				}
			}
		}
	}
	return g, g.op != nil || g.llm != nil
}

// legacyGrants applies a product without operation groups: apiResources
// and proxies.
func legacyGrants(p apigeeapi.APIProduct, req opRequest) bool {
	if len(p.Proxies) > 0 && req.apiSource != "" && !slices.Contains(p.Proxies, req.apiSource) {
		return false
	}
	if len(p.APIResources) == 0 {
		return true
	}
	for _, r := range p.APIResources {
		if matchResource(r, req.path) {
			return true
		}
	}
	return false
}

func sourceMatches(cfg, runtime string) bool {
	return cfg == "" || runtime == "" || cfg == runtime
}

// matchResource matches a request path against an operation resource: "/"
// and "/**" match every path; "*" matches exactly one segment and "**" any
// number of segments, none included. A trailing slash on the path is
// ignored.
func matchResource(pattern, path string) bool {
	if pattern == "" || pattern == "/" || pattern == "/**" {
		return true
	}
	return matchSegments(splitPath(pattern), splitPath(path))
}

func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

func matchSegments(pat, segs []string) bool {
	for len(pat) > 0 {
		switch pat[0] {
		case "**":
			rest := pat[1:]
			for i := 0; i <= len(segs); i++ {
				if matchSegments(rest, segs[i:]) {
					return true
				}
			}
			return false
		case "*":
			if len(segs) == 0 {
				return false
			}
		default:
			if len(segs) == 0 || segs[0] != pat[0] {
				return false
			}
		}
		pat, segs = pat[1:], segs[1:]
	}
	return len(segs) == 0
}

func matchMethod(methods []string, method string) bool {
	if len(methods) == 0 {
		return true
	}
	for _, m := range methods {
		if strings.EqualFold(m, method) {
			return true
		}
	}
	return false
}

// matchModel matches a model against an LLM operation's model pattern.
func matchModel(pattern, model string) bool {
	if pattern == "" || pattern == "*" {
		return true
	}
	return wildcardMatch(pattern, model)
}

// wildcardMatch matches s against a pattern where "*" is any run of
// characters (including "/", which model names contain).
func wildcardMatch(pattern, s string) bool {
	star := strings.IndexByte(pattern, '*')
	if star < 0 {
		return pattern == s
	}
	if !strings.HasPrefix(s, pattern[:star]) {
		return false
	}
	s = s[star:]
	rest := pattern[star+1:]
	for i := 0; i <= len(s); i++ {
		if wildcardMatch(rest, s[i:]) {
			return true
		}
	}
	return false
}

// credentialCheck returns the fault for a credential that may not be used
// at now, in Apigee's order: the key, its expiry, the app, the developer.
func credentialCheck(c state.Consumer, now time.Time) *FaultDef {
	switch {
	case !approved(c.Credential.Status):
		return faultAPIKeyNotApproved
	case credentialExpired(c.Credential, now):
		return faultAPIKeyExpired
	case !approved(c.App.Status):
		return faultAppNotApproved
	case c.Developer.Status != "" && !strings.EqualFold(c.Developer.Status, "active"):
		return faultDeveloperInactive
	}
	return nil
}

// approved: an empty status counts as approved (the store keeps what the
// management layer wrote; older objects may carry none).
func approved(status string) bool {
	return status == "" || strings.EqualFold(status, "approved")
}

func credentialExpired(c apigeeapi.Credential, now time.Time) bool {
	ms, err := strconv.ParseInt(strings.TrimSpace(c.ExpiresAt), 10, 64)
	if err != nil || ms <= 0 {
		return false
	}
	return now.UnixMilli() >= ms
}

// setConsumerVars sets the flow variables of a verified consumer, each name
// prefixed with prefix ("verifyapikey.VA." for VerifyAPIKey, "" for
// VerifyAccessToken):
//
//	client_id, status, issued_at, expires_at
//	developer.email, developer.id, developer.{attribute}
//	app.name, app.id, developer.app.name, developer.app.id, app.{attribute}
//	apiproduct.name, apiproduct.{attribute} (the operation config's attributes win)
//	apiproduct.developer.quota.limit, .interval, .timeunit  (the operation config's quota, else the product's)
//	apiproduct.developer.quota.scope                         (gatecheck: the counter scope, see Quota)
//	apiproduct.developer.llmQuota.limit, .interval, .timeunit, .scope (the LLM config's token quota)
//
// and the identity the runtime forwards: gatecheck.identity.app,
// gatecheck.identity.developer, gatecheck.identity.product.
func setConsumerVars(v *Vars, prefix string, c state.Consumer, g grant) {
	for _, a := range c.Developer.Attributes {
		v.Set(prefix+"developer."+a.Name, a.Value)
	}
	for _, a := range c.App.Attributes {
		v.Set(prefix+"app."+a.Name, a.Value)
	}
	for _, a := range productAttributes(g) {
		v.Set(prefix+"apiproduct."+a.Name, a.Value)
	}
	v.Set(prefix+"client_id", c.Credential.ConsumerKey)
	v.Set(prefix+"status", "approved")
	v.Set(prefix+"issued_at", c.Credential.IssuedAt)
	v.Set(prefix+"expires_at", c.Credential.ExpiresAt)
	v.Set(prefix+"developer.email", c.Developer.Email)
	v.Set(prefix+"developer.id", c.Developer.DeveloperID)
	v.Set(prefix+"app.name", c.App.Name)
	v.Set(prefix+"app.id", c.App.AppID)
	v.Set(prefix+"developer.app.name", c.App.Name)
	v.Set(prefix+"developer.app.id", c.App.AppID)
	v.Set(prefix+"apiproduct.name", g.product.Name)

	// The counter scope: an operation config with its own quota counts on
	// its own; the product-level quota is one counter for the product,
	// unless quotaCounterScope is OPERATION (Apigee's rule).
	scope := c.Credential.ConsumerKey + "/" + g.product.Name
	q := legacyQuota(g.product)
	if g.op != nil && (g.op.Quota != nil || strings.EqualFold(g.product.QuotaCounterScope, "OPERATION")) {
		scope += "/op" + strconv.Itoa(g.opIndex)
		if g.op.Quota != nil {
			q = g.op.Quota
		}
	}
	if q != nil {
		v.Set(prefix+"apiproduct.developer.quota.limit", q.Limit)
		v.Set(prefix+"apiproduct.developer.quota.interval", q.Interval)
		v.Set(prefix+"apiproduct.developer.quota.timeunit", q.TimeUnit)
	}
	v.Set(prefix+"apiproduct.developer.quota.scope", scope)
	if g.llm != nil {
		if lq := g.llm.LLMTokenQuota; lq != nil {
			v.Set(prefix+"apiproduct.developer.llmQuota.limit", lq.Limit)
			v.Set(prefix+"apiproduct.developer.llmQuota.interval", lq.Interval)
			v.Set(prefix+"apiproduct.developer.llmQuota.timeunit", lq.TimeUnit)
		}
		v.Set(prefix+"apiproduct.developer.llmQuota.scope",
			c.Credential.ConsumerKey+"/"+g.product.Name+"/llm"+strconv.Itoa(g.llmIndex))
	}

	v.Set(VarIdentityApp, c.App.Name)
	v.Set(VarIdentityDeveloper, c.Developer.Email)
	v.Set(VarIdentityProduct, g.product.Name)
}

// productAttributes are the product's attributes overridden by those of the
// matched operation configs (REST first, then LLM).
func productAttributes(g grant) []apigeeapi.Attribute {
	out := append([]apigeeapi.Attribute(nil), g.product.Attributes...)
	if g.op != nil {
		out = append(out, g.op.Attributes...)
	}
	if g.llm != nil {
		out = append(out, g.llm.Attributes...)
	}
	return out
}

// legacyQuota is a product's top-level quota (quota, quotaInterval,
// quotaTimeUnit), nil when it has none.
func legacyQuota(p apigeeapi.APIProduct) *apigeeapi.Quota {
	if strings.TrimSpace(p.Quota) == "" {
		return nil
	}
	return &apigeeapi.Quota{Limit: p.Quota, Interval: p.QuotaInterval, TimeUnit: p.QuotaTimeUnit}
}
