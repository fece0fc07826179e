package report

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/gatecheck/gatecheck/conformance"
)

// WriteMarkdown writes a summary of the run for people: the run's facts, a
// table of results per profile, the failed scenarios with their reasons, the
// skipped ones with theirs, and how to reproduce the run. results supplies
// the reasons; a scenario the report lists but results lacks is shown
// without one. It suits a CI job summary or a pull request comment.
func WriteMarkdown(w io.Writer, r *ConformanceReport, results []ScenarioResult) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("markdown: invalid report: %w", err)
	}
	if err := checkResults(results); err != nil {
		return fmt.Errorf("markdown: %w", err)
	}
	b := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }

	title := "gatecheck"
	if r.Implementation.Project != "" {
		title = strings.TrimSpace(r.Implementation.Project + " " + r.Implementation.Version)
	}
	p("# Conformance report: %s\n\n", inline(title))
	p("| | |\n|---|---|\n")
	if im := implementationLine(r.Implementation); im != "" {
		p("| Implementation | %s |\n", im)
	}
	p("| Target | %s |\n", cell(r.Target))
	p("| gatecheck | %s |\n", cell(r.GatecheckVersion))
	p("| Date | %s |\n", cell(r.Date))
	p("| Mode | %s |\n\n", cell(r.Mode))

	p("## Profiles\n\n")
	if len(r.Profiles) == 0 {
		p("No scenario of a tested profile ran.\n\n")
	} else {
		p("| Profile | Core | Passed | Failed | Skipped | Extended | Passed | Failed | Skipped |\n")
		p("|---|---|---:|---:|---:|---|---:|---:|---:|\n")
		for _, pr := range r.Profiles {
			c := pr.Core
			p("| %s | %s | %d | %d | %d | ", cell(string(pr.Name)), c.Result, c.Statistics.Passed, c.Statistics.Failed, c.Statistics.Skipped)
			if e := pr.Extended; e != nil {
				p("%s | %d | %d | %d |\n", e.Result, e.Statistics.Passed, e.Statistics.Failed, e.Statistics.Skipped)
			} else {
				p("— | — | — | — |\n")
			}
		}
		p("\n")
		for _, pr := range r.Profiles {
			p("- **%s**: %s\n", inline(string(pr.Name)), inline(pr.Summary))
		}
		p("\n")
	}

	failed, skipped := listed(r, results)
	p("## Failed scenarios\n\n")
	if len(failed) == 0 {
		p("None.\n\n")
	}
	for _, res := range failed {
		p("### %s\n\n", code(res.Name))
		if len(res.Features) > 0 {
			p("Features: %s\n\n", inline(joinFeatures(res.Features)))
		}
		reason := strings.TrimRight(res.Reason, "\n")
		if reason == "" {
			reason = "(no reason recorded)"
		}
		fence := fenceFor(reason)
		p("%s\n%s\n%s\n\n", fence, reason, fence)
	}

	p("## Skipped scenarios\n\n")
	if len(skipped) == 0 {
		p("None.\n\n")
	} else {
		p("| Scenario | Features | Reason |\n|---|---|---|\n")
		for _, res := range skipped {
			p("| %s | %s | %s |\n", code(res.Name), cell(joinFeatures(res.Features)), cell(res.Reason))
		}
		p("\n")
	}

	p("## Reproduce\n\n")
	p("Run the same profiles against the same target, exempting the same features:\n\n")
	cmd := ReproduceCommand(r)
	fence := fenceFor(cmd)
	p("%ssh\n%s\n%s\n", fence, cmd, fence)
	if r.Target == TargetExternal {
		p("\nPoint it at a deployment of the same implementation version, set up as it was for this run.\n")
	}
	if err := b.Flush(); err != nil {
		return fmt.Errorf("markdown: write: %w", err)
	}
	return nil
}

// WriteVendorReadme writes the README a vendor publishes beside a report,
// after the README of a Gateway API conformance submission
// (https://github.com/kubernetes-sigs/gateway-api/tree/main/conformance/reports):
// a table of contents linking the report by its ReportFileName, the result
// of each profile, and a "Reproduce" section with reproduceCommand, the
// exact command line that produced the report. The report must pass
// ValidateForCertification.
func WriteVendorReadme(w io.Writer, r *ConformanceReport, reproduceCommand string) error {
	if err := r.ValidateForCertification(); err != nil {
		return fmt.Errorf("readme: report not ready for publication: %w", err)
	}
	reproduceCommand = strings.TrimSpace(reproduceCommand)
	if reproduceCommand == "" {
		return errors.New("readme: reproduce command is required")
	}
	im := r.Implementation
	file := ReportFileName(r)
	b := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }

	p("# %s\n\n", inline(im.Project))
	p("%s is maintained by %s ([%s](%s)). Contact: %s.\n\n",
		inline(im.Project), inline(im.Organization), cell(im.URL), linkTarget(im.URL), inline(strings.Join(im.Contact, ", ")))

	p("## Table of contents\n\n")
	p("| gatecheck version | Implementation version | Target | Mode | Report |\n")
	p("|---|---|---|---|---|\n")
	p("| %s | %s | %s | %s | [%s](./%s) |\n\n",
		cell(r.GatecheckVersion), cell(im.Version), cell(r.Target), cell(r.Mode), cell(file), file)

	p("## Results\n\n")
	p("| Profile | Core | Extended | Supported extended features | Summary |\n")
	p("|---|---|---|---|---|\n")
	for _, pr := range r.Profiles {
		ext, feats := "—", "—"
		if e := pr.Extended; e != nil {
			ext = statusCell(e.Status)
			if len(e.SupportedFeatures) > 0 {
				feats = joinFeatures(e.SupportedFeatures)
			}
		}
		p("| %s | %s | %s | %s | %s |\n", cell(string(pr.Name)), statusCell(pr.Core), ext, cell(feats), cell(pr.Summary))
	}
	p("\n")

	p("## Reproduce\n\n")
	p("This report was produced with gatecheck %s against %s %s (target %s, mode %s) on %s.\n\n",
		inline(r.GatecheckVersion), inline(im.Project), inline(im.Version), code(r.Target), code(r.Mode), inline(r.Date))
	p("1. Install %s %s.\n", inline(im.Project), inline(im.Version))
	p("   <!-- Describe the installation and configuration the run needs. -->\n")
	p("2. Run:\n\n")
	fence := fenceFor(reproduceCommand)
	p("   %ssh\n", fence)
	for _, line := range strings.Split(reproduceCommand, "\n") {
		p("   %s\n", line)
	}
	p("   %s\n\n", fence)
	p("3. Compare the report it writes with [%s](./%s); apart from the date, they should be the same.\n", cell(file), file)
	if err := b.Flush(); err != nil {
		return fmt.Errorf("readme: write: %w", err)
	}
	return nil
}

// ReproduceCommand is the gatecheck command line that reruns the suite the
// way the report was produced, as far as the report can tell: the same
// target and profiles, with the extended features the target did not claim
// exempted (`gatecheck conformance` claims every feature unless told
// otherwise). The report does not record scenario filters (--run, --skip),
// exempted core features, or how to reach an external target
// (--gateway-url and friends); a caller that knows them appends them.
func ReproduceCommand(r *ConformanceReport) string {
	args := []string{"gatecheck", "conformance", "--target", shellQuote(r.Target)}
	var profiles []string
	var exempt []conformance.FeatureName
	for _, p := range r.Profiles {
		profiles = append(profiles, string(p.Name))
		if p.Extended != nil {
			exempt = append(exempt, p.Extended.UnsupportedFeatures...)
		}
	}
	if len(profiles) > 0 {
		args = append(args, "--profiles", shellQuote(strings.Join(profiles, ",")))
	}
	if len(exempt) > 0 {
		sort.Slice(exempt, func(i, j int) bool { return exempt[i] < exempt[j] })
		args = append(args, "--exempt-features", shellQuote(joinFeaturesComma(exempt)))
	}
	return strings.Join(args, " ")
}

// ReportFileName is the name a published report goes by:
// "<implementation version>-<target>-<mode>-report.yaml", after Gateway
// API's "<version>-<mode>-report.yaml", with the target added because
// results on kind and on a real deployment differ.
func ReportFileName(r *ConformanceReport) string {
	v := r.Implementation.Version
	if v == "" {
		v = "unversioned"
	}
	return fileSafe(v) + "-" + fileSafe(r.Target) + "-" + fileSafe(r.Mode) + "-report.yaml"
}

// listed gathers the failed and skipped scenarios, sorted by name: those of
// results, and any the report lists that results lacks.
func listed(r *ConformanceReport, results []ScenarioResult) (failed, skipped []ScenarioResult) {
	known := map[string]bool{}
	for _, res := range results {
		known[res.Name] = true
		switch res.Outcome {
		case Failed:
			failed = append(failed, res)
		case Skipped:
			skipped = append(skipped, res)
		}
	}
	add := func(list *[]ScenarioResult, names []string, o Outcome) {
		for _, n := range names {
			if !known[n] {
				known[n] = true
				*list = append(*list, ScenarioResult{Name: n, Outcome: o})
			}
		}
	}
	for _, p := range r.Profiles {
		add(&failed, p.Core.FailedTests, Failed)
		add(&skipped, p.Core.SkippedTests, Skipped)
		if p.Extended != nil {
			add(&failed, p.Extended.FailedTests, Failed)
			add(&skipped, p.Extended.SkippedTests, Skipped)
		}
	}
	byName := func(l []ScenarioResult) {
		sort.Slice(l, func(i, j int) bool { return l[i].Name < l[j].Name })
	}
	byName(failed)
	byName(skipped)
	return failed, skipped
}

func implementationLine(im Implementation) string {
	name := strings.Trim(im.Organization+"/"+im.Project, "/")
	if name == "" {
		return ""
	}
	s := cell(name)
	if im.URL != "" {
		s = "[" + s + "](" + linkTarget(im.URL) + ")"
	}
	if im.Version != "" {
		s += " " + cell(im.Version)
	}
	return s
}

// linkTarget makes a URL safe as a Markdown link destination.
func linkTarget(u string) string {
	return strings.NewReplacer(" ", "%20", "(", "%28", ")", "%29", "<", "%3C", ">", "%3E").Replace(u)
}

func statusCell(s Status) string {
	st := s.Statistics
	return fmt.Sprintf("%s (%d passed, %d failed, %d skipped)", s.Result, st.Passed, st.Failed, st.Skipped)
}

func joinFeatures(fs []conformance.FeatureName) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = string(f)
	}
	return strings.Join(s, ", ")
}

func joinFeaturesComma(fs []conformance.FeatureName) string {
	return strings.ReplaceAll(joinFeatures(fs), ", ", ",")
}

// cell makes text safe inside a Markdown table cell: one line, pipes escaped.
func cell(s string) string {
	return strings.ReplaceAll(inline(s), "|", `\|`)
}

// inline makes text safe in a heading or a sentence: one line, no HTML.
func inline(s string) string {
	return mdText(strings.Join(strings.Fields(s), " "))
}

// mdText keeps text from being read as HTML. Other Markdown in names and
// reasons is harmless and left alone.
func mdText(s string) string {
	return strings.NewReplacer("<", "&lt;", ">", "&gt;").Replace(s)
}

// code renders s as inline code, with a backtick run longer than any in s.
func code(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	tick := strings.Repeat("`", longestRun(s, '`')+1)
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		return tick + " " + s + " " + tick
	}
	return tick + s + tick
}

// fenceFor is a code fence longer than any backtick run in s.
func fenceFor(s string) string {
	n := longestRun(s, '`') + 1
	if n < 3 {
		n = 3
	}
	return strings.Repeat("`", n)
}

func longestRun(s string, c byte) int {
	best, run := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			run++
			if run > best {
				best = run
			}
		} else {
			run = 0
		}
	}
	return best
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789,._-/:=@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			return r
		}
		return '-'
	}, s)
}
