package policy

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatecheck/gatecheck/fakes/apigee/state"
	"github.com/gatecheck/gatecheck/internal/apigeeapi"
)

// OAuthV2 is Apigee's OAuthV2 policy, operations GenerateAccessToken (grant
// type client_credentials) and VerifyAccessToken.
//
// GenerateAccessToken reads grant_type (GrantType's variable, default
// request.formparam.grant_type, then request.queryparam.grant_type), the
// client credentials (HTTP Basic, else the form fields client_id and
// client_secret) and the requested scope (Scope's variable, default
// request.formparam.scope; space separated; every scope must be one of the
// credential's products' scopes or the credential's own; none asked means
// all of them). It stores the token (ExpiresIn ms, default 3600000; -1 never
// expires) and, unless <GenerateResponse enabled="false"/>, sets
// Message.Answer to 200 with the token JSON (apigeeapi.AccessToken).
//
// VerifyAccessToken reads "Authorization: Bearer <token>" (or the variable
// named by <AccessToken>), checks the token, its credential and app, that a
// product grants the request (authz.go) and that the token has every scope
// listed in <Scope> (space separated).
type OAuthV2 struct {
	name      string
	operation string
	env       Env

	// VerifyAccessToken.
	scopes   []string
	tokenRef string

	// GenerateAccessToken.
	grantTypes   []string
	grantTypeRef string
	scopeRef     string
	expiresIn    int64 // ms; -1 never
	expiresInRef string
	respond      bool
}

const (
	opGenerate = "GenerateAccessToken"
	opVerify   = "VerifyAccessToken"
)

type xmlOAuthV2 struct {
	xmlCommon
	Operation           *string `xml:"Operation"`
	Scope               *string `xml:"Scope"`
	AccessToken         *string `xml:"AccessToken"`
	SupportedGrantTypes *struct {
		GrantType []string `xml:"GrantType"`
		Unknown   []xmlAny `xml:",any"`
	} `xml:"SupportedGrantTypes"`
	GrantType        *string `xml:"GrantType"`
	ExpiresIn        *xmlRef `xml:"ExpiresIn"`
	GenerateResponse *struct {
		Enabled      string     `xml:"enabled,attr"`
		UnknownAttrs []xml.Attr `xml:",any,attr"`
	} `xml:"GenerateResponse"`
}

func parseOAuthV2(data []byte, env Env) (Policy, error) {
	var x xmlOAuthV2
	pe, err := decodePolicy("OAuthV2", data, &x, &x.xmlCommon,
		[]string{"Operation", "Scope", "AccessToken", "SupportedGrantTypes", "GrantType", "ExpiresIn", "GenerateResponse"}, nil)
	if err != nil {
		return nil, err
	}
	if x.Operation == nil || strings.TrimSpace(*x.Operation) == "" {
		return nil, pe.elem("Operation", "required (GenerateAccessToken or VerifyAccessToken)")
	}
	p := &OAuthV2{name: x.Name, operation: strings.TrimSpace(*x.Operation), env: env}
	only := func(elem string, present bool, op string) error {
		if present && p.operation != op {
			return pe.elem(elem, "only applies to Operation %s", op)
		}
		return nil
	}
	for _, c := range []struct {
		elem    string
		present bool
		op      string
	}{
		{"AccessToken", x.AccessToken != nil, opVerify},
		{"SupportedGrantTypes", x.SupportedGrantTypes != nil, opGenerate},
		{"GrantType", x.GrantType != nil, opGenerate},
		{"ExpiresIn", x.ExpiresIn != nil, opGenerate},
		{"GenerateResponse", x.GenerateResponse != nil, opGenerate},
	} {
		if err := only(c.elem, c.present, c.op); err != nil {
			return nil, err
		}
	}
	switch p.operation {
	case opVerify:
		if x.Scope != nil {
			p.scopes = strings.Fields(*x.Scope)
		}
		if x.AccessToken != nil {
			p.tokenRef = strings.TrimSpace(*x.AccessToken)
			if p.tokenRef == "" || strings.ContainsAny(p.tokenRef, "{} ") {
				return nil, pe.elem("AccessToken", "%q is not a variable name", p.tokenRef)
			}
		}
	case opGenerate:
		if err := p.parseGenerate(pe, &x); err != nil {
			return nil, err
		}
	default:
		return nil, pe.elem("Operation", "%q is not supported (supported: %s, %s)", p.operation, opGenerate, opVerify)
	}
	return p, nil
}

func (p *OAuthV2) parseGenerate(pe perr, x *xmlOAuthV2) error {
	if x.SupportedGrantTypes == nil || len(x.SupportedGrantTypes.GrantType) == 0 {
		return pe.elem("SupportedGrantTypes", "at least one <GrantType> is required (client_credentials)")
	}
	if len(x.SupportedGrantTypes.Unknown) > 0 {
		return pe.elem("SupportedGrantTypes", "unknown element <%s> (supported: GrantType)", x.SupportedGrantTypes.Unknown[0].XMLName.Local)
	}
	for _, g := range x.SupportedGrantTypes.GrantType {
		g = strings.TrimSpace(g)
		if g != "client_credentials" {
			return pe.elem("SupportedGrantTypes><GrantType", "%q is not supported (supported: client_credentials)", g)
		}
		p.grantTypes = append(p.grantTypes, g)
	}
	p.grantTypeRef = "request.formparam.grant_type"
	if x.GrantType != nil {
		p.grantTypeRef = strings.TrimSpace(*x.GrantType)
		if p.grantTypeRef == "" || strings.ContainsAny(p.grantTypeRef, "{} ") {
			return pe.elem("GrantType", "%q is not a variable name", p.grantTypeRef)
		}
	}
	p.scopeRef = "request.formparam.scope"
	if x.Scope != nil {
		p.scopeRef = strings.TrimSpace(*x.Scope)
		if p.scopeRef == "" || strings.ContainsAny(p.scopeRef, "{} ") {
			return pe.elem("Scope", "%q is not a variable name (for GenerateAccessToken, Scope names the variable with the requested scope)", p.scopeRef)
		}
	}
	p.expiresIn = time.Hour.Milliseconds()
	if x.ExpiresIn != nil {
		if err := pe.checkRef("ExpiresIn", x.ExpiresIn, "ref"); err != nil {
			return err
		}
		p.expiresInRef = strings.TrimSpace(x.ExpiresIn.Ref)
		if t := strings.TrimSpace(x.ExpiresIn.Text); t != "" {
			n, err := parseInt64(t)
			if err != nil || (n <= 0 && n != -1) {
				return pe.elem("ExpiresIn", "%q is not a positive number of milliseconds (or -1 for never)", t)
			}
			p.expiresIn = n
		} else if p.expiresInRef == "" {
			return pe.elem("ExpiresIn", "a value or a ref is required")
		}
	}
	p.respond = true
	if g := x.GenerateResponse; g != nil {
		for _, a := range g.UnknownAttrs {
			return pe.elem("GenerateResponse", "unknown attribute %s (supported: enabled)", a.Name.Local)
		}
		if g.Enabled != "" {
			b, ok := parseBool(g.Enabled)
			if !ok {
				return pe.elem("GenerateResponse", "enabled %q is not true or false", g.Enabled)
			}
			p.respond = b
		}
	}
	return nil
}

// Name returns the policy's name.
func (p *OAuthV2) Name() string { return p.name }

// Kind returns "OAuthV2".
func (p *OAuthV2) Kind() string { return "OAuthV2" }

// Operation returns GenerateAccessToken or VerifyAccessToken.
func (p *OAuthV2) Operation() string { return p.operation }

// Apply runs the operation.
func (p *OAuthV2) Apply(ctx context.Context, m *Message) (*Fault, error) {
	if p.operation == opGenerate {
		return p.generate(ctx, m)
	}
	return p.verify(ctx, m)
}

func (p *OAuthV2) verify(ctx context.Context, m *Message) (*Fault, error) {
	var tok string
	if p.tokenRef != "" {
		tok, _ = Lookup(p.tokenRef, m)
	} else if m.Header != nil {
		scheme, rest, ok := strings.Cut(strings.TrimSpace(m.Header.Get("Authorization")), " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			tok = rest
		}
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return faultTokenMissing.fault(), nil
	}
	if p.env.Store == nil {
		return nil, fmt.Errorf("OAuthV2 %q: %w", p.name, errNoStore)
	}
	t, err := p.env.Store.GetToken(ctx, tok)
	if errors.Is(err, state.ErrNotFound) {
		return faultTokenInvalid.fault(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("OAuthV2 %q: %w", p.name, err)
	}
	now := p.env.now(m)
	if !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt) {
		return faultTokenExpired.fault(), nil
	}
	c, err := p.env.Store.Consumer(ctx, t.ConsumerKey)
	if errors.Is(err, state.ErrNotFound) {
		return faultTokenInvalid.fault(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("OAuthV2 %q: %w", p.name, err)
	}
	if credentialCheck(c, now) != nil {
		return faultTokenNotApproved.fault(), nil
	}
	g, ok := authorize(approvedProducts(c), requestOf(m, p.env.APISource))
	if !ok {
		return faultTokenNoProduct.fault(), nil
	}
	for _, s := range p.scopes {
		if !slices.Contains(t.Scopes, s) {
			return faultInsufficientScope.fault(strings.Join(p.scopes, " ")), nil
		}
	}
	tier, err := ParseTier(productAttributes(g))
	if err != nil {
		return nil, fmt.Errorf("OAuthV2 %q: product %q: %w", p.name, g.product.Name, err)
	}
	if f := tier.check(g.product.Name, m.Path, m.Body); f != nil {
		return f, nil
	}
	v := m.vars()
	setConsumerVars(v, "", c, g)
	v.Set("scope", strings.Join(t.Scopes, " "))
	v.Set("issued_at", strconv.FormatInt(t.IssuedAt.UnixMilli(), 10))
	if t.ExpiresAt.IsZero() {
		v.Set("expires_in", "-1")
	} else {
		v.Set("expires_in", strconv.FormatInt(int64(t.ExpiresAt.Sub(now)/time.Second), 10))
	}
	v.Set("token_type", "BearerToken")
	v.Set("grant_type", "client_credentials")
	v.Set("organization_name", p.env.Org)
	v.Set(VarCredentialHeader, "authorization")
	return nil, nil
}

func (p *OAuthV2) generate(ctx context.Context, m *Message) (*Fault, error) {
	gt, ok := Lookup(p.grantTypeRef, m)
	if !ok && p.grantTypeRef == "request.formparam.grant_type" {
		gt, ok = Lookup("request.queryparam.grant_type", m)
	}
	gt = strings.TrimSpace(gt)
	if !ok || gt == "" {
		return faultGrantTypeMissing.fault(), nil
	}
	if !slices.Contains(p.grantTypes, gt) {
		return faultUnsupportedGrantType.fault(gt), nil
	}
	id, secret, ok := clientCredentials(m)
	if !ok {
		return faultClientMissing.fault(), nil
	}
	if p.env.Store == nil {
		return nil, fmt.Errorf("OAuthV2 %q: %w", p.name, errNoStore)
	}
	c, err := p.env.Store.Consumer(ctx, id)
	if errors.Is(err, state.ErrNotFound) {
		return faultClientInvalid.fault(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("OAuthV2 %q: %w", p.name, err)
	}
	now := p.env.now(m)
	if subtle.ConstantTimeCompare([]byte(secret), []byte(c.Credential.ConsumerSecret)) != 1 ||
		c.Credential.ConsumerSecret == "" || credentialCheck(c, now) != nil {
		return faultClientInvalid.fault(), nil
	}
	products := approvedProducts(c)
	allowed := slices.Clone(c.Credential.Scopes)
	var names []string
	for _, pr := range products {
		allowed = append(allowed, pr.Scopes...)
		names = append(names, pr.Name)
	}
	slices.Sort(allowed)
	allowed = slices.Compact(allowed)
	granted := allowed
	if s, ok := Lookup(p.scopeRef, m); ok && strings.TrimSpace(s) != "" {
		granted = nil
		for _, sc := range strings.Fields(s) {
			if !slices.Contains(allowed, sc) {
				return faultInvalidScope.fault(sc), nil
			}
			if !slices.Contains(granted, sc) {
				granted = append(granted, sc)
			}
		}
	}
	expiresIn := p.expiresIn
	if p.expiresInRef != "" {
		if s, ok := Lookup(p.expiresInRef, m); ok {
			if n, err := parseInt64(s); err == nil && (n > 0 || n == -1) {
				expiresIn = n
			}
		}
	}
	value, err := randomToken(p.env.Rand, 32)
	if err != nil {
		return nil, fmt.Errorf("OAuthV2 %q: %w", p.name, err)
	}
	t := state.Token{AccessToken: value, ConsumerKey: id, Scopes: granted, IssuedAt: now}
	expiresInSec := "-1"
	if expiresIn > 0 {
		t.ExpiresAt = now.Add(time.Duration(expiresIn) * time.Millisecond)
		expiresInSec = strconv.FormatInt(expiresIn/1000, 10)
	}
	if err := p.env.Store.PutToken(ctx, t); err != nil {
		return nil, fmt.Errorf("OAuthV2 %q: %w", p.name, err)
	}
	ans := apigeeapi.AccessToken{
		AccessToken:        value,
		TokenType:          "BearerToken",
		ExpiresIn:          expiresInSec,
		IssuedAt:           strconv.FormatInt(now.UnixMilli(), 10),
		ClientID:           id,
		ApplicationName:    c.App.Name,
		Scope:              strings.Join(granted, " "),
		Status:             "approved",
		APIProductList:     "[" + strings.Join(names, ", ") + "]",
		APIProductListJSON: names,
		DeveloperEmail:     c.Developer.Email,
		OrganizationName:   p.env.Org,
	}
	v := m.vars()
	pre := "oauthv2accesstoken." + p.name + "."
	v.Set(pre+"client_id", id)
	v.Set(pre+"expires_in", ans.ExpiresIn)
	v.Set(pre+"issued_at", ans.IssuedAt)
	v.Set(pre+"scope", ans.Scope)
	v.Set(pre+"token_type", ans.TokenType)
	if !p.respond {
		// Without a generated response the token is only in the flow.
		v.Set(pre+"access_token", value)
		return nil, nil
	}
	body, err := json.Marshal(ans)
	if err != nil {
		return nil, fmt.Errorf("OAuthV2 %q: %w", p.name, err)
	}
	m.Answer = &Answer{
		Status: http.StatusOK,
		Header: http.Header{"Content-Type": {"application/json"}, "Cache-Control": {"no-store"}},
		Body:   body,
	}
	return nil, nil
}

// clientCredentials reads HTTP Basic credentials, else the form fields.
func clientCredentials(m *Message) (id, secret string, ok bool) {
	if m.Header != nil {
		scheme, rest, found := strings.Cut(strings.TrimSpace(m.Header.Get("Authorization")), " ")
		if found && strings.EqualFold(scheme, "Basic") {
			raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
			if err != nil {
				return "", "", false
			}
			id, secret, found = strings.Cut(string(raw), ":")
			return id, secret, found && id != ""
		}
	}
	id, _ = Lookup("request.formparam.client_id", m)
	secret, _ = Lookup("request.formparam.client_secret", m)
	return id, secret, id != ""
}

const tokenAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomToken returns n characters of tokenAlphabet, uniformly.
func randomToken(r io.Reader, n int) (string, error) {
	out := make([]byte, 0, n)
	buf := make([]byte, n*2)
	for len(out) < n {
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", fmt.Errorf("token randomness: %w", err)
		}
		for _, b := range buf {
			// 248 = 4 × 62: reject the tail so every character is equally likely.
			if b < 248 && len(out) < n {
				out = append(out, tokenAlphabet[int(b)%len(tokenAlphabet)])
			}
		}
	}
	return string(out), nil
}
