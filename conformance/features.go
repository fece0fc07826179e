package conformance

import (
	"fmt"
	"sort"
	"strings"
)

// FeatureName names one capability a target may claim. Scenarios name the
// features they exercise, never an implementation; a scenario runs only when
// the target claims every feature it names.
type FeatureName string

// ProfileName names a conformance profile: a group of core and extended features.
type ProfileName string

// The profiles.
const (
	ProfileAuthn     ProfileName = "AUTHN"
	ProfileAuthz     ProfileName = "AUTHZ"
	ProfileRateLimit ProfileName = "RATELIMIT"
	ProfileThreat    ProfileName = "THREAT"
	ProfileRouting   ProfileName = "ROUTING"
)

// Feature is one registered feature: its name, the profile it belongs to,
// whether every implementation must have it (core) or may (extended), and
// what it means.
type Feature struct {
	Name        FeatureName
	Profile     ProfileName
	Core        bool
	Description string
}

// Features is the registry, the single source the flags, the report and the
// README are made from.
var Features = []Feature{
	// AUTHN
	{"APIKeyAuthentication", ProfileAuthn, true, "requests without a valid API key in x-api-key are refused with Apigee's 401 faults"},
	{"APIKeyLifecycle", ProfileAuthn, true, "revoked, unapproved and expired keys, apps and developers stop working at once"},
	{"FailClosed", ProfileAuthn, true, "when the Apigee runtime is down or slower than its timeout, requests are refused (500/504), never let through"},
	{"APIKeyQueryParam", ProfileAuthn, false, "VerifyAPIKey reads the key from a query parameter"},
	{"OAuthClientCredentials", ProfileAuthn, false, "access tokens minted by /oauth/token (client_credentials) and checked by OAuthV2 VerifyAccessToken"},
	{"JWTVerification", ProfileAuthn, false, "VerifyJWT checks signature (RS256/ES256), iss, aud, exp and nbf"},
	{"IPAccessControl", ProfileAuthn, false, "AccessControl allows or denies client addresses"},
	{"DecisionTrace", ProfileAuthn, false, "every decision is traced with credentials redacted and can be looked up by x-gatecheck-trace-id"},
	// AUTHZ
	{"ProductOperations", ProfileAuthz, true, "a key works only for the operations (path and method) its products grant"},
	{"ProductModels", ProfileAuthz, true, "an AI product grants models: a key works only for the models its products grant"},
	{"IdentityHeaders", ProfileAuthz, true, "allowed requests reach the backend without the credential and with trusted x-apigee-* identity headers"},
	{"OAuthScopes", ProfileAuthz, false, "VerifyAccessToken refuses tokens that lack a required scope"},
	{"ProductTiers", ProfileAuthz, false, "product attributes gate model features: streaming, max_tokens, models, tools"},
	// RATELIMIT
	{"ProductQuota", ProfileRateLimit, true, "an operation set's quota stops an app's requests exactly at the limit and lets them through again in the next window"},
	{"QuotaCalendar", ProfileRateLimit, false, "Quota type calendar: windows aligned to StartTime"},
	{"QuotaRollingWindow", ProfileRateLimit, false, "Quota type rollingwindow: the count looks back one interval"},
	{"QuotaFlexi", ProfileRateLimit, false, "Quota type flexi: the window starts at the first request"},
	{"QuotaSharedCounter", ProfileRateLimit, false, "EnforceOnly and CountOnly quotas sharing a SharedName, and MessageWeight"},
	{"SpikeArrest", ProfileRateLimit, false, "SpikeArrest smooths bursts, with and without UseEffectiveCount"},
	{"LLMTokenQuota", ProfileRateLimit, false, "token budgets counted from the answers' usage stop requests once spent, streamed answers included"},
	{"PromptTokenLimit", ProfileRateLimit, false, "PromptTokenLimit caps prompt tokens per period"},
	// THREAT
	{"JSONThreatProtection", ProfileThreat, true, "JSON nesting, entry counts, name and string lengths are limited"},
	{"RegexProtection", ProfileThreat, true, "SQL injection and XSS patterns in message contents are refused"},
	{"PromptGuard", ProfileThreat, true, "prompt injection, jailbreaks and malicious URIs in prompts are refused"},
	{"ResponseSanitization", ProfileThreat, true, "sensitive data in answers is redacted or blocked, streamed answers included"},
	{"GraphQLProtection", ProfileThreat, false, "GraphQL depth, count, size and operation type are limited"},
	{"PayloadLimits", ProfileThreat, false, "oversized bodies, headers and URLs are refused (413, 431, 414)"},
	{"RequestSmuggling", ProfileThreat, false, "conflicting Content-Length and Transfer-Encoding are refused"},
	// ROUTING
	{"InferencePoolRouting", ProfileRouting, true, "OpenAI requests reach a pool endpoint chosen by the endpoint picker, with x-gateway-destination-endpoint-served"},
	{"ModelValidation", ProfileRouting, true, "a request without a model gets 400, an unknown model the server's 404"},
	{"Streaming", ProfileRouting, true, "SSE answers stream through the gateway chunk by chunk"},
	{"OllamaAPI", ProfileRouting, false, "the Ollama API (/api/chat, /api/generate, NDJSON streaming) goes through the gateway"},
	{"LoadAwareRouting", ProfileRouting, false, "the picker avoids busy endpoints"},
	{"LoRAAffinity", ProfileRouting, false, "LoRA requests prefer the endpoint with the adapter loaded"},
	{"PickerFailClose", ProfileRouting, false, "with the picker down and failureMode FailClose, requests get 503"},
	{"PickerFailOpen", ProfileRouting, false, "with the picker down and failureMode FailOpen, requests still reach an endpoint"},
	{"WeightedPools", ProfileRouting, false, "weighted backendRefs split traffic across pools"},
}

// Profiles lists the profiles in report order.
var Profiles = []ProfileName{ProfileAuthn, ProfileAuthz, ProfileRateLimit, ProfileThreat, ProfileRouting}

// LookupFeature finds a registered feature.
func LookupFeature(name FeatureName) (Feature, bool) {
	for _, f := range Features {
		if f.Name == name {
			return f, true
		}
	}
	return Feature{}, false
}

// ProfileFeatures lists a profile's features, core first, each group sorted.
func ProfileFeatures(p ProfileName) (core, extended []FeatureName) {
	for _, f := range Features {
		if f.Profile != p {
			continue
		}
		if f.Core {
			core = append(core, f.Name)
		} else {
			extended = append(extended, f.Name)
		}
	}
	sortNames(core)
	sortNames(extended)
	return core, extended
}

// ParseProfiles reads a comma-separated list of profile names; empty means all.
func ParseProfiles(s string) ([]ProfileName, error) {
	if strings.TrimSpace(s) == "" {
		return Profiles, nil
	}
	var out []ProfileName
	for _, p := range strings.Split(s, ",") {
		p = strings.ToUpper(strings.TrimSpace(p))
		found := false
		for _, known := range Profiles {
			if ProfileName(p) == known {
				out = append(out, known)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown profile %q (known: %s)", p, joinProfiles(Profiles))
		}
	}
	return out, nil
}

// ParseFeatures reads a comma-separated list of feature names; each must be
// registered.
func ParseFeatures(s string) ([]FeatureName, error) {
	var out []FeatureName
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if _, ok := LookupFeature(FeatureName(f)); !ok {
			return nil, fmt.Errorf("unknown feature %q", f)
		}
		out = append(out, FeatureName(f))
	}
	return out, nil
}

func sortNames(n []FeatureName) { sort.Slice(n, func(i, j int) bool { return n[i] < n[j] }) }

func joinProfiles(ps []ProfileName) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = string(p)
	}
	return strings.Join(s, ", ")
}
