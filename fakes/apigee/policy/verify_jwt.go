package policy

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// VerifyJWT verifies a signed JWT (RS256 or ES256) against a public key: a
// JWKS fetched from a URI (cached for JWKSCacheTTL; an unknown kid refetches
// it, at most every JWKSRefetchInterval), an inline JWKS, or a PEM <Value>.
// With a JWKS the token must name its key (kid). Then exp, nbf and iat are
// checked against the clock with TimeAllowance of slack, and Issuer,
// Audience and Subject when configured. The token is Source's value
// (default request.header.authorization), a "Bearer " prefix removed.
type VerifyJWT struct {
	name      string
	alg       string
	keys      *keySource
	issuer    string
	audience  string
	subject   string
	allowance time.Duration
	source    string
	env       Env
}

// JWKSCacheTTL is how long a fetched JWKS is used before it is fetched
// again.
const JWKSCacheTTL = 5 * time.Minute

// JWKSRefetchInterval is how often a token with a kid the cached JWKS lacks
// may cause a refetch (keys rotate; a flood of bad kids must not hammer the
// issuer).
const JWKSRefetchInterval = 30 * time.Second

const (
	maxJWKSBytes         = 1 << 20
	defaultJWTSource     = "request.header.authorization"
	supportedAlgorithms  = "RS256, ES256"
	jwtTimeAllowanceHelp = "a duration like 30s, 5m, 1h, or milliseconds"
)

type xmlVerifyJWT struct {
	xmlCommon
	Algorithm *string `xml:"Algorithm"`
	PublicKey *struct {
		JWKS *struct {
			URI          string     `xml:"uri,attr"`
			Ref          string     `xml:"ref,attr"`
			Text         string     `xml:",chardata"`
			UnknownAttrs []xml.Attr `xml:",any,attr"`
		} `xml:"JWKS"`
		Value *struct {
			Ref  string `xml:"ref,attr"`
			Text string `xml:",chardata"`
		} `xml:"Value"`
		Unknown []xmlAny `xml:",any"`
	} `xml:"PublicKey"`
	Issuer                    *string `xml:"Issuer"`
	Audience                  *string `xml:"Audience"`
	Subject                   *string `xml:"Subject"`
	TimeAllowance             *string `xml:"TimeAllowance"`
	Source                    *string `xml:"Source"`
	IgnoreUnresolvedVariables *string `xml:"IgnoreUnresolvedVariables"`
}

func parseVerifyJWT(data []byte, env Env) (Policy, error) {
	var x xmlVerifyJWT
	pe, err := decodePolicy("VerifyJWT", data, &x, &x.xmlCommon, []string{"Algorithm", "PublicKey", "Issuer",
		"Audience", "Subject", "TimeAllowance", "Source", "IgnoreUnresolvedVariables"}, nil)
	if err != nil {
		return nil, err
	}
	p := &VerifyJWT{name: x.Name, env: env, source: defaultJWTSource}
	if x.Algorithm == nil {
		return nil, pe.elem("Algorithm", "required (%s)", supportedAlgorithms)
	}
	p.alg = strings.TrimSpace(*x.Algorithm)
	if p.alg != "RS256" && p.alg != "ES256" {
		return nil, pe.elem("Algorithm", "%q is not supported (supported: %s)", p.alg, supportedAlgorithms)
	}
	if p.keys, err = parseKeySource(pe, &x, p.alg); err != nil {
		return nil, err
	}
	for _, c := range []struct {
		elem string
		v    *string
		dst  *string
	}{{"Issuer", x.Issuer, &p.issuer}, {"Audience", x.Audience, &p.audience}, {"Subject", x.Subject, &p.subject}} {
		if c.v != nil {
			*c.dst = strings.TrimSpace(*c.v)
			if *c.dst == "" {
				return nil, pe.elem(c.elem, "empty")
			}
		}
	}
	if x.TimeAllowance != nil {
		d, ok := parseAllowance(*x.TimeAllowance)
		if !ok {
			return nil, pe.elem("TimeAllowance", "%q is not %s", strings.TrimSpace(*x.TimeAllowance), jwtTimeAllowanceHelp)
		}
		p.allowance = d
	}
	if x.Source != nil {
		p.source = strings.TrimSpace(*x.Source)
		if p.source == "" || strings.ContainsAny(p.source, "{} ") {
			return nil, pe.elem("Source", "%q is not a variable name", p.source)
		}
	}
	if _, err := pe.optBool("IgnoreUnresolvedVariables", x.IgnoreUnresolvedVariables); err != nil {
		return nil, err
	}
	return p, nil
}

func parseKeySource(pe perr, x *xmlVerifyJWT, alg string) (*keySource, error) {
	pk := x.PublicKey
	if pk == nil {
		return nil, pe.elem("PublicKey", "required (<JWKS uri=\"...\"/>, <JWKS>{...}</JWKS> or <Value>PEM</Value>)")
	}
	if len(pk.Unknown) > 0 {
		return nil, pe.elem("PublicKey", "unknown or unsupported element <%s> (supported: JWKS, Value)", pk.Unknown[0].XMLName.Local)
	}
	if (pk.JWKS == nil) == (pk.Value == nil) {
		return nil, pe.elem("PublicKey", "exactly one of <JWKS> and <Value> is required")
	}
	ks := &keySource{alg: alg}
	if v := pk.Value; v != nil {
		if v.Ref != "" {
			return nil, pe.elem("PublicKey><Value", "ref is not supported; put the PEM in the element")
		}
		key, err := parsePEMKey(strings.TrimSpace(v.Text), alg)
		if err != nil {
			return nil, pe.elem("PublicKey><Value", "%v", err)
		}
		ks.pem = key
		return ks, nil
	}
	j := pk.JWKS
	for _, a := range j.UnknownAttrs {
		return nil, pe.elem("PublicKey><JWKS", "unknown attribute %s (supported: uri)", a.Name.Local)
	}
	if j.Ref != "" {
		return nil, pe.elem("PublicKey><JWKS", "ref is not supported; use uri or inline JSON")
	}
	text := strings.TrimSpace(j.Text)
	uri := strings.TrimSpace(j.URI)
	switch {
	case uri != "" && text != "":
		return nil, pe.elem("PublicKey><JWKS", "give a uri or inline JSON, not both")
	case uri != "":
		u, err := url.Parse(uri)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, pe.elem("PublicKey><JWKS", "uri %q is not an http(s) URL", uri)
		}
		ks.uri = uri
	case text != "":
		keys, err := parseJWKS([]byte(text))
		if err != nil {
			return nil, pe.elem("PublicKey><JWKS", "%v", err)
		}
		ks.static = keys
	default:
		return nil, pe.elem("PublicKey><JWKS", "a uri attribute or inline JSON is required")
	}
	return ks, nil
}

// parseAllowance reads "30s", "5m", "1h", "2d", "500ms" or plain
// milliseconds.
func parseAllowance(s string) (time.Duration, bool) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return scaleAllowance(n, time.Millisecond)
	}
	for _, u := range []struct {
		suffix string
		d      time.Duration
	}{{"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}, {"d", 24 * time.Hour}} {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			n, err := strconv.ParseInt(num, 10, 64)
			if err != nil {
				return 0, false
			}
			return scaleAllowance(n, u.d)
		}
	}
	return 0, false
}

// scaleAllowance is n units, refused when negative or beyond what a
// time.Duration holds (about 292 years), so a huge allowance is an error and
// never wraps around into a negative one.
func scaleAllowance(n int64, unit time.Duration) (time.Duration, bool) {
	if n < 0 || n > int64(math.MaxInt64/unit) {
		return 0, false
	}
	return time.Duration(n) * unit, true
}

// keySource is where VerifyJWT finds public keys.
type keySource struct {
	alg    string
	pem    crypto.PublicKey
	static []jwk
	uri    string

	mu        sync.Mutex
	cached    []jwk
	fetchedAt time.Time
}

type jwk struct {
	kid string
	key crypto.PublicKey
}

// parseJWKS reads the RSA and P-256 EC keys of a JWKS; keys of other types
// are skipped.
func parseJWKS(data []byte) ([]jwk, error) {
	var set struct {
		Keys []struct {
			Kty string `json:"kty"`
			Kid string `json:"kid"`
			Crv string `json:"crv"`
			N   string `json:"n"`
			E   string `json:"e"`
			X   string `json:"x"`
			Y   string `json:"y"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("not a JWKS: %v", err)
	}
	var keys []jwk
	for i, k := range set.Keys {
		switch k.Kty {
		case "RSA":
			n, err1 := b64(k.N)
			e, err2 := b64(k.E)
			if err1 != nil || err2 != nil || len(n) == 0 || len(e) == 0 || len(e) > 8 {
				return nil, fmt.Errorf("key %d (kid %q): bad RSA n or e", i, k.Kid)
			}
			exp := new(big.Int).SetBytes(e)
			if !exp.IsInt64() || exp.Int64() < 3 || exp.Int64() > 1<<31-1 {
				return nil, fmt.Errorf("key %d (kid %q): bad RSA exponent", i, k.Kid)
			}
			keys = append(keys, jwk{kid: k.Kid, key: &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp.Int64())}})
		case "EC":
			if k.Crv != "P-256" {
				continue
			}
			x, err1 := b64(k.X)
			y, err2 := b64(k.Y)
			if err1 != nil || err2 != nil || len(x) != 32 || len(y) != 32 {
				return nil, fmt.Errorf("key %d (kid %q): bad EC x or y", i, k.Kid)
			}
			pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
			if err != nil {
				return nil, fmt.Errorf("key %d (kid %q): %v", i, k.Kid, err)
			}
			keys = append(keys, jwk{kid: k.Kid, key: pub})
		}
	}
	return keys, nil
}

func parsePEMKey(text, alg string) (crypto.PublicKey, error) {
	block, _ := pem.Decode([]byte(text))
	if block == nil {
		return nil, errors.New("not a PEM public key")
	}
	var key crypto.PublicKey
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a public key", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("PEM public key: %v", err)
	}
	if !keyFits(key, alg) {
		return nil, fmt.Errorf("the key does not fit %s", alg)
	}
	return key, nil
}

func keyFits(key crypto.PublicKey, alg string) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return alg == "RS256"
	case *ecdsa.PublicKey:
		return alg == "ES256" && k.Curve == elliptic.P256()
	}
	return false
}

func b64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// lookup finds the key for kid. needKid is false for a PEM key.
func (ks *keySource) lookup(ctx context.Context, env Env, kid string, now time.Time) (crypto.PublicKey, error) {
	if ks.pem != nil {
		return ks.pem, nil
	}
	if ks.uri == "" {
		return findKid(ks.static, kid), nil
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	fresh := !ks.fetchedAt.IsZero() && now.Sub(ks.fetchedAt) < JWKSCacheTTL
	if fresh {
		if k := findKid(ks.cached, kid); k != nil || now.Sub(ks.fetchedAt) < JWKSRefetchInterval {
			return k, nil
		}
	}
	keys, err := fetchJWKS(ctx, env.HTTPClient, ks.uri)
	if err != nil {
		if ks.cached != nil {
			// Keep serving the last good set while the issuer is away.
			return findKid(ks.cached, kid), nil
		}
		return nil, err
	}
	ks.cached, ks.fetchedAt = keys, now
	return findKid(keys, kid), nil
}

func findKid(keys []jwk, kid string) crypto.PublicKey {
	for _, k := range keys {
		if k.kid == kid {
			return k.key
		}
	}
	return nil
}

func fetchJWKS(ctx context.Context, client *http.Client, uri string) ([]jwk, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, fmt.Errorf("JWKS %s: %w", uri, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("JWKS %s: %w", uri, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("JWKS %s: status %s", uri, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("JWKS %s: %w", uri, err)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("JWKS %s: larger than %d bytes", uri, maxJWKSBytes)
	}
	keys, err := parseJWKS(body)
	if err != nil {
		return nil, fmt.Errorf("JWKS %s: %w", uri, err)
	}
	return keys, nil
}

// Name returns the policy's name.
func (p *VerifyJWT) Name() string { return p.name }

// Kind returns "VerifyJWT".
func (p *VerifyJWT) Kind() string { return "VerifyJWT" }

// Apply verifies the token. On success it sets jwt.{name}.valid=true,
// jwt.{name}.decoded.claim.{claim} and jwt.{name}.decoded.header.{name} for
// every claim and header (strings as is, arrays comma-joined, objects as
// JSON), jwt.{name}.claim.issuer, .subject, .audience, .expiry,
// .issuedat, .notbefore, jwt.{name}.header.algorithm, .kid, and
// jwt.{name}.payload-json. On a fault it sets jwt.{name}.valid=false,
// jwt.{name}.error and JWT.failed=true.
func (p *VerifyJWT) Apply(ctx context.Context, m *Message) (*Fault, error) {
	f, err := p.verify(ctx, m)
	if f != nil {
		v := m.vars()
		v.Set("jwt."+p.name+".valid", "false")
		v.Set("jwt."+p.name+".error", f.FaultString)
		v.Set("JWT.failed", "true")
	}
	return f, err
}

func (p *VerifyJWT) verify(ctx context.Context, m *Message) (*Fault, error) {
	raw, ok := Lookup(p.source, m)
	raw = strings.TrimSpace(raw)
	if scheme, rest, found := strings.Cut(raw, " "); found && strings.EqualFold(scheme, "Bearer") {
		raw = strings.TrimSpace(rest)
	}
	if !ok || raw == "" {
		return faultJWTMissing.fault(p.name, p.source), nil
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return faultJWTDecode.fault(p.name), nil
	}
	hdrJSON, err1 := b64(parts[0])
	payJSON, err2 := b64(parts[1])
	sig, err3 := b64(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return faultJWTDecode.fault(p.name), nil
	}
	var hdr struct {
		Alg *string `json:"alg"`
		Kid string  `json:"kid"`
	}
	header, err := decodeJSONObject(hdrJSON)
	if err != nil || json.Unmarshal(hdrJSON, &hdr) != nil {
		return faultJWTJSON.fault(p.name), nil
	}
	claims, err := decodeJSONObject(payJSON)
	if err != nil {
		return faultJWTJSON.fault(p.name), nil
	}
	if hdr.Alg == nil || *hdr.Alg == "" {
		return faultJWTNoAlgorithm.fault(p.name), nil
	}
	if *hdr.Alg != p.alg {
		return faultJWTAlgorithm.fault(p.name), nil
	}
	if p.keys.pem == nil && hdr.Kid == "" {
		return faultJWTKeyIDMissing.fault(p.name), nil
	}
	now := p.env.now(m)
	key, err := p.keys.lookup(ctx, p.env, hdr.Kid, now)
	if err != nil {
		return nil, fmt.Errorf("VerifyJWT %q: %w", p.name, err)
	}
	if key == nil {
		return faultJWTNoKey.fault(p.name), nil
	}
	if !verifySignature(key, p.alg, []byte(parts[0]+"."+parts[1]), sig) {
		return faultJWTSignature.fault(p.name), nil
	}
	exp, hasExp, ok1 := numericClaim(claims, "exp")
	nbf, hasNbf, ok2 := numericClaim(claims, "nbf")
	iat, hasIat, ok3 := numericClaim(claims, "iat")
	if !ok1 || !ok2 || !ok3 {
		// A time claim that is not a NumericDate: the token is malformed.
		return faultJWTDecode.fault(p.name), nil
	}
	if hasExp && !now.Before(exp.Add(p.allowance)) {
		return faultJWTExpired.fault(p.name), nil
	}
	if hasNbf && now.Add(p.allowance).Before(nbf) {
		return faultJWTNotYetValid.fault(p.name), nil
	}
	if hasIat && now.Add(p.allowance).Before(iat) {
		return faultJWTNotYetValid.fault(p.name), nil
	}
	if p.issuer != "" && stringClaim(claims, "iss") != p.issuer {
		return faultJWTIssuer.fault(p.name), nil
	}
	if p.audience != "" && !audienceHas(claims["aud"], p.audience) {
		return faultJWTAudience.fault(p.name), nil
	}
	if p.subject != "" && stringClaim(claims, "sub") != p.subject {
		return faultJWTSubject.fault(p.name), nil
	}

	v := m.vars()
	pre := "jwt." + p.name + "."
	for k, val := range claims {
		v.Set(pre+"decoded.claim."+k, claimString(val))
	}
	for k, val := range header {
		v.Set(pre+"decoded.header."+k, claimString(val))
	}
	v.Set(pre+"valid", "true")
	v.Set(pre+"claim.issuer", stringClaim(claims, "iss"))
	v.Set(pre+"claim.subject", stringClaim(claims, "sub"))
	v.Set(pre+"claim.audience", claimString(claims["aud"]))
	setTime := func(name string, t time.Time, ok bool) {
		if ok {
			v.Set(pre+"claim."+name, strconv.FormatInt(t.Unix(), 10))
		}
	}
	setTime("expiry", exp, hasExp)
	setTime("issuedat", iat, hasIat)
	setTime("notbefore", nbf, hasNbf)
	names := make([]string, 0, len(claims))
	for k := range claims {
		names = append(names, k)
	}
	sort.Strings(names)
	v.Set(pre+"claim.names", strings.Join(names, ","))
	v.Set(pre+"header.algorithm", p.alg)
	v.Set(pre+"header.kid", hdr.Kid)
	v.Set(pre+"payload-json", string(payJSON))
	return nil, nil
}

func decodeJSONObject(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, err
	}
	if obj == nil || dec.More() {
		return nil, errors.New("not one JSON object")
	}
	return obj, nil
}

func verifySignature(key crypto.PublicKey, alg string, input, sig []byte) bool {
	sum := sha256.Sum256(input)
	switch k := key.(type) {
	case *rsa.PublicKey:
		return alg == "RS256" && rsa.VerifyPKCS1v15(k, crypto.SHA256, sum[:], sig) == nil
	case *ecdsa.PublicKey:
		if alg != "ES256" || len(sig) != 64 {
			return false
		}
		r := new(big.Int).SetBytes(sig[:32])
		s := new(big.Int).SetBytes(sig[32:])
		return ecdsa.Verify(k, sum[:], r, s)
	}
	return false
}

// numericClaim reads a NumericDate claim (seconds, possibly fractional):
// its time, whether it is present, and whether it is valid when present.
func numericClaim(claims map[string]any, name string) (t time.Time, present, valid bool) {
	v, present := claims[name]
	if !present {
		return time.Time{}, false, true
	}
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, true, false
	}
	f, err := n.Float64()
	if err != nil || f > 1e15 || f < -1e15 {
		return time.Time{}, true, false
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), true, true
}

func stringClaim(claims map[string]any, name string) string {
	s, _ := claims[name].(string)
	return s
}

func audienceHas(aud any, want string) bool {
	switch a := aud.(type) {
	case string:
		return a == want
	case []any:
		for _, x := range a {
			if s, ok := x.(string); ok && s == want {
				return true
			}
		}
	}
	return false
}

// claimString renders a claim for a flow variable: strings as is, numbers
// as written, arrays comma-joined, objects as JSON.
func claimString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = claimString(e)
		}
		return strings.Join(parts, ",")
	}
	return jsonScalar(v)
}
