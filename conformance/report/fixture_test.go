package report

import (
	"time"

	"github.com/gatecheck/gatecheck/conformance"
)

// The fixed run the golden files and several tests describe.

var fixedDate = time.Date(2026, 5, 27, 16, 16, 59, 0, time.UTC)

func fixedOptions() Options {
	return Options{
		Implementation: Implementation{
			Organization: "example",
			Project:      "example-gateway",
			URL:          "https://example.com/gateway",
			Version:      "1.2.0",
			Contact:      []string{"@example/gateway-maintainers"},
		},
		Target:   TargetKind,
		Version:  "v0.1.0",
		Profiles: []conformance.ProfileName{conformance.ProfileAuthn, conformance.ProfileAuthz, conformance.ProfileRouting},
		Supported: []conformance.FeatureName{
			"APIKeyAuthentication", "APIKeyLifecycle", "FailClosed", "APIKeyQueryParam",
			"ProductOperations", "ProductModels", "IdentityHeaders",
			"InferencePoolRouting", "ModelValidation", "Streaming", "OllamaAPI",
		},
		Date: fixedDate,
	}
}

func fixedResults() []ScenarioResult {
	at := func(s int) time.Time { return fixedDate.Add(-time.Minute + time.Duration(s)*time.Second) }
	return []ScenarioResult{
		{Name: "routing/streaming", Features: []conformance.FeatureName{"Streaming"}, Outcome: Failed,
			Reason: "status: want 200, got 502\nbody: upstream connect error", Started: at(3), Duration: 1500 * time.Millisecond,
			Log: "> chat --stream hello\n[stderr] 502 Bad Gateway\n"},
		{Name: "authn/key_missing", Features: []conformance.FeatureName{"APIKeyAuthentication"}, Outcome: Passed,
			Started: at(0), Duration: 120 * time.Millisecond, Log: "> request POST /v1/chat/completions\n> status 401\n"},
		{Name: "authn/key_revoked", Features: []conformance.FeatureName{"APIKeyLifecycle"}, Outcome: Passed,
			Started: at(0), Duration: 340 * time.Millisecond},
		{Name: "authn/jwt_expired", Features: []conformance.FeatureName{"JWTVerification"}, Outcome: Skipped,
			Reason: "target does not claim JWTVerification"},
		{Name: "authn/query_param_key", Features: []conformance.FeatureName{"APIKeyQueryParam"}, Outcome: Passed,
			Started: at(1), Duration: 90 * time.Millisecond},
		{Name: "authz/product_models", Features: []conformance.FeatureName{"ProductModels", "InferencePoolRouting"}, Outcome: Passed,
			Started: at(1), Duration: 800 * time.Millisecond},
		{Name: "routing/ollama_chat", Features: []conformance.FeatureName{"OllamaAPI"}, Outcome: Passed,
			Started: at(2), Duration: 2 * time.Second},
		{Name: "threat/prompt_guard", Features: []conformance.FeatureName{"PromptGuard"}, Outcome: Passed,
			Started: at(2), Duration: 50 * time.Millisecond},
	}
}
