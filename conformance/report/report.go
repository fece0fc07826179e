package report

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/gatecheck/gatecheck/conformance"
)

// APIVersion and Kind identify a gatecheck conformance report. The version
// is bumped whenever the document's meaning changes.
const (
	APIVersion = "gatecheck.dev/v1alpha1"
	Kind       = "ConformanceReport"
)

// The targets a suite runs against.
const (
	// TargetSim is the embedded simulation: every component in one process.
	TargetSim = "sim"
	// TargetKind is a local kind cluster running gatecheck's images.
	TargetKind = "kind"
	// TargetExternal is a deployment gatecheck did not bring up, such as
	// GKE with Apigee.
	TargetExternal = "external"
)

// Targets lists the known targets.
var Targets = []string{TargetSim, TargetKind, TargetExternal}

// ModeDefault is the mode of a run with no implementation-specific setup,
// as in Gateway API.
const ModeDefault = "default"

// ConformanceReport is the result of one conformance run against one target:
// which profiles were tested and, for each, how the core and extended
// scenarios went. Its shape follows Gateway API's ConformanceReport
// (sigs.k8s.io/gateway-api/conformance/apis/v1) under gatecheck's own
// apiVersion.
type ConformanceReport struct {
	// APIVersion is the version of this document's schema; always APIVersion.
	APIVersion string `json:"apiVersion"`

	// Kind is the type of this document; always Kind.
	Kind string `json:"kind"`

	// Date is when the report was generated, in RFC 3339 form.
	Date string `json:"date"`

	// GatecheckVersion is the version of gatecheck, and so of the scenarios,
	// that produced the report.
	GatecheckVersion string `json:"gatecheckVersion"`

	// Target is where the scenarios ran: "sim", "kind" or "external".
	Target string `json:"target"`

	// Implementation describes the implementation that was tested.
	Implementation Implementation `json:"implementation"`

	// Mode is the operating mode the implementation ran the suite in;
	// "default" unless the implementation needs a special setup.
	Mode string `json:"mode"`

	// Profiles holds one report per conformance profile that had at least one
	// scenario in the run.
	Profiles []ProfileReport `json:"profiles"`
}

// Implementation describes the tested implementation and who maintains it.
// The fields match Gateway API's, so the same values can be used for both.
type Implementation struct {
	// Organization is the company, group or individual that maintains the
	// implementation.
	Organization string `json:"organization"`

	// Project is the name of the project or repository of the implementation.
	Project string `json:"project"`

	// URL is where people can learn more about the implementation; for open
	// source projects, the code repository. Certification requires an
	// absolute https URL.
	URL string `json:"url"`

	// Version is the version of the implementation that was tested,
	// preferably semver.
	Version string `json:"version"`

	// Contact is how to reach the maintainers: GitHub users or teams
	// ("@user", "@org/team"), email addresses, or a support page URL.
	Contact []string `json:"contact"`
}

// ProfileReport is the result of the scenarios of one conformance profile.
type ProfileReport struct {
	// Name is the profile, such as "AUTHN".
	Name conformance.ProfileName `json:"name"`

	// Summary is a one-line human-readable account of the results, in
	// Gateway API's words, such as "Core tests succeeded. Extended tests
	// partially succeeded with 1 test skips."
	Summary string `json:"summary"`

	// Core is the result of the scenarios that exercise only core features
	// of the profile: what every implementation must pass to be conformant.
	Core Status `json:"core"`

	// Extended is the result of the scenarios that exercise at least one
	// extended feature of the profile; absent when there were none.
	Extended *ExtendedStatus `json:"extended,omitempty"`
}

// ExtendedStatus is the result of a profile's extended scenarios, with the
// extended features the target claimed and did not claim.
type ExtendedStatus struct {
	// Status is the result of the extended scenarios.
	Status `json:",inline"`

	// SupportedFeatures lists the profile's extended features the target
	// claimed, so their scenarios were run.
	SupportedFeatures []conformance.FeatureName `json:"supportedFeatures,omitempty"`

	// UnsupportedFeatures lists the profile's extended features the target
	// did not claim; their scenarios were skipped.
	UnsupportedFeatures []conformance.FeatureName `json:"unsupportedFeatures,omitempty"`
}

// Status is the result of a group of scenarios.
type Status struct {
	// Result sums the group up: failure if any scenario failed, partial if
	// none failed but some were skipped, success otherwise.
	Result Result `json:"result"`

	// Statistics counts the scenarios by outcome.
	Statistics Statistics `json:"statistics"`

	// SkippedTests names the scenarios that were not run, because the target
	// does not claim a feature they need or because they were excluded.
	// Skipping a core scenario makes the profile's core result partial.
	SkippedTests []string `json:"skippedTests,omitempty"`

	// FailedTests names the scenarios that failed.
	FailedTests []string `json:"failedTests,omitempty"`
}

// Statistics counts scenarios by outcome. The capitalised keys are Gateway
// API's, kept so that tools reading those reports read ours.
type Statistics struct {
	// Passed is how many scenarios passed.
	Passed uint32 `json:"Passed"`

	// Skipped is how many scenarios were not run.
	Skipped uint32 `json:"Skipped"`

	// Failed is how many scenarios failed.
	Failed uint32 `json:"Failed"`
}

// Result sums up a group of scenarios.
type Result string

// The results, as in Gateway API.
const (
	// Success means every scenario passed.
	Success Result = "success"
	// Partial means no scenario failed but some were skipped.
	Partial Result = "partial"
	// Failure means at least one scenario failed.
	Failure Result = "failure"
)

// resultOf applies Gateway API's rule (conformance/utils/suite/reports.go,
// compileResults): any failure fails the group, else any skip makes it
// partial.
func resultOf(s Statistics) Result {
	switch {
	case s.Failed > 0:
		return Failure
	case s.Skipped > 0:
		return Partial
	default:
		return Success
	}
}

// summaryOf words a profile's results as Gateway API's buildSummary does.
func summaryOf(p ProfileReport) string {
	s := "Core tests " + statusSummary(p.Core)
	if p.Extended != nil {
		s += ". Extended tests " + statusSummary(p.Extended.Status)
	}
	return s + "."
}

func statusSummary(s Status) string {
	switch s.Result {
	case Success:
		return "succeeded"
	case Partial:
		return fmt.Sprintf("partially succeeded with %d test skips", s.Statistics.Skipped)
	case Failure:
		return fmt.Sprintf("failed with %d test failures", s.Statistics.Failed)
	}
	return string(s.Result)
}

// Validate checks that the report is well formed and consistent: the
// apiVersion and kind are gatecheck's, the date is RFC 3339, the target and
// every profile and feature are known, and each section's statistics match
// the scenarios it lists and its result matches its statistics. It reports
// every problem it finds, each prefixed with the path of the field.
func (r *ConformanceReport) Validate() error {
	if r == nil {
		return errors.New("report: nil")
	}
	var v validator
	switch r.APIVersion {
	case "":
		v.add("apiVersion", "required")
	case APIVersion:
	default:
		v.add("apiVersion", "%q, want %q", r.APIVersion, APIVersion)
	}
	switch r.Kind {
	case "":
		v.add("kind", "required")
	case Kind:
	default:
		v.add("kind", "%q, want %q", r.Kind, Kind)
	}
	if r.Date == "" {
		v.add("date", "required")
	} else if _, err := time.Parse(time.RFC3339, r.Date); err != nil {
		v.add("date", "%q is not an RFC 3339 time", r.Date)
	}
	if r.GatecheckVersion == "" {
		v.add("gatecheckVersion", "required")
	}
	if r.Target == "" {
		v.add("target", "required")
	} else if !knownTarget(r.Target) {
		v.add("target", "%q is not one of %s", r.Target, strings.Join(Targets, ", "))
	}
	if r.Mode == "" {
		v.add("mode", "required")
	}
	seen := map[conformance.ProfileName]int{}
	for i := range r.Profiles {
		p := &r.Profiles[i]
		path := fmt.Sprintf("profiles[%d]", i)
		switch {
		case p.Name == "":
			v.add(path+".name", "required")
		case !knownProfile(p.Name):
			v.add(path+".name", "%q is not a known profile", p.Name)
		default:
			if j, dup := seen[p.Name]; dup {
				v.add(path+".name", "%q repeats profiles[%d]", p.Name, j)
			}
			seen[p.Name] = i
		}
		if p.Summary == "" {
			v.add(path+".summary", "required")
		}
		v.status(path+".core", p.Core)
		if p.Extended != nil {
			v.status(path+".extended", p.Extended.Status)
			v.features(path+".extended", p.Name, p.Extended)
		}
		// A scenario is either core or extended for a profile, never both.
		if p.Extended != nil {
			core := map[string]bool{}
			for _, n := range append(append([]string(nil), p.Core.FailedTests...), p.Core.SkippedTests...) {
				core[n] = true
			}
			for _, n := range append(append([]string(nil), p.Extended.FailedTests...), p.Extended.SkippedTests...) {
				if core[n] {
					v.add(path+".extended", "scenario %q is also listed under core", n)
				}
			}
		}
	}
	return v.err()
}

// ValidateForCertification checks what Validate checks and, in addition,
// what a report must carry to be published: at least one profile, and an
// implementation with organization, project, an absolute https URL, a
// version and at least one contact.
func (r *ConformanceReport) ValidateForCertification() error {
	if err := r.Validate(); err != nil {
		return err
	}
	var v validator
	im := r.Implementation
	if len(r.Profiles) == 0 {
		v.add("profiles", "at least one profile is required")
	}
	if strings.TrimSpace(im.Organization) == "" {
		v.add("implementation.organization", "required")
	}
	if strings.TrimSpace(im.Project) == "" {
		v.add("implementation.project", "required")
	}
	if im.URL == "" {
		v.add("implementation.url", "required")
	} else if u, err := url.Parse(im.URL); err != nil || u.Scheme != "https" || u.Host == "" {
		v.add("implementation.url", "%q is not an absolute https URL", im.URL)
	}
	if strings.TrimSpace(im.Version) == "" {
		v.add("implementation.version", "required")
	}
	if len(im.Contact) == 0 {
		v.add("implementation.contact", "at least one contact is required")
	}
	for i, c := range im.Contact {
		if strings.TrimSpace(c) == "" {
			v.add(fmt.Sprintf("implementation.contact[%d]", i), "empty")
		}
	}
	return v.err()
}

// validator collects field errors so that one pass reports them all.
type validator struct{ errs []error }

func (v *validator) add(path, format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

func (v *validator) err() error { return errors.Join(v.errs...) }

func (v *validator) status(path string, s Status) {
	st := s.Statistics
	if int(st.Failed) != len(s.FailedTests) {
		v.add(path+".statistics.Failed", "%d but failedTests lists %d", st.Failed, len(s.FailedTests))
	}
	if int(st.Skipped) != len(s.SkippedTests) {
		v.add(path+".statistics.Skipped", "%d but skippedTests lists %d", st.Skipped, len(s.SkippedTests))
	}
	switch s.Result {
	case "":
		v.add(path+".result", "required")
	case Success:
		if st.Failed > 0 {
			v.add(path+".result", "%q but %s failed", s.Result, tests(st.Failed))
		} else if st.Skipped > 0 {
			v.add(path+".result", "%q but %s skipped", s.Result, tests(st.Skipped))
		}
	case Partial:
		if st.Failed > 0 {
			v.add(path+".result", "%q but %s failed", s.Result, tests(st.Failed))
		} else if st.Skipped == 0 {
			v.add(path+".result", "%q but %s skipped", s.Result, tests(st.Skipped))
		}
	case Failure:
		if st.Failed == 0 {
			v.add(path+".result", "%q but %s failed", s.Result, tests(st.Failed))
		}
	default:
		v.add(path+".result", "%q is not one of success, partial, failure", s.Result)
	}
	listed := map[string]string{}
	for _, l := range []struct {
		field string
		names []string
	}{{"failedTests", s.FailedTests}, {"skippedTests", s.SkippedTests}} {
		for i, n := range l.names {
			p := fmt.Sprintf("%s.%s[%d]", path, l.field, i)
			if n == "" {
				v.add(p, "empty")
				continue
			}
			if where, dup := listed[n]; dup {
				v.add(p, "%q is already listed in %s", n, where)
				continue
			}
			listed[n] = l.field
		}
	}
}

// features checks that the claimed and unclaimed features are extended
// features of the profile and that none is both.
func (v *validator) features(path string, profile conformance.ProfileName, e *ExtendedStatus) {
	claimed := map[conformance.FeatureName]bool{}
	for _, l := range []struct {
		field     string
		names     []conformance.FeatureName
		supported bool
	}{{"supportedFeatures", e.SupportedFeatures, true}, {"unsupportedFeatures", e.UnsupportedFeatures, false}} {
		for i, n := range l.names {
			p := fmt.Sprintf("%s.%s[%d]", path, l.field, i)
			f, ok := conformance.LookupFeature(n)
			switch {
			case !ok:
				v.add(p, "%q is not a known feature", n)
				continue
			case f.Profile != profile || f.Core:
				if knownProfile(profile) {
					v.add(p, "%q is not an extended feature of %s", n, profile)
				}
				continue
			}
			if was, dup := claimed[n]; dup {
				if was == l.supported {
					v.add(p, "%q is listed twice", n)
				} else {
					v.add(p, "%q is also listed in supportedFeatures", n)
				}
				continue
			}
			claimed[n] = l.supported
		}
	}
}

// tests words a count of tests: "1 test", "0 tests".
func tests(n uint32) string {
	if n == 1 {
		return "1 test"
	}
	return fmt.Sprintf("%d tests", n)
}

func knownTarget(t string) bool {
	for _, k := range Targets {
		if t == k {
			return true
		}
	}
	return false
}

func knownProfile(p conformance.ProfileName) bool {
	for _, k := range conformance.Profiles {
		if p == k {
			return true
		}
	}
	return false
}
