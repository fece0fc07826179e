package policy

import (
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatecheck/gatecheck/fakes/apigee/threat"
	"github.com/gatecheck/gatecheck/manifests"
)

var update = flag.Bool("update", false, "rewrite the generated default policy XML (manifests/default/policies)")

// The default topology's threat protection, in manifests/default/policies.
const (
	defaultPolicyDir = "policies/inference-gateway-apim"
	regexPolicyFile  = defaultPolicyDir + "/request/20-regex-injection.xml"
)

// defaultRegexSets and defaultRegexJSONPaths mirror threat.DefaultProtection:
// the sets its regular expressions use and where they look in a JSON body
// (the last union covers $.prompt, $.system, $.input, $.instructions,
// $.query and $.variables in one JSONPath).
var (
	defaultRegexSets = []string{threat.PatternSetSQLInjection, threat.PatternSetXSS, threat.PatternSetServerSideInclude,
		threat.PatternSetXPathInjection, threat.PatternSetCommandInjection}
	defaultRegexJSONPaths = []string{"$.messages[*].content", "$.messages[*].content[*].text",
		"$.messages[*].tool_calls[*].function.arguments",
		"$['prompt','system','input','instructions','query','variables','suffix','template']"}
)

// regexPolicyXML generates the default RegularExpressionProtection from the
// pattern sets' data: self-contained Apigee XML, every pattern inline.
func regexPolicyXML(t testing.TB) string {
	t.Helper()
	var ids, pats []string
	var b strings.Builder
	b.WriteString(`<!--
  SQL injection, cross-site scripting, server-side includes, XPath injection
  and command injection, in the places a client puts text: the URI path,
  every query parameter and form field (name="*", a gatecheck extension),
  and in a JSON body the chat messages (as strings or parts), the
  completion and generate prompts and system texts, the responses API's
  input and instructions, and GraphQL's query and variables.

  GENERATED from the default pattern sets of fakes/apigee/threat/patterns
  (sql-injection, xss, server-side-include, xpath-injection,
  command-injection), each pattern under its id and sources there. Do not
  edit by hand; regenerate with
    go test ./fakes/apigee/policy -run TestDefaultRegexPolicyFile -update
  The patterns are Java regular expressions, so the policy runs unchanged
  on Apigee (drop the name="*" elements or give them a name there).

  Switch it off with enabled="false" below, or delete this file.
-->
<RegularExpressionProtection name="RE-Injection" enabled="true" continueOnError="false">
  <DisplayName>Injection patterns in prompts and parameters</DisplayName>
  <Source>request</Source>
  <IgnoreUnresolvedVariables>true</IgnoreUnresolvedVariables>
`)
	for _, set := range defaultRegexSets {
		entries, err := threat.DefaultPatternEntries(set)
		require.NoError(t, err)
		for _, e := range entries {
			ids = append(ids, set+"/"+e.ID)
			pats = append(pats, e.Pattern.Source)
		}
	}
	patterns := func(indent string) {
		for i, p := range pats {
			b.WriteString(indent + "<!-- " + ids[i] + " -->\n")
			b.WriteString(indent + "<Pattern>" + xmlText(p) + "</Pattern>\n")
		}
	}
	b.WriteString("  <URIPath>\n")
	patterns("    ")
	b.WriteString("  </URIPath>\n")
	for _, elem := range []string{"QueryParam", "FormParam"} {
		b.WriteString("  <" + elem + " name=\"*\">\n")
		patterns("    ")
		b.WriteString("  </" + elem + ">\n")
	}
	b.WriteString("  <JSONPayload>\n")
	for _, path := range defaultRegexJSONPaths {
		b.WriteString("    <JSONPath>\n      <Expression>" + xmlText(path) + "</Expression>\n")
		patterns("      ")
		b.WriteString("    </JSONPath>\n")
	}
	b.WriteString("  </JSONPayload>\n</RegularExpressionProtection>\n")
	return b.String()
}

// xmlText escapes the characters XML text cannot hold as they are.
func xmlText(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// TestDefaultRegexPolicyFile: the default RegularExpressionProtection is
// exactly what the pattern sets generate.
func TestDefaultRegexPolicyFile(t *testing.T) {
	t.Parallel()
	want := regexPolicyXML(t)
	if *update {
		path := filepath.Join("..", "..", "..", "manifests", "default", filepath.FromSlash(regexPolicyFile))
		require.NoError(t, os.WriteFile(path, []byte(want), 0o644))
	}
	got, err := fs.ReadFile(manifests.Default(), regexPolicyFile)
	require.NoError(t, err)
	require.Equal(t, want, string(got), "%s is generated from the pattern sets: go test ./fakes/apigee/policy -run TestDefaultRegexPolicyFile -update", regexPolicyFile)
}

// TestDefaultThreatPolicies: the default topology's threat policies parse
// and are configured as threat.DefaultProtection, the set the corpus
// measures.
func TestDefaultThreatPolicies(t *testing.T) {
	t.Parallel()
	def, err := threat.DefaultProtection()
	require.NoError(t, err)
	read := func(name string) Policy {
		t.Helper()
		data, err := fs.ReadFile(manifests.Default(), defaultPolicyDir+"/"+name)
		require.NoError(t, err)
		p, err := Parse(data, Env{})
		require.NoError(t, err, name)
		return p
	}
	jtp := read("request/10-json-threat.xml").(*JSONThreatProtection)
	assert.Equal(t, def.JSON, jtp.Limits())
	assert.Equal(t, srcRequest, jtp.src)

	rep := read("request/20-regex-injection.xml").(*RegularExpressionProtection)
	assert.Equal(t, srcRequest, rep.src)

	gql := read("request/30-graphql.xml").(*GraphQL)
	assert.True(t, reflect.DeepEqual(def.GraphQL, gql.limits), "GraphQL limits %+v, DefaultProtection's %+v", gql.limits, def.GraphQL)

	sup := read("request/40-prompt-guard.xml").(*SanitizeUserPrompt)
	assert.Equal(t, "default", sup.tmpl.id)
	assert.False(t, sup.flag)
	assert.Nil(t, sup.source)

	smr := read("response/10-redact-pii.xml").(*SanitizeModelResponse)
	assert.Equal(t, "pii-only", smr.tmpl.id)
	assert.Equal(t, "redact", smr.mode)

	names, err := fs.Glob(manifests.Default(), defaultPolicyDir+"/*/*.xml")
	require.NoError(t, err)
	assert.Equal(t, []string{
		defaultPolicyDir + "/request/10-json-threat.xml",
		defaultPolicyDir + "/request/20-regex-injection.xml",
		defaultPolicyDir + "/request/30-graphql.xml",
		defaultPolicyDir + "/request/40-prompt-guard.xml",
		defaultPolicyDir + "/response/10-redact-pii.xml",
	}, names)
}
