package threat

import (
	"slices"
	"strings"
	"testing"
)

func TestDefaultPatterns(t *testing.T) {
	t.Parallel()
	for _, want := range []string{PatternSetSQLInjection, PatternSetXSS, PatternSetServerSideInclude, PatternSetXPathInjection, PatternSetCommandInjection} {
		if !slices.Contains(PatternSets(), want) {
			t.Errorf("PatternSets() = %v, missing %q", PatternSets(), want)
		}
	}
	for _, set := range PatternSets() {
		entries, err := DefaultPatternEntries(set)
		if err != nil {
			t.Fatalf("%s: %v", set, err)
		}
		if len(entries) == 0 {
			t.Errorf("%s: empty set", set)
		}
		ids := map[string]bool{}
		for _, e := range entries {
			if ids[e.ID] {
				t.Errorf("%s: duplicate id %s", set, e.ID)
			}
			ids[e.ID] = true
			if len(e.Match) == 0 {
				t.Errorf("%s/%s: no match example", set, e.ID)
			}
			for _, s := range e.Match {
				if !e.Pattern.Regexp.MatchString(s) {
					t.Errorf("%s/%s does not match %q", set, e.ID, s)
				}
			}
			for _, s := range e.NoMatch {
				if e.Pattern.Regexp.MatchString(s) {
					t.Errorf("%s/%s matches %q", set, e.ID, s)
				}
			}
		}
		res, err := DefaultPatterns(set)
		if err != nil || len(res) != len(entries) {
			t.Errorf("DefaultPatterns(%q) = %d patterns, %v", set, len(res), err)
		}
	}
	if _, err := DefaultPatterns("nope"); err == nil || !strings.Contains(err.Error(), "sql-injection") {
		t.Errorf("unknown set error = %v, want it to list the sets", err)
	}
}

func TestParsePatternSetErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ data, want string }{
		{"[a]\nsource = s\n", "has no pattern"},
		{"[a]\npattern = x\n", "has no source"},
		{"[a]\nsource = s\npattern = (?=x)\n", "lookahead"},
		{"pattern = x\n", "inside a [id] entry"},
		{"[a]\nsource = s\npattern = x\npattern = y\n", "two patterns"},
		{"[a]\nsrc = s\n", "unknown key"},
	}
	for _, tt := range tests {
		if _, err := parsePatternSet("t", tt.data); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parse(%q) error = %v, want %q", tt.data, err, tt.want)
		}
	}
}
