package report

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatecheck/gatecheck/conformance"
)

func TestBuild(t *testing.T) {
	t.Parallel()
	authnExtended := func(supported ...conformance.FeatureName) (sup, unsup []conformance.FeatureName) {
		_, ext := conformance.ProfileFeatures(conformance.ProfileAuthn)
		in := map[conformance.FeatureName]bool{}
		for _, f := range supported {
			in[f] = true
		}
		for _, f := range ext {
			if in[f] {
				sup = append(sup, f)
			} else {
				unsup = append(unsup, f)
			}
		}
		return sup, unsup
	}
	authnOnly := []conformance.ProfileName{conformance.ProfileAuthn}

	tests := []struct {
		name        string
		results     []ScenarioResult
		supported   []conformance.FeatureName
		unsupported []conformance.FeatureName
		profiles    []conformance.ProfileName
		want        []ProfileReport
	}{
		{
			name: "all pass",
			results: []ScenarioResult{
				{Name: "authn/b", Features: []conformance.FeatureName{"APIKeyAuthentication"}, Outcome: Passed},
				{Name: "authn/a", Features: []conformance.FeatureName{"FailClosed"}, Outcome: Passed},
				{Name: "authn/c", Features: []conformance.FeatureName{"APIKeyQueryParam"}, Outcome: Passed},
			},
			supported: []conformance.FeatureName{"APIKeyQueryParam"},
			profiles:  authnOnly,
			want: []ProfileReport{{
				Name:    conformance.ProfileAuthn,
				Summary: "Core tests succeeded. Extended tests succeeded.",
				Core:    Status{Result: Success, Statistics: Statistics{Passed: 2}},
				Extended: func() *ExtendedStatus {
					sup, unsup := authnExtended("APIKeyQueryParam")
					return &ExtendedStatus{
						Status:            Status{Result: Success, Statistics: Statistics{Passed: 1}},
						SupportedFeatures: sup, UnsupportedFeatures: unsup,
					}
				}(),
			}},
		},
		{
			name: "a core failure fails core",
			results: []ScenarioResult{
				{Name: "authn/b", Features: []conformance.FeatureName{"APIKeyAuthentication"}, Outcome: Failed, Reason: "want 401, got 200"},
				{Name: "authn/a", Features: []conformance.FeatureName{"FailClosed"}, Outcome: Passed},
				{Name: "authn/c", Features: []conformance.FeatureName{"APIKeyLifecycle"}, Outcome: Skipped},
			},
			profiles: authnOnly,
			want: []ProfileReport{{
				Name:    conformance.ProfileAuthn,
				Summary: "Core tests failed with 1 test failures.",
				Core: Status{Result: Failure, Statistics: Statistics{Passed: 1, Failed: 1, Skipped: 1},
					FailedTests: []string{"authn/b"}, SkippedTests: []string{"authn/c"}},
			}},
		},
		{
			name: "an extended skip is partial",
			results: []ScenarioResult{
				{Name: "authn/a", Features: []conformance.FeatureName{"APIKeyAuthentication"}, Outcome: Passed},
				{Name: "authn/jwt", Features: []conformance.FeatureName{"JWTVerification"}, Outcome: Skipped, Reason: "excluded"},
				{Name: "authn/q", Features: []conformance.FeatureName{"APIKeyQueryParam"}, Outcome: Passed},
			},
			supported: []conformance.FeatureName{"APIKeyQueryParam", "JWTVerification"},
			profiles:  authnOnly,
			want: []ProfileReport{{
				Name:    conformance.ProfileAuthn,
				Summary: "Core tests succeeded. Extended tests partially succeeded with 1 test skips.",
				Core:    Status{Result: Success, Statistics: Statistics{Passed: 1}},
				Extended: func() *ExtendedStatus {
					sup, unsup := authnExtended("APIKeyQueryParam", "JWTVerification")
					return &ExtendedStatus{
						Status:            Status{Result: Partial, Statistics: Statistics{Passed: 1, Skipped: 1}, SkippedTests: []string{"authn/jwt"}},
						SupportedFeatures: sup, UnsupportedFeatures: unsup,
					}
				}(),
			}},
		},
		{
			name: "an unsupported feature is skipped and listed",
			results: []ScenarioResult{
				{Name: "authn/a", Features: []conformance.FeatureName{"APIKeyAuthentication"}, Outcome: Passed},
				{Name: "authn/jwt", Features: []conformance.FeatureName{"JWTVerification"}, Outcome: Skipped, Reason: "target does not claim JWTVerification"},
			},
			// Unsupported wins over Supported.
			supported:   []conformance.FeatureName{"JWTVerification", "APIKeyQueryParam"},
			unsupported: []conformance.FeatureName{"JWTVerification"},
			profiles:    authnOnly,
			want: []ProfileReport{{
				Name:    conformance.ProfileAuthn,
				Summary: "Core tests succeeded. Extended tests partially succeeded with 1 test skips.",
				Core:    Status{Result: Success, Statistics: Statistics{Passed: 1}},
				Extended: func() *ExtendedStatus {
					sup, unsup := authnExtended("APIKeyQueryParam")
					return &ExtendedStatus{
						Status:            Status{Result: Partial, Statistics: Statistics{Skipped: 1}, SkippedTests: []string{"authn/jwt"}},
						SupportedFeatures: sup, UnsupportedFeatures: unsup,
					}
				}(),
			}},
		},
		{
			name: "an unclaimed core feature makes core partial",
			results: []ScenarioResult{
				{Name: "authn/a", Features: []conformance.FeatureName{"APIKeyAuthentication"}, Outcome: Passed},
				{Name: "authn/down", Features: []conformance.FeatureName{"FailClosed"}, Outcome: Skipped, Reason: "target does not claim FailClosed"},
			},
			profiles: authnOnly,
			want: []ProfileReport{{
				Name:    conformance.ProfileAuthn,
				Summary: "Core tests partially succeeded with 1 test skips.",
				Core:    Status{Result: Partial, Statistics: Statistics{Passed: 1, Skipped: 1}, SkippedTests: []string{"authn/down"}},
			}},
		},
		{
			name: "a scenario counts in every profile it names, core or extended in each",
			results: []ScenarioResult{
				// Core for AUTHZ, extended for ROUTING.
				{Name: "authz/ollama_models", Features: []conformance.FeatureName{"ProductModels", "OllamaAPI"}, Outcome: Failed, Reason: "boom"},
				// Only its AUTHN features decide: both core there.
				{Name: "authn/keys", Features: []conformance.FeatureName{"APIKeyAuthentication", "APIKeyLifecycle", "OllamaAPI"}, Outcome: Passed},
				// THREAT is not reported on.
				{Name: "threat/guard", Features: []conformance.FeatureName{"PromptGuard"}, Outcome: Failed},
			},
			supported: []conformance.FeatureName{"OllamaAPI"},
			profiles:  []conformance.ProfileName{conformance.ProfileRouting, conformance.ProfileAuthz, conformance.ProfileAuthn, conformance.ProfileRouting},
			want: []ProfileReport{
				{
					Name:    conformance.ProfileRouting,
					Summary: "Core tests succeeded. Extended tests failed with 1 test failures.",
					Core:    Status{Result: Success},
					Extended: func() *ExtendedStatus {
						_, ext := conformance.ProfileFeatures(conformance.ProfileRouting)
						var unsup []conformance.FeatureName
						for _, f := range ext {
							if f != "OllamaAPI" {
								unsup = append(unsup, f)
							}
						}
						return &ExtendedStatus{
							Status:            Status{Result: Failure, Statistics: Statistics{Passed: 1, Failed: 1}, FailedTests: []string{"authz/ollama_models"}},
							SupportedFeatures: []conformance.FeatureName{"OllamaAPI"}, UnsupportedFeatures: unsup,
						}
					}(),
				},
				{
					Name:    conformance.ProfileAuthz,
					Summary: "Core tests failed with 1 test failures.",
					Core:    Status{Result: Failure, Statistics: Statistics{Failed: 1}, FailedTests: []string{"authz/ollama_models"}},
				},
				{
					Name:    conformance.ProfileAuthn,
					Summary: "Core tests succeeded.",
					Core:    Status{Result: Success, Statistics: Statistics{Passed: 1}},
				},
			},
		},
		{
			name: "no scenarios, no profiles",
			want: []ProfileReport{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := Build(tt.results, Options{
				Target: TargetSim, Version: "v0.1.0", Date: fixedDate,
				Profiles: tt.profiles, Supported: tt.supported, Unsupported: tt.unsupported,
			})
			require.NoError(t, err)
			assert.Equal(t, tt.want, r.Profiles)
			assert.Equal(t, APIVersion, r.APIVersion)
			assert.Equal(t, Kind, r.Kind)
			assert.Equal(t, "2026-05-27T16:16:59Z", r.Date)
			assert.Equal(t, ModeDefault, r.Mode)
		})
	}
}

func TestBuildAllProfilesByDefault(t *testing.T) {
	t.Parallel()
	var results []ScenarioResult
	for _, p := range conformance.Profiles {
		core, _ := conformance.ProfileFeatures(p)
		results = append(results, ScenarioResult{Name: string(p) + "/x", Features: core[:1], Outcome: Passed})
	}
	r, err := Build(results, Options{Target: TargetSim, Version: "v0", Date: fixedDate.In(time.FixedZone("CEST", 2*3600))})
	require.NoError(t, err)
	var names []conformance.ProfileName
	for _, p := range r.Profiles {
		names = append(names, p.Name)
	}
	assert.Equal(t, conformance.Profiles, names)
	assert.Equal(t, "2026-05-27T16:16:59Z", r.Date, "dates are written in UTC")
}

func TestBuildErrors(t *testing.T) {
	t.Parallel()
	ok := Options{Target: TargetSim, Version: "v0.1.0", Date: fixedDate}
	pass := func(name string, f ...conformance.FeatureName) ScenarioResult {
		return ScenarioResult{Name: name, Features: f, Outcome: Passed}
	}
	tests := []struct {
		name    string
		results []ScenarioResult
		opts    func(*Options)
		want    string
	}{
		{"no target", nil, func(o *Options) { o.Target = "" }, "options: target is required"},
		{"unknown target", nil, func(o *Options) { o.Target = "prod" }, `options: unknown target "prod"`},
		{"no version", nil, func(o *Options) { o.Version = "" }, "options: gatecheck version is required"},
		{"no date", nil, func(o *Options) { o.Date = time.Time{} }, "options: date is required"},
		{"unknown profile", nil, func(o *Options) { o.Profiles = []conformance.ProfileName{"HTTP"} }, `options: unknown profile "HTTP"`},
		{"unknown supported feature", nil, func(o *Options) { o.Supported = []conformance.FeatureName{"Teleport"} }, `options: unknown feature "Teleport"`},
		{"unnamed scenario", []ScenarioResult{pass("", "Streaming")}, nil, "results[0]: scenario name is required"},
		{"repeated scenario", []ScenarioResult{pass("a/b", "Streaming"), pass("a/b", "Streaming")}, nil, `results[1]: scenario "a/b" is listed twice`},
		{"unknown outcome", []ScenarioResult{{Name: "a/b", Outcome: "flaky"}}, nil, `results[0]: scenario "a/b": unknown outcome "flaky"`},
		{"unknown scenario feature", []ScenarioResult{pass("a/b", "Teleport")}, nil, `results[0]: scenario "a/b": unknown feature "Teleport"`},
		{"all problems at once", nil, func(o *Options) { o.Target, o.Version = "", "" }, "options: target is required\noptions: gatecheck version is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := ok
			if tt.opts != nil {
				tt.opts(&opts)
			}
			r, err := Build(tt.results, opts)
			require.EqualError(t, err, tt.want)
			assert.Nil(t, r)
		})
	}
}
