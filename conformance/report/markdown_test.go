package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteMarkdown(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	require.NoError(t, WriteMarkdown(&buf, fixedReport(t), fixedResults()))
	md := buf.String()
	for _, want := range []string{
		"| Profile | Core | Passed | Failed | Skipped | Extended | Passed | Failed | Skipped |\n",
		"| AUTHN | success | 2 | 0 | 0 | partial | 1 | 0 | 1 |\n",
		"| AUTHZ | success | 1 | 0 | 0 | — | — | — | — |\n",
		"| ROUTING | failure | 1 | 1 | 0 | success | 1 | 0 | 0 |\n",
		"- **ROUTING**: Core tests failed with 1 test failures. Extended tests succeeded.\n",
		"### `routing/streaming`\n\nFeatures: Streaming\n\n```\nstatus: want 200, got 502\nbody: upstream connect error\n```\n",
		"| `authn/jwt_expired` | JWTVerification | target does not claim JWTVerification |\n",
		"## Reproduce\n",
		"gatecheck conformance --target kind --profiles AUTHN,AUTHZ,ROUTING --exempt-features " +
			"DecisionTrace,IPAccessControl,JWTVerification,LoRAAffinity,LoadAwareRouting,OAuthClientCredentials,PickerFailClose,PickerFailOpen,WeightedPools\n",
	} {
		assert.Contains(t, md, want)
	}
	// Sections in order.
	failed := strings.Index(md, "## Failed scenarios")
	skipped := strings.Index(md, "## Skipped scenarios")
	reproduce := strings.Index(md, "## Reproduce")
	assert.True(t, 0 < failed && failed < skipped && skipped < reproduce, "sections out of order")
}

func TestWriteMarkdownWithoutResults(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	require.NoError(t, WriteMarkdown(&buf, fixedReport(t), nil))
	md := buf.String()
	assert.Contains(t, md, "### `routing/streaming`\n\n```\n(no reason recorded)\n```\n", "scenarios the report lists are shown")
	assert.Contains(t, md, "| `authn/jwt_expired` |  |  |\n")
}

func TestWriteMarkdownEscapes(t *testing.T) {
	t.Parallel()
	results := []ScenarioResult{
		{Name: "routing/pipes", Features: fixedResults()[0].Features, Outcome: Failed, Reason: "```\nbody: a | b <img>\n```"},
		{Name: "authn/x", Features: fixedResults()[1].Features, Outcome: Skipped, Reason: "a | b\n<b>c</b>"},
	}
	opts := fixedOptions()
	r, err := Build(results, opts)
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, WriteMarkdown(&buf, r, results))
	md := buf.String()
	assert.Contains(t, md, "````\n```\nbody: a | b <img>\n```\n````\n", "a longer fence around fenced text")
	assert.Contains(t, md, "| `authn/x` | APIKeyAuthentication | a \\| b &lt;b&gt;c&lt;/b&gt; |\n")
	assert.Contains(t, md, "## Skipped scenarios")
	assert.Contains(t, md, "## Failed scenarios\n\n### `routing/pipes`")
}

func TestWriteMarkdownNothingFailed(t *testing.T) {
	t.Parallel()
	results := []ScenarioResult{{Name: "authn/ok", Features: fixedResults()[1].Features, Outcome: Passed}}
	r, err := Build(results, Options{Target: TargetSim, Version: "dev", Date: fixedDate})
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, WriteMarkdown(&buf, r, results))
	md := buf.String()
	assert.Contains(t, md, "# Conformance report: gatecheck\n")
	assert.Contains(t, md, "## Failed scenarios\n\nNone.\n")
	assert.Contains(t, md, "## Skipped scenarios\n\nNone.\n")
	assert.Contains(t, md, "gatecheck conformance --target sim --profiles AUTHN\n")
	assert.NotContains(t, md, "| Implementation |")
}

func TestWriteMarkdownRefusesInvalid(t *testing.T) {
	t.Parallel()
	r := fixedReport(t)
	r.Date = "now"
	var buf bytes.Buffer
	require.EqualError(t, WriteMarkdown(&buf, r, nil), `markdown: invalid report: date: "now" is not an RFC 3339 time`)
}

func TestWriteVendorReadme(t *testing.T) {
	t.Parallel()
	r := fixedReport(t)
	var buf bytes.Buffer
	require.NoError(t, WriteVendorReadme(&buf, r, "gatecheck certify --target external"))
	md := buf.String()
	for _, want := range []string{
		"# example-gateway\n",
		"| v0.1.0 | 1.2.0 | kind | default | [1.2.0-kind-default-report.yaml](./1.2.0-kind-default-report.yaml) |\n",
		"| AUTHN | success (2 passed, 0 failed, 0 skipped) | partial (1 passed, 0 failed, 1 skipped) | APIKeyQueryParam | Core tests succeeded. Extended tests partially succeeded with 1 test skips. |\n",
		"## Reproduce\n",
		"   ```sh\n   gatecheck certify --target external\n   ```\n",
	} {
		assert.Contains(t, md, want)
	}

	err := WriteVendorReadme(&buf, r, "  ")
	require.EqualError(t, err, "readme: reproduce command is required")

	r.Implementation.Contact = nil
	err = WriteVendorReadme(&buf, r, "gatecheck certify")
	require.EqualError(t, err, "readme: report not ready for publication: implementation.contact: at least one contact is required")
}

func TestReproduceCommand(t *testing.T) {
	t.Parallel()
	r := fixedReport(t)
	r.Profiles = r.Profiles[:2] // AUTHN, AUTHZ
	assert.Equal(t,
		"gatecheck conformance --target kind --profiles AUTHN,AUTHZ --exempt-features DecisionTrace,IPAccessControl,JWTVerification,OAuthClientCredentials",
		ReproduceCommand(r))
	r.Profiles = nil
	r.Target = "it's"
	assert.Equal(t, `gatecheck conformance --target 'it'\''s'`, ReproduceCommand(r), "quoted for the shell")
}

func TestReportFileName(t *testing.T) {
	t.Parallel()
	r := fixedReport(t)
	assert.Equal(t, "1.2.0-kind-default-report.yaml", ReportFileName(r))
	r.Implementation.Version = "v1.2.0+build/7"
	assert.Equal(t, "v1.2.0-build-7-kind-default-report.yaml", ReportFileName(r))
	r.Implementation.Version = ""
	assert.Equal(t, "unversioned-kind-default-report.yaml", ReportFileName(r))
}
