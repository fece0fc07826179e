package policy

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// jwtKeys are generated once per test binary: RSA generation is slow.
var jwtKeys = sync.OnceValues(func() (*rsa.PrivateKey, *ecdsa.PrivateKey) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return rk, ek
})

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// signJWT signs claims with key (an *rsa.PrivateKey or *ecdsa.PrivateKey).
func signJWT(t testing.TB, key crypto.Signer, alg, kid string, claims map[string]any) string {
	t.Helper()
	hdr := map[string]any{"alg": alg, "typ": "JWT"}
	if kid != "" {
		hdr["kid"] = kid
	}
	h, err := json.Marshal(hdr)
	require.NoError(t, err)
	c, err := json.Marshal(claims)
	require.NoError(t, err)
	input := b64url(h) + "." + b64url(c)
	sum := sha256.Sum256([]byte(input))
	var sig []byte
	switch k := key.(type) {
	case *rsa.PrivateKey:
		sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
		require.NoError(t, err)
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, k, sum[:])
		require.NoError(t, err)
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	}
	return input + "." + b64url(sig)
}

func jwksJSON(rk *rsa.PublicKey, ek *ecdsa.PublicKey) string {
	ecBytes, _ := ek.Bytes() // 0x04 || X || Y
	keys := []map[string]string{
		{"kty": "RSA", "kid": "rsa-1", "alg": "RS256", "use": "sig", "n": b64url(rk.N.Bytes()), "e": b64url(big.NewInt(int64(rk.E)).Bytes())},
		{"kty": "EC", "kid": "ec-1", "crv": "P-256", "x": b64url(ecBytes[1:33]), "y": b64url(ecBytes[33:])},
		{"kty": "OKP", "kid": "ed-1", "crv": "Ed25519", "x": "AAAA"}, // skipped
	}
	b, _ := json.Marshal(map[string]any{"keys": keys})
	return string(b)
}

func jwksServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	rk, ek := jwtKeys()
	var hits atomic.Int64
	body := jwksJSON(&rk.PublicKey, &ek.PublicKey)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func TestVerifyJWT(t *testing.T) {
	t.Parallel()
	rk, ek := jwtKeys()
	srv, _ := jwksServer(t)
	f := newFixture(t)
	f.env.HTTPClient = srv.Client()
	policy := func(alg string) Policy {
		return f.parse(t, `<VerifyJWT name="JWT-Verify"><Algorithm>`+alg+`</Algorithm>
		  <PublicKey><JWKS uri="`+srv.URL+`/jwks.json"/></PublicKey>
		  <Issuer>https://issuer.example</Issuer><Audience>inference</Audience><Subject>svc-1</Subject><TimeAllowance>30s</TimeAllowance></VerifyJWT>`)
	}
	rs, es := policy("RS256"), policy("ES256")
	now := t0.Unix()
	good := func() map[string]any {
		return map[string]any{"iss": "https://issuer.example", "aud": []string{"other", "inference"}, "sub": "svc-1",
			"exp": now + 60, "nbf": now - 10, "iat": now - 10, "scope": "chat", "roles": []string{"a", "b"}, "org": map[string]any{"id": 7}}
	}
	with := func(k string, v any) map[string]any {
		c := good()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	otherRSA, err := rsa.GenerateKey(rand.Reader, 1024) //nolint:gosec // only to make a wrong signature
	require.NoError(t, err)
	const pname = "policy(JWT-Verify)"
	for _, tc := range []struct {
		name  string
		p     Policy
		token string
		code  string
		fault string
	}{
		{"rs256 ok", rs, signJWT(t, rk, "RS256", "rsa-1", good()), "", ""},
		{"es256 ok", es, signJWT(t, ek, "ES256", "ec-1", good()), "", ""},
		{"no exp, nbf, iat is fine", rs, signJWT(t, rk, "RS256", "rsa-1", with("exp", nil)), "", ""},
		{"expired within allowance", rs, signJWT(t, rk, "RS256", "rsa-1", with("exp", now-29)), "", ""},
		{"expired", rs, signJWT(t, rk, "RS256", "rsa-1", with("exp", now-30)), "steps.jwt.TokenExpired", "The Token has expired: " + pname},
		{"not yet valid", rs, signJWT(t, rk, "RS256", "rsa-1", with("nbf", now+31)), "steps.jwt.TokenNotYetValid", "The Token is not yet valid: " + pname},
		{"issued in the future", rs, signJWT(t, rk, "RS256", "rsa-1", with("iat", now+3600)), "steps.jwt.TokenNotYetValid", "The Token is not yet valid: " + pname},
		{"issuer", rs, signJWT(t, rk, "RS256", "rsa-1", with("iss", "https://evil.example")), "steps.jwt.JwtIssuerMismatch", "Issuer mismatch: " + pname},
		{"audience", rs, signJWT(t, rk, "RS256", "rsa-1", with("aud", "other")), "steps.jwt.JwtAudienceMismatch", "Audience mismatch: " + pname},
		{"subject", es, signJWT(t, ek, "ES256", "ec-1", with("sub", "svc-2")), "steps.jwt.JwtSubjectMismatch", "Subject mismatch: " + pname},
		{"bad signature", rs, signJWT(t, otherRSA, "RS256", "rsa-1", good()), "steps.jwt.InvalidToken", "Invalid Token: " + pname},
		{"tampered payload", rs, tamper(signJWT(t, rk, "RS256", "rsa-1", good())), "steps.jwt.InvalidToken", "Invalid Token: " + pname},
		{"kid names the other key type", rs, signJWT(t, rk, "RS256", "ec-1", good()), "steps.jwt.InvalidToken", "Invalid Token: " + pname},
		{"unknown kid", rs, signJWT(t, rk, "RS256", "rsa-9", good()), "steps.jwt.NoMatchingPublicKey", "No matching public key: " + pname},
		{"no kid", rs, signJWT(t, rk, "RS256", "", good()), "steps.jwt.KeyIdMissing", "No key id (kid) in the token header: " + pname},
		{"algorithm mismatch", es, signJWT(t, rk, "RS256", "rsa-1", good()), "steps.jwt.AlgorithmMismatch", "Algorithm mismatch: " + pname},
		{"none algorithm", rs, b64url([]byte(`{"alg":"none"}`)) + "." + b64url([]byte(`{}`)) + ".", "steps.jwt.AlgorithmMismatch", "Algorithm mismatch: " + pname},
		{"no algorithm", rs, b64url([]byte(`{"typ":"JWT"}`)) + "." + b64url([]byte(`{}`)) + ".c2ln", "steps.jwt.NoAlgorithmFoundInHeader", "No algorithm found in header: " + pname},
		{"not JSON", rs, b64url([]byte(`{"alg":`)) + "." + b64url([]byte(`{}`)) + ".c2ln", "steps.jwt.InvalidJsonFormat", "Invalid JSON format: " + pname},
		{"string exp", rs, signJWT(t, rk, "RS256", "rsa-1", with("exp", "tomorrow")), "steps.jwt.FailedToDecode", "Failed to Decode Token: " + pname},
		{"two parts", rs, "abc.def", "steps.jwt.FailedToDecode", "Failed to Decode Token: " + pname},
		{"bad base64", rs, "a$c.def.ghi", "steps.jwt.FailedToDecode", "Failed to Decode Token: " + pname},
		{"missing", rs, "", "steps.jwt.FailedToResolveVariable", "Failed to Resolve Variable : policy(JWT-Verify) variable(request.header.authorization)"},
	} {
		var hdr []string
		if tc.token != "" {
			hdr = []string{"Authorization", "Bearer " + tc.token}
		}
		m := f.msg("GET", "/v1/models", "", hdr...)
		fault := apply(t, tc.p, m)
		if tc.code == "" {
			require.Nil(t, fault, tc.name)
			require.Equal(t, "true", varOf(m, "jwt.JWT-Verify.valid"), tc.name)
			continue
		}
		requireFault(t, fault, 401, tc.code, tc.fault)
		require.Equal(t, "false", varOf(m, "jwt.JWT-Verify.valid"), tc.name)
		require.Equal(t, "true", varOf(m, "JWT.failed"), tc.name)
	}

	m := f.msg("GET", "/v1/models", "", "Authorization", "Bearer "+signJWT(t, rk, "RS256", "rsa-1", good()))
	require.Nil(t, apply(t, rs, m))
	for name, want := range map[string]string{
		"jwt.JWT-Verify.decoded.claim.scope": "chat",
		"jwt.JWT-Verify.decoded.claim.roles": "a,b",
		"jwt.JWT-Verify.decoded.claim.org":   `{"id":7}`,
		"jwt.JWT-Verify.decoded.claim.exp":   itoa(now + 60),
		"jwt.JWT-Verify.decoded.header.kid":  "rsa-1",
		"jwt.JWT-Verify.claim.issuer":        "https://issuer.example",
		"jwt.JWT-Verify.claim.subject":       "svc-1",
		"jwt.JWT-Verify.claim.audience":      "other,inference",
		"jwt.JWT-Verify.claim.expiry":        itoa(now + 60),
		"jwt.JWT-Verify.claim.names":         "aud,exp,iat,iss,nbf,org,roles,scope,sub",
		"jwt.JWT-Verify.header.algorithm":    "RS256",
	} {
		require.Equal(t, want, varOf(m, name), name)
	}
}

func itoa(n int64) string { return big.NewInt(n).String() }

// tamper changes a claim without re-signing.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	parts[1] = b64url([]byte(`{"iss":"https://issuer.example","aud":"inference","sub":"svc-1","admin":true}`))
	return strings.Join(parts, ".")
}

func TestVerifyJWTKeySources(t *testing.T) {
	t.Parallel()
	rk, ek := jwtKeys()
	f := newFixture(t)
	claims := map[string]any{"sub": "x"}

	der, err := x509.MarshalPKIXPublicKey(&rk.PublicKey)
	require.NoError(t, err)
	pemText := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	pemPolicy := f.parse(t, `<VerifyJWT name="P"><Algorithm>RS256</Algorithm><PublicKey><Value>`+pemText+`</Value></PublicKey>
	  <Source>request.header.x-jwt</Source></VerifyJWT>`)
	require.Nil(t, apply(t, pemPolicy, f.msg("GET", "/", "", "x-jwt", signJWT(t, rk, "RS256", "", claims))), "a PEM key needs no kid")
	requireFault(t, apply(t, pemPolicy, f.msg("GET", "/", "")), 401, "steps.jwt.FailedToResolveVariable",
		"Failed to Resolve Variable : policy(P) variable(request.header.x-jwt)")

	_, err = Parse([]byte(`<VerifyJWT name="P"><Algorithm>ES256</Algorithm><PublicKey><Value>`+pemText+`</Value></PublicKey></VerifyJWT>`), Env{})
	require.EqualError(t, err, `VerifyJWT "P": <PublicKey><Value>: the key does not fit ES256`)

	inline := f.parse(t, `<VerifyJWT name="I"><Algorithm>ES256</Algorithm><PublicKey><JWKS>`+jwksJSON(&rk.PublicKey, &ek.PublicKey)+`</JWKS></PublicKey></VerifyJWT>`)
	require.Nil(t, apply(t, inline, f.msg("GET", "/", "", "Authorization", "Bearer "+signJWT(t, ek, "ES256", "ec-1", claims))))
	requireFault(t, apply(t, inline, f.msg("GET", "/", "", "Authorization", "Bearer "+signJWT(t, ek, "ES256", "ec-2", claims))),
		401, "steps.jwt.NoMatchingPublicKey", "No matching public key: policy(I)")
}

func TestVerifyJWTCache(t *testing.T) {
	t.Parallel()
	rk, _ := jwtKeys()
	srv, hits := jwksServer(t)
	f := newFixture(t)
	f.env.HTTPClient = srv.Client()
	p := f.parse(t, `<VerifyJWT name="C"><Algorithm>RS256</Algorithm><PublicKey><JWKS uri="`+srv.URL+`"/></PublicKey></VerifyJWT>`)
	call := func(kid string) *Fault {
		m := f.msg("GET", "/", "", "Authorization", "Bearer "+signJWT(t, rk, "RS256", kid, map[string]any{}))
		return apply(t, p, m)
	}
	require.Nil(t, call("rsa-1"))
	require.Nil(t, call("rsa-1"))
	require.EqualValues(t, 1, hits.Load(), "cached")
	require.NotNil(t, call("rsa-new"))
	require.EqualValues(t, 1, hits.Load(), "an unknown kid right after a fetch does not refetch")
	f.clock.Advance(JWKSRefetchInterval)
	require.NotNil(t, call("rsa-new"))
	require.EqualValues(t, 2, hits.Load(), "an unknown kid refetches once the refetch interval passed")
	f.clock.Advance(JWKSCacheTTL)
	require.Nil(t, call("rsa-1"))
	require.EqualValues(t, 3, hits.Load(), "the cache expired")

	// The issuer going away keeps the last good set.
	srv.Close()
	f.clock.Advance(JWKSCacheTTL)
	require.Nil(t, call("rsa-1"))

	// With no set ever fetched, an unreachable JWKS is a runtime error.
	dead := f.parse(t, `<VerifyJWT name="D"><Algorithm>RS256</Algorithm><PublicKey><JWKS uri="`+srv.URL+`"/></PublicKey></VerifyJWT>`)
	_, err := dead.Apply(t.Context(), f.msg("GET", "/", "", "Authorization", "Bearer "+signJWT(t, rk, "RS256", "rsa-1", map[string]any{})))
	require.ErrorContains(t, err, `VerifyJWT "D": JWKS `+srv.URL)
}
