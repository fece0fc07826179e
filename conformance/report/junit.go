package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// JUnit XML as CI systems (GitHub Actions reporters, GitLab, Jenkins) read
// it: one <testsuite> holding one <testcase> per scenario, with <failure> or
// <skipped> and the scenario's log in <system-out>. There is no formal
// standard; this keeps to the attributes those readers have in common
// (tests, failures, errors, skipped, time, timestamp, classname).
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name      string      `xml:"name,attr"`
	Tests     int         `xml:"tests,attr"`
	Failures  int         `xml:"failures,attr"`
	Errors    int         `xml:"errors,attr"`
	Skipped   int         `xml:"skipped,attr"`
	Time      string      `xml:"time,attr"`
	Timestamp string      `xml:"timestamp,attr,omitempty"`
	Cases     []junitCase `xml:"testcase"`
}

type junitCase struct {
	Classname string        `xml:"classname,attr"`
	Name      string        `xml:"name,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
	SystemOut *junitText    `xml:"system-out,omitempty"`
}

// junitText is element text written as CDATA, so that logs and failure
// messages keep their line breaks for whoever opens the file.
type junitText struct {
	Text string `xml:",cdata"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",cdata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

// WriteJUnit writes the results as JUnit XML: one test suite named suiteName
// ("gatecheck" when empty) with one test case per scenario, sorted by name.
// A scenario "authn/key_missing" becomes the case "key_missing" of class
// "gatecheck.authn". A failure's first line is its message attribute and the
// whole reason its text; the scenario's log goes to system-out. Both texts
// are CDATA, and characters XML cannot carry (such as terminal escapes in
// logs) become U+FFFD. The suite's time is the wall-clock span of the
// scenarios with a start time, or the sum of durations when none has one.
func WriteJUnit(w io.Writer, suiteName string, results []ScenarioResult) error {
	if suiteName == "" {
		suiteName = "gatecheck"
	}
	if err := checkResults(results); err != nil {
		return fmt.Errorf("junit: %w", err)
	}
	sorted := append([]ScenarioResult(nil), results...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })

	suite := junitSuite{Name: suiteName, Tests: len(sorted), Cases: []junitCase{}}
	var total time.Duration
	var first, last time.Time
	for _, res := range sorted {
		area, name := "gatecheck", res.Name
		if i := strings.Index(res.Name, "/"); i > 0 && i < len(res.Name)-1 {
			area, name = "gatecheck."+res.Name[:i], res.Name[i+1:]
		}
		c := junitCase{Classname: area, Name: name, Time: seconds(res.Duration)}
		if res.Log != "" {
			c.SystemOut = &junitText{Text: xmlChars(res.Log)}
		}
		switch res.Outcome {
		case Failed:
			suite.Failures++
			c.Failure = &junitFailure{Message: firstLine(res.Reason), Type: "failure", Text: xmlChars(res.Reason)}
		case Skipped:
			suite.Skipped++
			c.Skipped = &junitSkipped{Message: firstLine(res.Reason)}
		}
		suite.Cases = append(suite.Cases, c)
		total += res.Duration
		if res.Started.IsZero() {
			continue
		}
		if first.IsZero() || res.Started.Before(first) {
			first = res.Started
		}
		if end := res.Started.Add(res.Duration); end.After(last) {
			last = end
		}
	}
	// Scenarios run in parallel, so when start times are known the suite's
	// time is the wall-clock span of the scenarios that have one (a skipped
	// scenario never starts); otherwise the sum is the best we have.
	if !first.IsZero() {
		suite.Timestamp = first.UTC().Format(time.RFC3339)
		total = last.Sub(first)
	}
	suite.Time = seconds(total)

	doc := junitSuites{
		Name: suiteName, Tests: suite.Tests, Failures: suite.Failures, Skipped: suite.Skipped,
		Time: suite.Time, Suites: []junitSuite{suite},
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("junit: write: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("junit: write: %w", err)
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return fmt.Errorf("junit: write: %w", err)
	}
	return nil
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// xmlChars replaces what XML 1.0 cannot carry — control characters such as
// terminal escapes, and invalid UTF-8 — with U+FFFD. encoding/xml does so
// for escaped text but writes CDATA as it is.
func xmlChars(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t', r == '\n', r == '\r',
			r >= 0x20 && r <= 0xD7FF && r != utf8.RuneError,
			r >= 0xE000 && r <= 0xFFFD,
			r >= 0x10000 && r <= 0x10FFFF:
			return r
		}
		return '\uFFFD'
	}, s)
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return strings.TrimSpace(s[:i])
	}
	return s
}
