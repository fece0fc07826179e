package detectors

import (
	"regexp/syntax"
	"slices"
	"strings"
	"testing"
)

func TestAllRulesCompile(t *testing.T) {
	t.Parallel()
	rules, err := All()
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, r := range rules {
		if ids[r.ID] {
			t.Errorf("duplicate rule id %s", r.ID)
		}
		ids[r.ID] = true
		if r.MaxLen <= 0 || r.MaxLen > 2048 {
			t.Errorf("%s: MaxLen %d", r.ID, r.MaxLen)
		}
		if r.Filter == "" || r.Kind == "" {
			t.Errorf("%s: no filter or kind", r.ID)
		}
		t.Logf("%-36s maxlen %4d context %3d", r.ID, r.MaxLen, r.Context)
	}
}

func TestMaxMatchLen(t *testing.T) {
	t.Parallel()
	tests := []struct {
		re   string
		want int
	}{
		{`abc`, 3}, {`a{2,5}`, 5}, {`(?:ab|c){0,3}`, 6}, {`a*`, -1}, {`a+b`, -1}, {`é`, 2}, {`[a-z\x{10000}]`, 4},
		{`(?i)k`, 3}, {`\bfoo$`, 3}, {`x?y`, 2}, {`.`, 4},
	}
	for _, tt := range tests {
		tree, err := syntax.Parse(tt.re, syntax.Perl)
		if err != nil {
			t.Fatal(err)
		}
		if got := MaxMatchLen(tree); got != tt.want {
			t.Errorf("MaxMatchLen(%q) = %d, want %d", tt.re, got, tt.want)
		}
	}
}

func TestCompileRuleRefuses(t *testing.T) {
	t.Parallel()
	for _, p := range []string{`a+`, `\bfoo`, `(?:x?)\bfoo`, `^foo`} {
		if _, err := compileRule(Rule{ID: "t"}, p); err == nil {
			t.Errorf("compileRule(%q) succeeded, want an error", p)
		}
	}
}

func TestRequiredLiterals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		re   string
		want string
	}{
		{`(?i)ignore\s+previous`, "previous"},
		{`(?i)(?:ignore|disregard)\s+x`, "ignore,disregard"},
		{`AKIA[0-9A-Z]{16}`, "akia"},
		{`a[0-9]z`, "a"},
		{`\d{13}`, ""},
		{`[A-Za-z]{2}@x`, "@x"},
		{`(?:a|\d)b`, "b"},
		{`(?i)k`, "k"},
		{`x?y`, "y"},
	}
	for _, tt := range tests {
		tree, _ := syntax.Parse(tt.re, syntax.Perl)
		got := requiredLiterals(tree)
		slices.Sort(got)
		want := strings.Split(tt.want, ",")
		if tt.want == "" {
			want = nil
		}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("requiredLiterals(%q) = %q, want %q", tt.re, got, want)
		}
	}
	rules, _ := All()
	for _, r := range rules {
		t.Logf("%-36s anchors %q", r.ID, r.Anchors)
	}
}
