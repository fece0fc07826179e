package conformance

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/gatecheck/gatecheck/conformance/harness"
	"github.com/gatecheck/gatecheck/scenarios"
)

// Outcome is what happened to a scenario.
type Outcome string

// Outcomes.
const (
	Passed  Outcome = "passed"
	Failed  Outcome = "failed"
	Skipped Outcome = "skipped"
)

// Result is one scenario's outcome.
type Result struct {
	Name     string
	Area     string
	Purpose  string
	Features []FeatureName
	Outcome  Outcome
	// Reason is the failure (file:line and message) or why it was skipped.
	Reason   string
	Started  time.Time
	Duration time.Duration
	// Log is the scenario's log: each command and its output.
	Log string
}

// Options select and run scenarios.
type Options struct {
	// Scenarios are the scenario files (<area>/<name>.txtar); nil means the
	// embedded ones.
	Scenarios fs.FS
	// Run keeps only scenarios whose name matches; Skip drops those whose
	// name matches. Nil keeps all.
	Run, Skip *regexp.Regexp
	// Profiles keeps scenarios that exercise a feature of one of these
	// profiles; empty means all.
	Profiles []ProfileName
	// Supported are the features the target claims; nil means every
	// registered feature. Exempt features are removed from them.
	Supported, Exempt []FeatureName
	// Concurrency bounds how many scenarios run at once; zero means 4 per CPU.
	Concurrency int
	// Progress receives a line per finished scenario and failures as they
	// happen; nil is silent.
	Progress io.Writer
	// WorkDir is where scenario work directories go; empty means a
	// temporary directory, removed afterwards.
	WorkDir string
}

// Claimed is the set of features a target claims under these options.
func (o Options) Claimed() map[FeatureName]bool {
	claimed := map[FeatureName]bool{}
	if o.Supported == nil {
		for _, f := range Features {
			claimed[f.Name] = true
		}
	} else {
		for _, f := range o.Supported {
			claimed[f] = true
		}
	}
	for _, f := range o.Exempt {
		delete(claimed, f)
	}
	return claimed
}

// Select loads the scenarios and decides, before anything runs, which run and
// which are skipped and why (a feature the target does not claim, a
// capability it lacks). Scenarios filtered out by Run, Skip or Profiles are
// not returned at all.
func Select(target harness.Target, opts Options) (run []Scenario, skipped []Result, err error) {
	fsys := opts.Scenarios
	if fsys == nil {
		fsys = scenarios.FS
	}
	all, err := LoadScenarios(fsys)
	if err != nil {
		return nil, nil, err
	}
	claimed := opts.Claimed()
	caps := target.Capabilities()
	have := map[string]bool{"provision": caps.Provision, "clock": caps.Clock, "components": caps.Components, "topology": caps.Topology}
	for _, s := range all {
		if opts.Run != nil && !opts.Run.MatchString(s.Name) {
			continue
		}
		if opts.Skip != nil && opts.Skip.MatchString(s.Name) {
			continue
		}
		if len(opts.Profiles) > 0 && !inProfiles(s, opts.Profiles) {
			continue
		}
		var reasons []string
		for _, f := range s.Features {
			if !claimed[f] {
				reasons = append(reasons, fmt.Sprintf("the target does not claim feature %s", f))
			}
		}
		for _, n := range s.Needs {
			if !have[n] {
				reasons = append(reasons, fmt.Sprintf("target %s cannot %s", target.Name(), needText[n]))
			}
		}
		if len(reasons) > 0 {
			skipped = append(skipped, Result{Name: s.Name, Area: s.Area, Purpose: s.Purpose, Features: s.Features, Outcome: Skipped, Reason: strings.Join(reasons, "; ")})
			continue
		}
		run = append(run, s)
	}
	return run, skipped, nil
}

var needText = map[string]string{
	"provision":  "provision developers, apps and products (no management API)",
	"clock":      "move time forward",
	"components": "stop and start components",
	"topology":   "take a topology of the scenario's own",
}

func inProfiles(s Scenario, ps []ProfileName) bool {
	for _, f := range s.Features {
		if feat, ok := LookupFeature(f); ok && slices.Contains(ps, feat.Profile) {
			return true
		}
	}
	return false
}

// Run runs the selected scenarios against the target, outside `go test`,
// through testscript's RunT, and returns every result (skipped ones
// included), sorted by name.
func Run(ctx context.Context, target harness.Target, opts Options) ([]Result, error) {
	return run(ctx, target, opts, nil)
}

// RunT runs the selected scenarios as subtests of t (under `go test`), and
// returns the results.
func RunT(ctx context.Context, t testscript.T, target harness.Target, opts Options) ([]Result, error) {
	return run(ctx, target, opts, t)
}

func run(ctx context.Context, target harness.Target, opts Options, parent testscript.T) ([]Result, error) {
	selected, results, err := Select(target, opts)
	if err != nil {
		return nil, err
	}
	p := newProgress(opts.Progress, len(selected)+len(results))
	for _, r := range results {
		p.done(r)
	}
	if len(selected) > 0 {
		dir := opts.WorkDir
		if dir == "" {
			if dir, err = os.MkdirTemp("", "gatecheck-scenarios-"); err != nil {
				return nil, err
			}
			defer os.RemoveAll(dir)
		}
		scripts := filepath.Join(dir, "scripts")
		work := filepath.Join(dir, "work")
		for _, d := range []string{scripts, work} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return nil, err
			}
		}
		byFile := map[string]Scenario{}
		var files []string
		for _, s := range selected {
			// testscript names a script by its base name: make it unique.
			base := strings.ReplaceAll(s.Name, "/", "_")
			f := filepath.Join(scripts, base+".txtar")
			if err := os.WriteFile(f, s.Script, 0o644); err != nil {
				return nil, err
			}
			files = append(files, f)
			byFile[base] = s
		}
		rec := &recorder{byName: byFile, progress: p, scripts: scripts}
		params := params(ctx, target, opts.Claimed(), work)
		params.Files = files
		conc := opts.Concurrency
		if conc <= 0 {
			conc = 4 * runtime.GOMAXPROCS(0)
		}
		if parent != nil {
			// The scenarios are parallel subtests: they run once the
			// function that started them returns. Start them inside a group
			// subtest, whose Run returns only when all of them have ended.
			parent.Run("scenarios", func(t testscript.T) {
				testscript.RunT(&goTestT{T: t, rec: rec}, params)
			})
		} else {
			ct := &cliT{rec: rec, sem: make(chan struct{}, conc)}
			testscript.RunT(ct, params)
			ct.wg.Wait()
		}
		results = append(results, rec.results...)
	}
	sort.Slice(results, func(i, j int) bool { return results[i].Name < results[j].Name })
	return results, nil
}

// recorder collects results as scenarios finish.
type recorder struct {
	scripts  string // where the scripts were written, to be named by their own paths in messages
	mu       sync.Mutex
	byName   map[string]Scenario
	results  []Result
	progress *progress
}

func (r *recorder) record(name string, failed, skipped bool, skipReason, log string, started time.Time) {
	s := r.byName[name]
	// Messages name the scenario file as the user knows it, not the copy run.
	log = strings.ReplaceAll(log, filepath.Join(r.scripts, name+".txtar"), "scenarios/"+s.Name+".txtar")
	res := Result{Name: s.Name, Area: s.Area, Purpose: s.Purpose, Features: s.Features, Started: started, Duration: time.Since(started), Log: log}
	switch {
	case failed:
		res.Outcome, res.Reason = Failed, failureReason(log)
	case skipped:
		res.Outcome, res.Reason = Skipped, skipReason
	default:
		res.Outcome = Passed
	}
	r.mu.Lock()
	r.results = append(r.results, res)
	r.mu.Unlock()
	r.progress.done(res)
}

// failureReason is the FAIL line testscript wrote (file:line: message, with
// what follows it), or the log's tail.
func failureReason(log string) string {
	if i := strings.LastIndex(log, "FAIL: "); i >= 0 {
		return strings.TrimSpace(log[i+len("FAIL: "):])
	}
	log = strings.TrimSpace(log)
	if len(log) > 500 {
		log = "…" + log[len(log)-500:]
	}
	return log
}

// progress prints a line per finished scenario and failures in full.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	total int
	n     int
	count map[Outcome]int
}

func newProgress(w io.Writer, total int) *progress {
	return &progress{w: w, total: total, count: map[Outcome]int{}}
}

func (p *progress) done(r Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	p.count[r.Outcome]++
	if p.w == nil {
		return
	}
	switch r.Outcome {
	case Failed:
		fmt.Fprintf(p.w, "[%d/%d] FAIL %s (%s)\n    %s\n", p.n, p.total, r.Name, r.Duration.Round(time.Millisecond), strings.ReplaceAll(r.Reason, "\n", "\n    "))
	case Skipped:
		fmt.Fprintf(p.w, "[%d/%d] SKIP %s: %s\n", p.n, p.total, r.Name, r.Reason)
	default:
		fmt.Fprintf(p.w, "[%d/%d] PASS %s (%s)\n", p.n, p.total, r.Name, r.Duration.Round(time.Millisecond))
	}
}

// cliT is testscript.T outside `go test`: each scenario runs on its own
// goroutine (bounded by sem), and its outcome is recorded when it ends.
type cliT struct {
	rec *recorder
	sem chan struct{}
	wg  sync.WaitGroup
}

func (t *cliT) Run(name string, f func(testscript.T)) {
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		t.sem <- struct{}{}
		defer func() { <-t.sem }()
		sub := &cliSubT{name: name}
		start := time.Now()
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer func() {
				if v := recover(); v != nil {
					sub.failed = true
					sub.logs.WriteString(fmt.Sprintf("FAIL: panic: %v\n", v))
				}
			}()
			f(sub)
		}()
		<-done
		t.rec.record(name, sub.failed, sub.skipped, sub.skipReason, sub.logs.String(), start)
	}()
}

func (t *cliT) Skip(args ...any) {
	panic("gatecheck: testscript skipped the whole run: " + fmt.Sprint(args...))
}
func (t *cliT) Fatal(args ...any) {
	panic("gatecheck: testscript failed the whole run: " + fmt.Sprint(args...))
}
func (t *cliT) Parallel()       {}
func (t *cliT) Log(args ...any) {}
func (t *cliT) FailNow()        { panic("gatecheck: testscript failed the whole run") }
func (t *cliT) Verbose() bool   { return false }

// cliSubT is one scenario's T: FailNow and Skip end its goroutine, as they
// do in the testing package.
type cliSubT struct {
	name       string
	mu         sync.Mutex
	logs       strings.Builder
	failed     bool
	skipped    bool
	skipReason string
}

func (t *cliSubT) Skip(args ...any) {
	t.mu.Lock()
	t.skipped, t.skipReason = true, strings.TrimSpace(fmt.Sprint(args...))
	t.mu.Unlock()
	runtime.Goexit()
}

func (t *cliSubT) Fatal(args ...any) {
	t.Log(args...)
	t.FailNow()
}

func (t *cliSubT) Parallel() {}

func (t *cliSubT) Log(args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.logs.WriteString(fmt.Sprintln(args...))
}

func (t *cliSubT) FailNow() {
	t.mu.Lock()
	t.failed = true
	t.mu.Unlock()
	runtime.Goexit()
}

func (t *cliSubT) Run(name string, f func(testscript.T)) { f(t) }

// Verbose makes testscript log every scenario, so passing ones keep their
// log for the JUnit report too.
func (t *cliSubT) Verbose() bool { return true }

// goTestT adapts `go test`'s T so outcomes are recorded as well as reported.
type goTestT struct {
	testscript.T
	rec *recorder
}

// skipper is the part of *testing.T that says whether and why it skipped.
type testingT interface {
	testscript.T
	Failed() bool
	Skipped() bool
	Cleanup(func())
}

func (t *goTestT) Run(name string, f func(testscript.T)) {
	t.T.Run(name, func(sub testscript.T) {
		start := time.Now()
		logs := &logT{T: sub}
		defer func() {
			failed, skipped := false, false
			if tt, ok := sub.(testingT); ok {
				failed, skipped = tt.Failed(), tt.Skipped()
			}
			t.rec.record(name, failed, skipped, logs.skipReason, logs.String(), start)
		}()
		f(logs)
	})
}

// logT keeps a copy of what a scenario logs.
type logT struct {
	testscript.T
	mu         sync.Mutex
	b          strings.Builder
	skipReason string
}

func (l *logT) Log(args ...any) {
	l.mu.Lock()
	l.b.WriteString(fmt.Sprintln(args...))
	l.mu.Unlock()
	l.T.Log(args...)
}

func (l *logT) Skip(args ...any) {
	l.mu.Lock()
	l.skipReason = strings.TrimSpace(fmt.Sprint(args...))
	l.mu.Unlock()
	l.T.Skip(args...)
}

func (l *logT) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestingT adapts *testing.T to testscript.T, for RunT under `go test`.
func TestingT(t *testing.T) testscript.T { return testingAdapter{t} }

type testingAdapter struct{ *testing.T }

func (t testingAdapter) Run(name string, f func(testscript.T)) {
	t.T.Run(name, func(t *testing.T) { f(testingAdapter{t}) })
}

func (t testingAdapter) Verbose() bool { return testing.Verbose() }
