package conformance

import (
	"fmt"
	"strings"
)

// CommandReference is the Markdown reference of the scenario commands, made
// from the registry. The README carries it between the markers
// <!-- commands:begin --> and <!-- commands:end -->, and a test fails when the
// README's copy is stale.
func CommandReference() string {
	var b strings.Builder
	b.WriteString("| command | what it does |\n| --- | --- |\n")
	for _, c := range Commands {
		fmt.Fprintf(&b, "| `%s` | %s |\n", escapeCell(c.Usage()), escapeCell(c.Summary))
	}
	for _, c := range Commands {
		if c.Detail == "" {
			continue
		}
		fmt.Fprintf(&b, "\n**%s**: %s\n", c.Name, strings.ReplaceAll(c.Detail, "\n", "  \n"))
	}
	b.WriteString("\nConditions: `[sim]`, `[kind]`, `[external]` (the target), `[clock]`, `[provision]`, `[components]`, `[traces]` (what the target can do), `[ollama]` (the models are real Ollama servers), `[feature:NAME]` (the target claims NAME).\n")
	return b.String()
}

// FeatureReference is the Markdown table of profiles and features, made from
// the registry; the README carries it between <!-- features:begin --> and
// <!-- features:end -->.
func FeatureReference() string {
	var b strings.Builder
	b.WriteString("| profile | feature | core | what it checks |\n| --- | --- | --- | --- |\n")
	for _, p := range Profiles {
		for _, f := range Features {
			if f.Profile != p {
				continue
			}
			core := "extended"
			if f.Core {
				core = "core"
			}
			fmt.Fprintf(&b, "| %s | `%s` | %s | %s |\n", p, f.Name, core, escapeCell(f.Description))
		}
	}
	return b.String()
}

func escapeCell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// ReplaceSection returns doc with the text between <!-- name:begin --> and
// <!-- name:end --> replaced by body.
func ReplaceSection(doc, name, body string) (string, error) {
	begin, end := "<!-- "+name+":begin -->", "<!-- "+name+":end -->"
	i := strings.Index(doc, begin)
	j := strings.Index(doc, end)
	if i < 0 || j < i {
		return "", fmt.Errorf("no %s ... %s section", begin, end)
	}
	return doc[:i+len(begin)] + "\n" + body + doc[j:], nil
}
