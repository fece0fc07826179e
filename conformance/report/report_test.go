package report

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatecheck/gatecheck/conformance"
)

// fixedReport is the report of the fixed run; each call returns a new copy.
func fixedReport(t *testing.T) *ConformanceReport {
	t.Helper()
	r, err := Build(fixedResults(), fixedOptions())
	require.NoError(t, err)
	return r
}

func TestFixedReportShape(t *testing.T) {
	t.Parallel()
	r := fixedReport(t)
	require.Len(t, r.Profiles, 3)
	authn, authz, routing := r.Profiles[0], r.Profiles[1], r.Profiles[2]
	assert.Equal(t, "Core tests succeeded. Extended tests partially succeeded with 1 test skips.", authn.Summary)
	assert.Equal(t, "Core tests succeeded.", authz.Summary)
	assert.Equal(t, "Core tests failed with 1 test failures. Extended tests succeeded.", routing.Summary)
	// authz/product_models names ProductModels and InferencePoolRouting:
	// core in both AUTHZ and ROUTING.
	assert.Equal(t, Statistics{Passed: 1}, authz.Core.Statistics)
	assert.Equal(t, Statistics{Passed: 1, Failed: 1}, routing.Core.Statistics)
	assert.Equal(t, []string{"routing/streaming"}, routing.Core.FailedTests)
	assert.Equal(t, []string{"authn/jwt_expired"}, authn.Extended.SkippedTests)
	assert.Contains(t, authn.Extended.UnsupportedFeatures, conformance.FeatureName("JWTVerification"))
	assert.Equal(t, []conformance.FeatureName{"APIKeyQueryParam"}, authn.Extended.SupportedFeatures)
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(r *ConformanceReport)
		want   string
	}{
		{"valid", func(*ConformanceReport) {}, ""},
		{"no apiVersion", func(r *ConformanceReport) { r.APIVersion = "" }, "apiVersion: required"},
		{"Gateway API's apiVersion", func(r *ConformanceReport) { r.APIVersion = "gateway.networking.k8s.io/v1" },
			`apiVersion: "gateway.networking.k8s.io/v1", want "gatecheck.dev/v1alpha1"`},
		{"wrong kind", func(r *ConformanceReport) { r.Kind = "Report" }, `kind: "Report", want "ConformanceReport"`},
		{"no date", func(r *ConformanceReport) { r.Date = "" }, "date: required"},
		{"bad date", func(r *ConformanceReport) { r.Date = "2026-05-27" }, `date: "2026-05-27" is not an RFC 3339 time`},
		{"no version", func(r *ConformanceReport) { r.GatecheckVersion = "" }, "gatecheckVersion: required"},
		{"unknown target", func(r *ConformanceReport) { r.Target = "prod" }, `target: "prod" is not one of sim, kind, external`},
		{"no mode", func(r *ConformanceReport) { r.Mode = "" }, "mode: required"},
		{"unknown profile", func(r *ConformanceReport) { r.Profiles[0].Name = "HTTP" }, `profiles[0].name: "HTTP" is not a known profile`},
		{"repeated profile", func(r *ConformanceReport) { r.Profiles[1].Name = conformance.ProfileAuthn },
			`profiles[1].name: "AUTHN" repeats profiles[0]`},
		{"no summary", func(r *ConformanceReport) { r.Profiles[1].Summary = "" }, "profiles[1].summary: required"},
		{"partial without skips", func(r *ConformanceReport) { r.Profiles[1].Core.Result = Partial },
			`profiles[1].core.result: "partial" but 0 tests skipped`},
		{"success with a failure", func(r *ConformanceReport) { r.Profiles[2].Core.Result = Success },
			`profiles[2].core.result: "success" but 1 test failed`},
		{"success with a skip", func(r *ConformanceReport) { r.Profiles[0].Extended.Result = Success },
			`profiles[0].extended.result: "success" but 1 test skipped`},
		{"partial with a failure", func(r *ConformanceReport) { r.Profiles[2].Core.Result = Partial },
			`profiles[2].core.result: "partial" but 1 test failed`},
		{"failure without failures", func(r *ConformanceReport) { r.Profiles[1].Core.Result = Failure },
			`profiles[1].core.result: "failure" but 0 tests failed`},
		{"no result", func(r *ConformanceReport) { r.Profiles[1].Core.Result = "" }, "profiles[1].core.result: required"},
		{"unknown result", func(r *ConformanceReport) { r.Profiles[1].Core.Result = "passed" },
			`profiles[1].core.result: "passed" is not one of success, partial, failure`},
		{"failures miscounted", func(r *ConformanceReport) { r.Profiles[2].Core.Statistics.Failed = 2 },
			"profiles[2].core.statistics.Failed: 2 but failedTests lists 1"},
		{"skips miscounted", func(r *ConformanceReport) { r.Profiles[0].Extended.SkippedTests = nil },
			"profiles[0].extended.statistics.Skipped: 1 but skippedTests lists 0"},
		{"empty test name", func(r *ConformanceReport) { r.Profiles[2].Core.FailedTests[0] = "" },
			"profiles[2].core.failedTests[0]: empty"},
		{"test both failed and skipped", func(r *ConformanceReport) {
			c := &r.Profiles[2].Core
			c.SkippedTests = []string{"routing/streaming"}
			c.Statistics.Skipped = 1
		}, `profiles[2].core.skippedTests[0]: "routing/streaming" is already listed in failedTests`},
		{"test both core and extended", func(r *ConformanceReport) {
			e := r.Profiles[2].Extended
			e.FailedTests = []string{"routing/streaming"}
			e.Statistics.Failed = 1
			e.Result = Failure
		}, `profiles[2].extended: scenario "routing/streaming" is also listed under core`},
		{"unknown feature", func(r *ConformanceReport) { r.Profiles[0].Extended.SupportedFeatures[0] = "Teleport" },
			`profiles[0].extended.supportedFeatures[0]: "Teleport" is not a known feature`},
		{"core feature claimed as extended", func(r *ConformanceReport) { r.Profiles[0].Extended.SupportedFeatures[0] = "APIKeyAuthentication" },
			`profiles[0].extended.supportedFeatures[0]: "APIKeyAuthentication" is not an extended feature of AUTHN`},
		{"feature of another profile", func(r *ConformanceReport) { r.Profiles[0].Extended.UnsupportedFeatures[0] = "OllamaAPI" },
			`profiles[0].extended.unsupportedFeatures[0]: "OllamaAPI" is not an extended feature of AUTHN`},
		{"feature both supported and not", func(r *ConformanceReport) {
			e := r.Profiles[0].Extended
			e.UnsupportedFeatures = append(e.UnsupportedFeatures, "APIKeyQueryParam")
		}, `profiles[0].extended.unsupportedFeatures[4]: "APIKeyQueryParam" is also listed in supportedFeatures`},
		{"every problem reported", func(r *ConformanceReport) { r.Kind, r.Target = "", "" }, "kind: required\ntarget: required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := fixedReport(t)
			tt.mutate(r)
			err := r.Validate()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tt.want)
		})
	}
}

func TestValidateNil(t *testing.T) {
	t.Parallel()
	var r *ConformanceReport
	require.EqualError(t, r.Validate(), "report: nil")
	require.EqualError(t, r.ValidateForCertification(), "report: nil")
}

func TestValidateForCertification(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(r *ConformanceReport)
		want   string
	}{
		{"complete", func(*ConformanceReport) {}, ""},
		{"invalid report", func(r *ConformanceReport) { r.Target = "" }, "target: required"},
		{"no profiles", func(r *ConformanceReport) { r.Profiles = nil }, "profiles: at least one profile is required"},
		{"no implementation", func(r *ConformanceReport) { r.Implementation = Implementation{} },
			"implementation.organization: required\nimplementation.project: required\nimplementation.url: required\n" +
				"implementation.version: required\nimplementation.contact: at least one contact is required"},
		{"blank organization", func(r *ConformanceReport) { r.Implementation.Organization = " " }, "implementation.organization: required"},
		{"http URL", func(r *ConformanceReport) { r.Implementation.URL = "http://example.com" },
			`implementation.url: "http://example.com" is not an absolute https URL`},
		{"relative URL", func(r *ConformanceReport) { r.Implementation.URL = "example.com/gateway" },
			`implementation.url: "example.com/gateway" is not an absolute https URL`},
		{"URL without host", func(r *ConformanceReport) { r.Implementation.URL = "https:///path" },
			`implementation.url: "https:///path" is not an absolute https URL`},
		{"unparsable URL", func(r *ConformanceReport) { r.Implementation.URL = "https://exa mple.com" },
			`implementation.url: "https://exa mple.com" is not an absolute https URL`},
		{"empty contact", func(r *ConformanceReport) { r.Implementation.Contact = []string{"@a", ""} },
			"implementation.contact[1]: empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := fixedReport(t)
			tt.mutate(r)
			err := r.ValidateForCertification()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tt.want)
		})
	}
}
