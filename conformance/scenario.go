package conformance

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/rogpeppe/go-internal/txtar"
)

// Scenario is one scenario file, parsed enough to decide whether to run it.
type Scenario struct {
	// Name is <area>/<file name without .txtar>, for example authn/key_missing.
	Name string
	// Area is the folder: authn, authz, ratelimit, threat or routing.
	Area string
	// Purpose is the first comment line.
	Purpose string
	// Features are those the "# features:" line names.
	Features []FeatureName
	// Needs are the capabilities its unguarded commands need (provision,
	// clock, components, topology).
	Needs []string
	// Script is the file's text.
	Script []byte
}

// LoadScenarios reads every <area>/<name>.txtar of fsys and checks each
// header: a purpose line, then a features line naming registered features.
// All problems are reported together, each naming the file and line.
func LoadScenarios(fsys fs.FS) ([]Scenario, error) {
	files, err := fs.Glob(fsys, "*/*.txtar")
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []Scenario
	var problems []string
	for _, f := range files {
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, err
		}
		s, err := ParseScenario(f, b)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		out = append(out, s)
	}
	if len(problems) > 0 {
		return out, fmt.Errorf("%s", strings.Join(problems, "\n"))
	}
	return out, nil
}

// ParseScenario parses one scenario file; file is its path, <area>/<name>.txtar.
func ParseScenario(file string, data []byte) (Scenario, error) {
	area := path.Dir(file)
	s := Scenario{Name: strings.TrimSuffix(file, ".txtar"), Area: area, Script: data}
	a := txtar.Parse(data)
	lines := strings.Split(string(a.Comment), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "# ") || strings.HasPrefix(lines[0], "# features:") {
		return s, fmt.Errorf("%s:1: a scenario opens with a one-line purpose: \"# what it checks\"", file)
	}
	s.Purpose = strings.TrimSpace(strings.TrimPrefix(lines[0], "# "))
	featuresLine := 0
	for i, l := range lines {
		rest, ok := strings.CutPrefix(l, "# features:")
		if !ok {
			continue
		}
		if featuresLine != 0 {
			return s, fmt.Errorf("%s:%d: a second features line (the first is line %d)", file, i+1, featuresLine)
		}
		featuresLine = i + 1
		for _, f := range strings.Split(rest, ",") {
			f = strings.TrimSpace(f)
			if f == "" {
				continue
			}
			if _, ok := LookupFeature(FeatureName(f)); !ok {
				return s, fmt.Errorf("%s:%d: unknown feature %q", file, i+1, f)
			}
			s.Features = append(s.Features, FeatureName(f))
		}
	}
	if featuresLine == 0 || len(s.Features) == 0 {
		return s, fmt.Errorf("%s: no \"# features: A, B\" line naming what the scenario checks", file)
	}
	s.Needs = needs(lines)
	return s, nil
}

// needs are the capabilities a script's unguarded commands need: a line
// behind a condition ([clock] clock advance 1m) is the author's own choice.
func needs(lines []string) []string {
	set := map[string]bool{}
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "[") {
			continue
		}
		l = strings.TrimSpace(strings.TrimPrefix(l, "!"))
		word, rest, _ := strings.Cut(l, " ")
		switch word {
		case "apigee":
			set["provision"] = true
		case "clock":
			set["clock"] = true
		case "component":
			set["components"] = true
		case "topology":
			set["topology"] = true
		case "burst":
			// burst N ... chat: look at the command it repeats.
			for _, w := range strings.Fields(rest) {
				if w == "apigee" {
					set["provision"] = true
				}
			}
		}
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
