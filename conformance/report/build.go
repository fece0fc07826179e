package report

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/gatecheck/gatecheck/conformance"
)

// Outcome is how one scenario ended.
type Outcome string

// The outcomes.
const (
	Passed  Outcome = "passed"
	Failed  Outcome = "failed"
	Skipped Outcome = "skipped"
)

// ScenarioResult is the outcome of one scenario: the input to Build and the
// writers.
type ScenarioResult struct {
	// Name is the scenario's path under scenarios/ without its extension,
	// such as "authn/key_missing". The part before the first slash is its
	// area.
	Name string
	// Features are the features the scenario names.
	Features []conformance.FeatureName
	// Outcome is how it ended.
	Outcome Outcome
	// Reason is the failure message of a failed scenario or the reason a
	// skipped one was not run; empty for a passed one.
	Reason string
	// Started is when the scenario started; the zero time if unknown. The
	// earliest start becomes the JUnit suite's timestamp.
	Started time.Time
	// Duration is how long it ran.
	Duration time.Duration
	// Log is the scenario's log, written to JUnit's system-out.
	Log string
}

// Options describes the run a report is built for.
type Options struct {
	// Implementation describes the implementation that was tested.
	Implementation Implementation
	// Target is where the scenarios ran: TargetSim, TargetKind or
	// TargetExternal.
	Target string
	// Version is gatecheck's version.
	Version string
	// Profiles are the profiles to report on, in report order; empty means
	// conformance.Profiles. A scenario in none of them is left out of the
	// report. A profile none of whose scenarios ran is left out too, as in
	// Gateway API.
	Profiles []conformance.ProfileName
	// Supported are the features the target claims.
	Supported []conformance.FeatureName
	// Unsupported are features the target explicitly does not claim; they
	// win over Supported. Every extended feature of a reported profile that
	// is not supported is listed as unsupported.
	Unsupported []conformance.FeatureName
	// Date is when the run happened; required, so that building a report is
	// deterministic.
	Date time.Time
	// Mode is the implementation's operating mode; empty means ModeDefault.
	Mode string
}

// Build computes the conformance report of a run. A scenario belongs to a
// profile when any of its features is in that profile; it is core for the
// profile when all of its features in that profile are core, extended
// otherwise. Skipped scenarios are counted as skipped whatever the reason,
// including a feature the target does not claim.
//
// Build returns an error, and no report, when an option or a result is
// invalid: an unknown target, profile, feature or outcome, an unnamed or
// repeated scenario, or a missing date or version.
func Build(results []ScenarioResult, opts Options) (*ConformanceReport, error) {
	if err := checkOptions(opts); err != nil {
		return nil, err
	}
	if err := checkResults(results); err != nil {
		return nil, err
	}
	profiles := opts.Profiles
	if len(profiles) == 0 {
		profiles = conformance.Profiles
	}
	mode := opts.Mode
	if mode == "" {
		mode = ModeDefault
	}

	unsupported := map[conformance.FeatureName]bool{}
	for _, f := range opts.Unsupported {
		unsupported[f] = true
	}
	supported := map[conformance.FeatureName]bool{}
	for _, f := range opts.Supported {
		if !unsupported[f] {
			supported[f] = true
		}
	}

	// Scenario names are listed sorted, as Gateway API's Report sorts them,
	// so the report does not depend on the order scenarios finished in.
	sorted := append([]ScenarioResult(nil), results...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })

	r := &ConformanceReport{
		APIVersion:       APIVersion,
		Kind:             Kind,
		Date:             opts.Date.UTC().Format(time.RFC3339),
		GatecheckVersion: opts.Version,
		Target:           opts.Target,
		Implementation:   opts.Implementation,
		Mode:             mode,
		Profiles:         []ProfileReport{},
	}
	done := map[conformance.ProfileName]bool{}
	for _, name := range profiles {
		if done[name] {
			continue
		}
		done[name] = true
		p, ok := buildProfile(name, sorted, supported)
		if ok {
			r.Profiles = append(r.Profiles, p)
		}
	}
	if err := r.Validate(); err != nil {
		// Build made an invalid report: a bug here, not in the input.
		return nil, fmt.Errorf("report: built an invalid report: %w", err)
	}
	return r, nil
}

// buildProfile reports the scenarios of one profile; ok is false when none
// belongs to it.
func buildProfile(name conformance.ProfileName, results []ScenarioResult, supported map[conformance.FeatureName]bool) (p ProfileReport, ok bool) {
	p.Name = name
	for _, res := range results {
		in, core := classify(name, res.Features)
		if !in {
			continue
		}
		ok = true
		s := &p.Core
		if !core {
			if p.Extended == nil {
				p.Extended = &ExtendedStatus{}
			}
			s = &p.Extended.Status
		}
		switch res.Outcome {
		case Passed:
			s.Statistics.Passed++
		case Failed:
			s.Statistics.Failed++
			s.FailedTests = append(s.FailedTests, res.Name)
		case Skipped:
			s.Statistics.Skipped++
			s.SkippedTests = append(s.SkippedTests, res.Name)
		}
	}
	if !ok {
		return p, false
	}
	p.Core.Result = resultOf(p.Core.Statistics)
	if p.Extended != nil {
		p.Extended.Result = resultOf(p.Extended.Statistics)
		// As in Gateway API, the claims are listed only beside extended
		// results, and only the profile's extended features.
		_, extended := conformance.ProfileFeatures(name)
		for _, f := range extended {
			if supported[f] {
				p.Extended.SupportedFeatures = append(p.Extended.SupportedFeatures, f)
			} else {
				p.Extended.UnsupportedFeatures = append(p.Extended.UnsupportedFeatures, f)
			}
		}
	}
	p.Summary = summaryOf(p)
	return p, true
}

// classify says whether a scenario naming features belongs to the profile
// and, if so, whether it is core there: every one of its features in the
// profile is core.
func classify(profile conformance.ProfileName, features []conformance.FeatureName) (in, core bool) {
	core = true
	for _, n := range features {
		f, _ := conformance.LookupFeature(n)
		if f.Profile != profile {
			continue
		}
		in = true
		if !f.Core {
			core = false
		}
	}
	return in, in && core
}

func checkOptions(opts Options) error {
	var errs []error
	if opts.Target == "" {
		errs = append(errs, errors.New("options: target is required"))
	} else if !knownTarget(opts.Target) {
		errs = append(errs, fmt.Errorf("options: unknown target %q", opts.Target))
	}
	if opts.Version == "" {
		errs = append(errs, errors.New("options: gatecheck version is required"))
	}
	if opts.Date.IsZero() {
		errs = append(errs, errors.New("options: date is required"))
	}
	for _, p := range opts.Profiles {
		if !knownProfile(p) {
			errs = append(errs, fmt.Errorf("options: unknown profile %q", p))
		}
	}
	for _, list := range [][]conformance.FeatureName{opts.Supported, opts.Unsupported} {
		for _, f := range list {
			if _, ok := conformance.LookupFeature(f); !ok {
				errs = append(errs, fmt.Errorf("options: unknown feature %q", f))
			}
		}
	}
	return errors.Join(errs...)
}

func checkResults(results []ScenarioResult) error {
	var errs []error
	seen := map[string]bool{}
	for i, res := range results {
		if res.Name == "" {
			errs = append(errs, fmt.Errorf("results[%d]: scenario name is required", i))
		} else if seen[res.Name] {
			errs = append(errs, fmt.Errorf("results[%d]: scenario %q is listed twice", i, res.Name))
		}
		seen[res.Name] = true
		switch res.Outcome {
		case Passed, Failed, Skipped:
		default:
			errs = append(errs, fmt.Errorf("results[%d]: scenario %q: unknown outcome %q", i, res.Name, res.Outcome))
		}
		for _, f := range res.Features {
			if _, ok := conformance.LookupFeature(f); !ok {
				errs = append(errs, fmt.Errorf("results[%d]: scenario %q: unknown feature %q", i, res.Name, f))
			}
		}
	}
	return errors.Join(errs...)
}
