package threat

import (
	"bufio"
	"embed"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

//go:embed patterns/*.txt
var patternFiles embed.FS

// The names of the default pattern sets.
const (
	PatternSetSQLInjection      = "sql-injection"
	PatternSetXSS               = "xss"
	PatternSetServerSideInclude = "server-side-include"
	PatternSetXPathInjection    = "xpath-injection"
	PatternSetCommandInjection  = "command-injection"
	// PatternSetJavaException matches Java exceptions leaking into responses.
	PatternSetJavaException = "java-exception"
	// PatternSetApigeeExamples holds Apigee's documentation examples
	// verbatim, for parity tests; they are too broad for real traffic.
	PatternSetApigeeExamples = "apigee-examples"
)

// PatternEntry is one pattern of a default set with its provenance.
type PatternEntry struct {
	// ID names the entry within its set, e.g. "sqli-tautology".
	ID string
	// Sources say where the pattern comes from (Apigee's documentation,
	// OWASP rules cited by reference).
	Sources []string
	// Pattern is the compiled pattern.
	Pattern Pattern
	// Match and NoMatch are example inputs the pattern must and must not
	// match; the package tests check them.
	Match, NoMatch []string
}

// PatternSets lists the names of the default pattern sets.
func PatternSets() []string {
	entries, err := patternFiles.ReadDir("patterns")
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".txt"); ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// DefaultPatterns returns the compiled patterns of a default set, by name
// (see PatternSets).
func DefaultPatterns(set string) ([]*regexp.Regexp, error) {
	entries, err := DefaultPatternEntries(set)
	if err != nil {
		return nil, err
	}
	out := make([]*regexp.Regexp, len(entries))
	for i, e := range entries {
		out[i] = e.Pattern.Regexp
	}
	return out, nil
}

// DefaultPatternEntries returns a default set with the source of every
// pattern.
func DefaultPatternEntries(set string) ([]PatternEntry, error) {
	data, err := patternFiles.ReadFile("patterns/" + set + ".txt")
	if err != nil || strings.ContainsAny(set, "/.") {
		return nil, fmt.Errorf("no default pattern set %q (have %s)", set, strings.Join(PatternSets(), ", "))
	}
	return parsePatternSet(set, string(data))
}

func parsePatternSet(set, data string) ([]PatternEntry, error) {
	var out []PatternEntry
	var cur *PatternEntry
	var source string
	finish := func(line int) error {
		if cur == nil {
			return nil
		}
		if source == "" {
			return fmt.Errorf("pattern set %s: entry %s (before line %d) has no pattern", set, cur.ID, line)
		}
		if len(cur.Sources) == 0 {
			return fmt.Errorf("pattern set %s: entry %s has no source", set, cur.ID)
		}
		p, err := CompilePattern(source)
		if err != nil {
			return fmt.Errorf("pattern set %s: entry %s: %w", set, cur.ID, err)
		}
		cur.Pattern = p
		out = append(out, *cur)
		cur, source = nil, ""
		return nil
	}
	sc := bufio.NewScanner(strings.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#"):
			continue
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			if err := finish(n); err != nil {
				return nil, err
			}
			cur = &PatternEntry{ID: line[1 : len(line)-1]}
			continue
		}
		key, value, ok := strings.Cut(line, " = ")
		if !ok || cur == nil {
			return nil, fmt.Errorf("pattern set %s: line %d: want \"key = value\" inside a [id] entry", set, n)
		}
		switch key {
		case "source":
			cur.Sources = append(cur.Sources, value)
		case "pattern":
			if source != "" {
				return nil, fmt.Errorf("pattern set %s: line %d: entry %s has two patterns", set, n, cur.ID)
			}
			source = value
		case "match":
			cur.Match = append(cur.Match, value)
		case "nomatch":
			cur.NoMatch = append(cur.NoMatch, value)
		default:
			return nil, fmt.Errorf("pattern set %s: line %d: unknown key %q", set, n, key)
		}
	}
	if err := finish(0); err != nil {
		return nil, err
	}
	return out, nil
}
