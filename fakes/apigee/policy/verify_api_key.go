package policy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gatecheck/gatecheck/fakes/apigee/state"
)

// VerifyAPIKey checks the API key a request carries: it must be a known,
// approved, unexpired credential of an approved app of an active developer,
// and one of its approved products must grant the request (authz.go), and
// the product's tier rules must allow it (tier.go).
type VerifyAPIKey struct {
	name string
	ref  string // the variable holding the key
	env  Env
}

type xmlVerifyAPIKey struct {
	xmlCommon
	APIKey *xmlRef `xml:"APIKey"`
}

func parseVerifyAPIKey(data []byte, env Env) (Policy, error) {
	var x xmlVerifyAPIKey
	pe, err := decodePolicy("VerifyAPIKey", data, &x, &x.xmlCommon, []string{"APIKey"}, nil)
	if err != nil {
		return nil, err
	}
	if x.APIKey == nil {
		return nil, pe.elem("APIKey", "required")
	}
	if err := pe.checkRef("APIKey", x.APIKey, "ref"); err != nil {
		return nil, err
	}
	ref := strings.TrimSpace(x.APIKey.Ref)
	if ref == "" {
		return nil, pe.elem("APIKey", "the ref attribute is required (for example request.header.x-api-key)")
	}
	if strings.ContainsAny(ref, "{}") {
		return nil, pe.elem("APIKey", "ref %q must be a variable name, not a template", ref)
	}
	return &VerifyAPIKey{name: x.Name, ref: ref, env: env}, nil
}

// NewVerifyAPIKey returns a VerifyAPIKey policy named name reading the key
// from the variable ref.
func NewVerifyAPIKey(name, ref string, env Env) *VerifyAPIKey {
	return &VerifyAPIKey{name: name, ref: ref, env: env.withDefaults()}
}

// Name returns the policy's name.
func (p *VerifyAPIKey) Name() string { return p.name }

// Kind returns "VerifyAPIKey".
func (p *VerifyAPIKey) Kind() string { return "VerifyAPIKey" }

// Apply verifies the key and sets the consumer's flow variables (see
// setConsumerVars) under verifyapikey.{name}., plus client_id,
// developer.email, developer.id, developer.app.name, developer.app.id and
// apiproduct.name, and gatecheck.credential.header (or .queryparam) naming
// where the key was, so the runtime can drop it before the backend.
func (p *VerifyAPIKey) Apply(ctx context.Context, m *Message) (*Fault, error) {
	v := m.vars()
	prefix := "verifyapikey." + p.name + "."
	fail := func(d *FaultDef, args ...any) (*Fault, error) {
		v.Set(prefix+"failed", "true")
		return d.fault(args...), nil
	}
	key, ok := Lookup(p.ref, m)
	if !ok || strings.TrimSpace(key) == "" {
		return fail(faultAPIKeyMissing, p.ref)
	}
	if p.env.Store == nil {
		return nil, fmt.Errorf("VerifyAPIKey %q: %w", p.name, errNoStore)
	}
	c, err := p.env.Store.Consumer(ctx, key)
	if errors.Is(err, state.ErrNotFound) {
		return fail(faultAPIKeyInvalid)
	}
	if err != nil {
		return nil, fmt.Errorf("VerifyAPIKey %q: %w", p.name, err)
	}
	if d := credentialCheck(c, p.env.now(m)); d != nil {
		return fail(d)
	}
	g, ok := authorize(approvedProducts(c), requestOf(m, p.env.APISource))
	if !ok {
		return fail(faultAPIKeyForResource)
	}
	tier, err := ParseTier(productAttributes(g))
	if err != nil {
		return nil, fmt.Errorf("VerifyAPIKey %q: product %q: %w", p.name, g.product.Name, err)
	}
	if f := tier.check(g.product.Name, m.Path, m.Body); f != nil {
		v.Set(prefix+"failed", "true")
		return f, nil
	}
	setConsumerVars(v, prefix, c, g)
	v.Set("client_id", c.Credential.ConsumerKey)
	v.Set("developer.email", c.Developer.Email)
	v.Set("developer.id", c.Developer.DeveloperID)
	v.Set("developer.app.name", c.App.Name)
	v.Set("developer.app.id", c.App.AppID)
	v.Set("apiproduct.name", g.product.Name)
	if h, ok := cutPrefixFold(p.ref, "request.header."); ok {
		v.Set(VarCredentialHeader, strings.ToLower(h))
	} else if q, ok := cutPrefixFold(p.ref, "request.queryparam."); ok {
		v.Set(VarCredentialQueryParam, q)
	}
	return nil, nil
}
