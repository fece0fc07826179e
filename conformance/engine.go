package conformance

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/gatecheck/gatecheck/conformance/harness"
)

// stateKey is the key of a scenario's state in testscript's Env.Values.
type stateKey struct{}

// scenario is the state of one running scenario: the target it talks to,
// the names it provisioned, and the last answer it got.
type scenario struct {
	ctx    context.Context
	target harness.Target
	owned  []harness.Target // targets started by `topology`, closed at the end
	id     string           // appended to every name the scenario provisions
	client *http.Client

	mu     sync.Mutex
	last   *exchange
	counts map[int]int
	burst  []*exchange // every answer of the last burst, for tally

	// The app `apigee app create` made last, for the key and app commands.
	developer, app, key string
}

func (s *scenario) close() {
	for _, t := range s.owned {
		_ = t.Close()
	}
}

// unique turns a name a scenario uses into one no other scenario uses, so
// scenarios run in parallel against one organisation.
func (s *scenario) unique(name string) string { return name + "-" + s.id }

func newID() string {
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
	var b [6]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return string(b[:])
}

func state(ts *testscript.TestScript) *scenario {
	return ts.Value(stateKey{}).(*scenario)
}

// params are the testscript parameters for running scenarios against a
// target: the setup that gives each scenario its own state, the commands,
// and the conditions.
func params(ctx context.Context, target harness.Target, claimed map[FeatureName]bool, workRoot string) testscript.Params {
	cmds := map[string]func(ts *testscript.TestScript, neg bool, args []string){}
	for _, c := range Commands {
		run := c.Run
		name := c.Name
		usage := c.Usage()
		cmds[name] = func(ts *testscript.TestScript, neg bool, args []string) {
			if err := run(ts, state(ts), neg, args); err != nil {
				if ue, ok := err.(usageError); ok {
					ts.Fatalf("%s: %s\nusage: %s", name, ue.msg, usage)
				}
				ts.Fatalf("%s: %v", name, err)
			}
		}
	}
	return testscript.Params{
		WorkdirRoot: workRoot,
		Setup: func(env *testscript.Env) error {
			s := &scenario{ctx: ctx, target: target, id: newID(), client: &http.Client{Timeout: 60 * time.Second}}
			env.Values[stateKey{}] = s
			env.Defer(s.close)
			env.Setenv("GATEWAY", target.GatewayURL())
			env.Setenv("TARGET", target.Name())
			if models := target.Models(); len(models) > 0 {
				env.Setenv("MODEL", models[0])
			}
			if k := target.Keys()["default"]; k != "" {
				env.Setenv("DEFAULT_KEY", k)
			}
			env.Setenv("SCENARIO_ID", s.id)
			return nil
		},
		Cmds: cmds,
		Condition: func(cond string) (bool, error) {
			caps := target.Capabilities()
			switch {
			case cond == "sim" || cond == "kind" || cond == "external":
				return target.Name() == cond, nil
			case cond == "clock":
				return caps.Clock, nil
			case cond == "provision":
				return caps.Provision, nil
			case cond == "components":
				return caps.Components, nil
			case cond == "traces":
				return caps.Traces, nil
			case cond == "ollama":
				return caps.Ollama, nil
			case strings.HasPrefix(cond, "feature:"):
				f := FeatureName(strings.TrimPrefix(cond, "feature:"))
				if _, ok := LookupFeature(f); !ok {
					return false, fmt.Errorf("unknown feature %q", f)
				}
				return claimed[f], nil
			}
			return false, fmt.Errorf("unknown condition %q (known: sim, kind, external, clock, provision, components, traces, ollama, feature:NAME)", cond)
		},
	}
}

// usageError is a bad invocation: the message is followed by the usage line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// traceNote is the decision trace of the last answer, for failure messages:
// why the runtime allowed or refused it.
func (s *scenario) traceNote() string {
	s.mu.Lock()
	last := s.last
	s.mu.Unlock()
	if last == nil || last.traceID == "" || !s.target.Capabilities().Traces {
		return ""
	}
	b, err := s.target.Trace(s.ctx, last.traceID)
	if err != nil {
		return ""
	}
	var tr struct {
		Outcome string
		Fault   string
		Steps   []struct{ Phase, Policy, Kind, Outcome string }
	}
	if json.Unmarshal(b, &tr) != nil {
		return ""
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "\ndecision trace %s: %s %s", last.traceID, tr.Outcome, tr.Fault)
	for _, st := range tr.Steps {
		fmt.Fprintf(&sb, "\n  %s %s (%s): %s", st.Phase, st.Policy, st.Kind, st.Outcome)
	}
	return sb.String()
}

// overlayDir is where a scenario's own topology files are: $WORK/topology.
func overlayDir(ts *testscript.TestScript) (string, error) {
	dir := ts.MkAbs("topology")
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		return "", fmt.Errorf("no topology/ files in the scenario (add -- topology/<file>.yaml -- sections)")
	}
	return filepath.Clean(dir), nil
}
