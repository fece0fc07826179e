package threat

import (
	"regexp"
	"strings"
	"testing"
)

// defaultSetPatterns are every default pattern, by "set/id".
func defaultSetPatterns(t testing.TB) (map[string]*regexp.Regexp, []string) {
	t.Helper()
	pats := map[string]*regexp.Regexp{}
	var inputs []string
	for _, set := range PatternSets() {
		entries, err := DefaultPatternEntries(set)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			pats[set+"/"+e.ID] = e.Pattern.Regexp
			inputs = append(inputs, e.Match...)
			inputs = append(inputs, e.NoMatch...)
		}
	}
	return pats, inputs
}

// checkPrefilterSound fails when a pattern matches s but its prefilter
// would have skipped it.
func checkPrefilterSound(t *testing.T, pats map[string]*regexp.Regexp, s string) {
	t.Helper()
	folded := foldString(s)
	for id, re := range pats {
		if p := newPrefilter(re); p != nil && re.MatchString(s) && !p.mayMatch(folded) {
			t.Fatalf("%s matches %q but its prefilter %q would skip it", id, s, p.lits)
		}
	}
}

// TestPrefilterSound: on every example of the default sets, in several
// case and Unicode-folding variants, a prefilter never skips a pattern
// that matches; and most default patterns have one.
func TestPrefilterSound(t *testing.T) {
	t.Parallel()
	pats, inputs := defaultSetPatterns(t)
	withPre := 0
	for _, re := range pats {
		if newPrefilter(re) != nil {
			withPre++
		}
	}
	if withPre < len(pats)*3/4 {
		t.Errorf("only %d of %d default patterns have a prefilter", withPre, len(pats))
	}
	for _, in := range inputs {
		for _, v := range []string{in, strings.ToUpper(in), strings.ToLower(in),
			// ſ (U+017F) folds with s, K (U+212A) with k: (?i) matches them.
			strings.ReplaceAll(strings.ReplaceAll(in, "s", "ſ"), "k", "K")} {
			checkPrefilterSound(t, pats, v)
		}
	}
}

func TestFoldString(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"Select":      "SELECT",
		"ſelect":      "SELECT",
		"\u212Aelvin": "KELVIN",
		"<Script>é":   "<SCRIPT>É",
		"\xffa":       "\uFFFDA",
		"ΣΑΣ σας":     foldString("σας σας"),
		"plain 123!":  "PLAIN 123!",
	} {
		if got := foldString(in); got != want {
			t.Errorf("foldString(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzPrefilter: for any input, a default pattern that matches is never
// skipped by its prefilter.
func FuzzPrefilter(f *testing.F) {
	pats, inputs := defaultSetPatterns(f)
	for _, in := range inputs {
		f.Add(in)
	}
	f.Add("ſelect * from users where 1=1 union ſelect")
	f.Fuzz(func(t *testing.T, s string) {
		checkPrefilterSound(t, pats, s)
	})
}
