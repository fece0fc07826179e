package conformance

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/gatecheck/gatecheck/conformance/harness"
)

// Command is one scenario command: its name, how it is called, what it does,
// and its implementation. The registry (Commands) is the single source of the
// README's command reference.
type Command struct {
	Name    string
	Args    string
	Summary string
	Detail  string
	Run     func(ts *testscript.TestScript, s *scenario, neg bool, args []string) error
}

// Usage is the command's one-line usage.
func (c Command) Usage() string {
	if c.Args == "" {
		return c.Name
	}
	return c.Name + " " + c.Args
}

// Commands are the scenario commands, beyond testscript's own (exec, stdout,
// env, skip, ...).
var Commands []Command

func init() {
	Commands = []Command{
		{
			Name: "chat", Args: "[--model M] [--stream] [--max-tokens N] [--system TEXT] [--path P] [credentials] PROMPT...",
			Summary: "send an OpenAI chat completion through the gateway",
			Detail: "Sends POST /v1/chat/completions with one user message. --stream asks for SSE with usage in the last chunk. " +
				"A successful answer's text goes to stdout (so `stdout REGEXP` checks it); status, headers, fault and usage are kept for the assertions. " +
				"--model - sends no model at all. Credentials: --key K, --no-key, --bearer TOKEN, --key-query PARAM, --header NAME:VALUE; by default the key is $KEY, else the target's default key.",
			Run: traffic(chatRequest("chat")),
		},
		{
			Name: "complete", Args: "[--model M] [--stream] [--max-tokens N] [credentials] PROMPT...",
			Summary: "send an OpenAI completion (POST /v1/completions) through the gateway",
			Run:     traffic(chatRequest("complete")),
		},
		{
			Name: "ollama-chat", Args: "[--model M] [--stream] [--num-predict N] [credentials] PROMPT...",
			Summary: "send an Ollama chat (POST /api/chat) through the gateway",
			Detail:  "Without --stream the request says stream:false and gets one JSON object; with it, an NDJSON stream whose final object carries prompt_eval_count and eval_count.",
			Run:     traffic(ollamaRequest("ollama-chat")),
		},
		{
			Name: "ollama-generate", Args: "[--model M] [--stream] [--num-predict N] [credentials] PROMPT...",
			Summary: "send an Ollama generate (POST /api/generate) through the gateway",
			Run:     traffic(ollamaRequest("ollama-generate")),
		},
		{
			Name: "request", Args: "[--body FILE] [--content-type T] [credentials] METHOD PATH",
			Summary: "send any request through the gateway",
			Detail:  "The body is the content of a file of the scenario (a -- FILE -- section).",
			Run:     traffic(rawRequest),
		},
		{
			Name: "status", Args: "CODE",
			Summary: "the last answer's HTTP status is CODE (with !, is not)",
			Run:     cmdStatus,
		},
		{
			Name: "fault", Args: "ERRORCODE [FAULTSTRING-REGEXP]",
			Summary: "the last answer is Apigee's fault JSON with this errorcode (with !, carries no fault)",
			Detail:  "Reads {\"fault\":{\"faultstring\":...,\"detail\":{\"errorcode\":...}}}. The optional regexp must match the faultstring.",
			Run:     cmdFault,
		},
		{
			Name: "header", Args: "NAME [REGEXP]",
			Summary: "the last answer has header NAME, matching REGEXP if given (with !, has no such header or no match)",
			Run:     cmdHeader,
		},
		{
			Name: "json", Args: "PATH VALUE",
			Summary: "the last answer's JSON has VALUE at PATH (with !, something else)",
			Detail:  "PATH is dotted with indexes: choices.0.message.role, usage.total_tokens. VALUE is compared as text; numbers by value.",
			Run:     cmdJSON,
		},
		{
			Name: "usage", Args: "prompt|completion|total OP N",
			Summary: "the last answer's token usage compares to N (OP is ==, !=, <, <=, >, >=)",
			Detail:  "Usage is OpenAI's usage (streamed: the usage chunk) or Ollama's prompt_eval_count and eval_count.",
			Run:     cmdUsage,
		},
		{
			Name: "trace", Args: "",
			Summary: "print the decision trace of the last answer (needs a target with traces)",
			Detail:  "Traces are also added to every failed assertion's message when the target keeps them.",
			Run:     cmdTrace,
		},
		{
			Name: "burst", Args: "N [-c CONCURRENCY] COMMAND ARGS...",
			Summary: "send a traffic command N times, CONCURRENCY at once (default N), and count the statuses",
			Detail:  "COMMAND is chat, complete, ollama-chat, ollama-generate or request. Check the statuses with counts. The last refused answer (else the last answer) is kept for status, fault and header.",
			Run:     cmdBurst,
		},
		{
			Name: "tally", Args: "HEADER REGEXP MIN..MAX",
			Summary: "between MIN and MAX answers of the last burst carry HEADER matching REGEXP",
			Detail:  "For splits that are right only on average (weighted backends, load spreading): `tally x-inference-pod '^blue-' 45..75` after `burst 200 ...`.",
			Run:     cmdTally,
		},
		{
			Name: "counts", Args: "STATUS=N...",
			Summary: "the last burst got exactly these numbers of each status, and no other status",
			Run:     cmdCounts,
		},
		{
			Name: "clock", Args: "advance DURATION",
			Summary: "move the target's time forward (free on sim; needs the [clock] capability)",
			Run:     cmdClock,
		},
		{
			Name: "component", Args: "stop|start apigee|picker",
			Summary: "stop or start the Apigee runtime or the endpoint picker (needs the [components] capability)",
			Run:     cmdComponent,
		},
		{
			Name: "topology", Args: "",
			Summary: "run the rest of the scenario on a fresh target whose topology is the default plus the scenario's topology/ files",
			Detail: "Files under topology/ are added to (or replace) the default manifests: YAML objects, and policy XML as " +
				"topology/policies/<APIMExtensionPolicy>/request/*.xml or .../response/*.xml. Sets $GATEWAY and $DEFAULT_KEY anew. Needs the [topology] capability (sim).",
			Run: cmdTopology,
		},
		{
			Name: "apigee", Args: "product|app|key|developer|token ...",
			Summary: "provision through the management API (see below); names are made unique to the scenario",
			Detail: "apigee product create NAME [--op PATH[:METHOD|METHOD]]... [--models M,M] [--quota N/[K]UNIT] [--token-quota N/[K]UNIT] [--scopes S,S] [--attr NAME=VALUE]... [--approval auto|manual] [--source POLICY]\n" +
				"apigee app create NAME --products P,P [--key-expires DURATION] [--scopes S,S]  (exports KEY, SECRET, APP)\n" +
				"apigee app approve|revoke | apigee key approve|revoke | apigee key add-product P | apigee key remove-product P | apigee key product approve|revoke P\n" +
				"apigee developer activate|deactivate | apigee token [--scope S]... (exports TOKEN)",
			Run: cmdApigee,
		},
	}
	sort.Slice(Commands, func(i, j int) bool { return Commands[i].Name < Commands[j].Name })
}

// traffic wraps a request builder as a command: it sends, records the
// answer, and writes the answer's text to stdout.
func traffic(f trafficFunc) func(ts *testscript.TestScript, s *scenario, neg bool, args []string) error {
	return func(ts *testscript.TestScript, s *scenario, neg bool, args []string) error {
		if neg {
			return usagef("traffic commands cannot be negated: check the answer with status or fault")
		}
		x, err := f(ts, s, args)
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.last = x
		s.mu.Unlock()
		if x.err != nil {
			if ue, ok := x.err.(usageError); ok {
				return ue
			}
			return fmt.Errorf("no answer: %v", x.err)
		}
		// Only an answer goes to stdout, not an error body: `! stdout .`
		// after a refusal means "the model said nothing". Stdout is taken
		// either way, so it never holds an earlier command's output.
		out := ts.Stdout()
		if x.status >= 200 && x.status < 300 {
			fmt.Fprint(out, x.text)
			if x.text != "" && !strings.HasSuffix(x.text, "\n") {
				fmt.Fprintln(out)
			}
		}
		return nil
	}
}

func (s *scenario) lastExchange() (*exchange, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		return nil, fmt.Errorf("no request has been made yet")
	}
	return s.last, nil
}

// failf is an assertion failure: the message, what the answer was, and the
// runtime's decision trace when there is one.
func (s *scenario) failf(x *exchange, format string, args ...any) error {
	return fmt.Errorf("%s (%s)%s", fmt.Sprintf(format, args...), x.describe(), s.traceNote())
}

func cmdStatus(_ *testscript.TestScript, s *scenario, neg bool, args []string) error {
	if len(args) != 1 {
		return usagef("want one status code")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil || want < 100 || want > 599 {
		return usagef("%q is not an HTTP status", args[0])
	}
	x, err := s.lastExchange()
	if err != nil {
		return err
	}
	if (x.status == want) == neg {
		if neg {
			return s.failf(x, "status is %d, want anything else", want)
		}
		return s.failf(x, "status is %d, want %d", x.status, want)
	}
	return nil
}

func cmdFault(_ *testscript.TestScript, s *scenario, neg bool, args []string) error {
	x, err := s.lastExchange()
	if err != nil {
		return err
	}
	f, ok := x.fault()
	if neg {
		if len(args) > 0 {
			return usagef("! fault takes no arguments")
		}
		if ok {
			return s.failf(x, "the answer carries fault %s", f.Fault.Detail.ErrorCode)
		}
		return nil
	}
	if len(args) < 1 || len(args) > 2 {
		return usagef("want ERRORCODE [FAULTSTRING-REGEXP]")
	}
	if !ok {
		return s.failf(x, "the answer is not an Apigee fault, want %s", args[0])
	}
	if f.Fault.Detail.ErrorCode != args[0] {
		return s.failf(x, "fault is %s, want %s", f.Fault.Detail.ErrorCode, args[0])
	}
	if len(args) == 2 {
		re, err := regexp.Compile(args[1])
		if err != nil {
			return usagef("bad regexp: %v", err)
		}
		if !re.MatchString(f.Fault.FaultString) {
			return s.failf(x, "faultstring %q does not match %q", f.Fault.FaultString, args[1])
		}
	}
	return nil
}

func cmdHeader(_ *testscript.TestScript, s *scenario, neg bool, args []string) error {
	if len(args) < 1 || len(args) > 2 {
		return usagef("want NAME [REGEXP]")
	}
	x, err := s.lastExchange()
	if err != nil {
		return err
	}
	vals := x.header.Values(args[0])
	match := len(vals) > 0
	if len(args) == 2 {
		re, err := regexp.Compile(args[1])
		if err != nil {
			return usagef("bad regexp: %v", err)
		}
		match = false
		for _, v := range vals {
			if re.MatchString(v) {
				match = true
			}
		}
	}
	if match == neg {
		if neg {
			return s.failf(x, "header %s is %q, want it absent or not matching", args[0], vals)
		}
		return s.failf(x, "header %s is %q, want a match for %q", args[0], vals, strings.Join(args[1:], ""))
	}
	return nil
}

func cmdJSON(_ *testscript.TestScript, s *scenario, neg bool, args []string) error {
	if len(args) != 2 {
		return usagef("want PATH VALUE")
	}
	x, err := s.lastExchange()
	if err != nil {
		return err
	}
	var doc any
	if err := json.Unmarshal(x.body, &doc); err != nil {
		return s.failf(x, "the answer is not JSON: %v", err)
	}
	got, ok := jsonAt(doc, args[0])
	equal := ok && jsonEqual(got, args[1])
	if equal == neg {
		if !ok {
			return s.failf(x, "nothing at %s", args[0])
		}
		b, _ := json.Marshal(got)
		if neg {
			return s.failf(x, "%s is %s, want anything else", args[0], b)
		}
		return s.failf(x, "%s is %s, want %s", args[0], b, args[1])
	}
	return nil
}

// jsonAt walks a dotted path (a.b.0.c) through decoded JSON.
func jsonAt(doc any, path string) (any, bool) {
	cur := doc
	for _, part := range strings.Split(strings.TrimPrefix(path, "."), ".") {
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[part]
			if !ok {
				return nil, false
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(v) {
				return nil, false
			}
			cur = v[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

func jsonEqual(got any, want string) bool {
	switch v := got.(type) {
	case string:
		return v == want
	case float64:
		w, err := strconv.ParseFloat(want, 64)
		return err == nil && w == v
	case bool:
		return strconv.FormatBool(v) == want
	case nil:
		return want == "null"
	}
	b, _ := json.Marshal(got)
	return string(b) == want
}

func cmdUsage(_ *testscript.TestScript, s *scenario, neg bool, args []string) error {
	if len(args) != 3 {
		return usagef("want prompt|completion|total OP N")
	}
	n, err := strconv.ParseInt(args[2], 10, 64)
	if err != nil {
		return usagef("%q is not a number", args[2])
	}
	x, err := s.lastExchange()
	if err != nil {
		return err
	}
	if x.usage == nil {
		return s.failf(x, "the answer reports no usage")
	}
	var got int64
	switch args[0] {
	case "prompt":
		got = x.usage.prompt
	case "completion":
		got = x.usage.completion
	case "total":
		got = x.usage.total
	default:
		return usagef("%q: want prompt, completion or total", args[0])
	}
	var ok bool
	switch args[1] {
	case "==":
		ok = got == n
	case "!=":
		ok = got != n
	case "<":
		ok = got < n
	case "<=":
		ok = got <= n
	case ">":
		ok = got > n
	case ">=":
		ok = got >= n
	default:
		return usagef("%q: want ==, !=, <, <=, > or >=", args[1])
	}
	if ok == neg {
		return s.failf(x, "%s tokens are %d, want %s%s %d", args[0], got, map[bool]string{true: "not "}[neg], args[1], n)
	}
	return nil
}

func cmdTrace(ts *testscript.TestScript, s *scenario, neg bool, args []string) error {
	if neg || len(args) > 0 {
		return usagef("trace takes no arguments")
	}
	x, err := s.lastExchange()
	if err != nil {
		return err
	}
	if x.traceID == "" {
		return s.failf(x, "the answer carries no x-gatecheck-trace-id")
	}
	b, err := s.target.Trace(s.ctx, x.traceID)
	if err != nil {
		return err
	}
	fmt.Fprintln(ts.Stdout(), string(b))
	return nil
}

// trafficCommands are the commands burst may repeat.
var trafficCommands = map[string]trafficFunc{
	"chat":            chatRequest("chat"),
	"complete":        chatRequest("complete"),
	"ollama-chat":     ollamaRequest("ollama-chat"),
	"ollama-generate": ollamaRequest("ollama-generate"),
	"request":         rawRequest,
}

func cmdBurst(ts *testscript.TestScript, s *scenario, neg bool, args []string) error {
	if neg {
		return usagef("burst cannot be negated")
	}
	if len(args) < 2 {
		return usagef("want N [-c CONCURRENCY] COMMAND ARGS...")
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 1 || n > 10000 {
		return usagef("N %q: want 1..10000", args[0])
	}
	args = args[1:]
	conc := n
	if args[0] == "-c" {
		if len(args) < 3 {
			return usagef("-c needs a number and a command")
		}
		conc, err = strconv.Atoi(args[1])
		if err != nil || conc < 1 {
			return usagef("-c %q: want a positive number", args[1])
		}
		args = args[2:]
	}
	f, ok := trafficCommands[args[0]]
	if !ok {
		return usagef("%q is not a traffic command (chat, complete, ollama-chat, ollama-generate, request)", args[0])
	}
	// Build once to report usage errors before sending anything.
	counts := map[int]int{}
	var mu sync.Mutex
	var firstErr error
	var last *exchange
	var all []*exchange
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			x, err := f(ts, s, args[1:])
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				if firstErr == nil {
					firstErr = err
				}
			case x.err != nil:
				if firstErr == nil {
					firstErr = x.err
				}
			default:
				counts[x.status]++
				all = append(all, x)
				// Keep a refusal, if there is one, for fault and header checks.
				if last == nil || x.status >= 400 || last.status < 400 {
					last = x
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		if ue, ok := firstErr.(usageError); ok {
			return ue
		}
		return fmt.Errorf("burst: %v", firstErr)
	}
	s.mu.Lock()
	s.counts, s.last, s.burst = counts, last, all
	s.mu.Unlock()
	fmt.Fprintln(ts.Stdout(), formatCounts(counts))
	return nil
}

func formatCounts(c map[int]int) string {
	codes := make([]int, 0, len(c))
	for k := range c {
		codes = append(codes, k)
	}
	sort.Ints(codes)
	parts := make([]string, len(codes))
	for i, k := range codes {
		parts[i] = fmt.Sprintf("%d=%d", k, c[k])
	}
	return strings.Join(parts, " ")
}

func cmdCounts(_ *testscript.TestScript, s *scenario, neg bool, args []string) error {
	if neg || len(args) == 0 {
		return usagef("want STATUS=N...")
	}
	want := map[int]int{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		code, err1 := strconv.Atoi(k)
		n, err2 := strconv.Atoi(v)
		if !ok || err1 != nil || err2 != nil {
			return usagef("%q: want STATUS=N", a)
		}
		want[code] = n
	}
	s.mu.Lock()
	got := s.counts
	s.mu.Unlock()
	if got == nil {
		return fmt.Errorf("no burst has run")
	}
	for code, n := range got {
		if n > 0 && want[code] == 0 {
			if _, listed := want[code]; !listed {
				want[code] = 0
			}
		}
	}
	for code, n := range want {
		if got[code] != n {
			return fmt.Errorf("burst got %s, want %s%s", formatCounts(got), strings.Join(args, " "), s.traceNote())
		}
	}
	return nil
}

func cmdTally(_ *testscript.TestScript, s *scenario, neg bool, args []string) error {
	if neg || len(args) != 3 {
		return usagef("want HEADER REGEXP MIN..MAX")
	}
	re, err := regexp.Compile(args[1])
	if err != nil {
		return usagef("bad regexp: %v", err)
	}
	lo, hi, ok := strings.Cut(args[2], "..")
	min, err1 := strconv.Atoi(lo)
	max, err2 := strconv.Atoi(hi)
	if !ok || err1 != nil || err2 != nil || min > max {
		return usagef("%q: want MIN..MAX", args[2])
	}
	s.mu.Lock()
	answers := s.burst
	s.mu.Unlock()
	if answers == nil {
		return fmt.Errorf("no burst has run")
	}
	n := 0
	for _, x := range answers {
		if re.MatchString(x.header.Get(args[0])) {
			n++
		}
	}
	if n < min || n > max {
		return fmt.Errorf("%d of %d answers have %s matching %q, want %d..%d", n, len(answers), args[0], args[1], min, max)
	}
	return nil
}

func cmdClock(_ *testscript.TestScript, s *scenario, neg bool, args []string) error {
	if neg || len(args) != 2 || args[0] != "advance" {
		return usagef("want advance DURATION")
	}
	d, err := time.ParseDuration(args[1])
	if err != nil || d <= 0 {
		return usagef("%q is not a positive duration", args[1])
	}
	return s.target.AdvanceClock(s.ctx, d)
}

func cmdComponent(_ *testscript.TestScript, s *scenario, neg bool, args []string) error {
	if neg || len(args) != 2 {
		return usagef("want stop|start apigee|picker")
	}
	c := harness.Component(args[1])
	if c != harness.ComponentApigee && c != harness.ComponentPicker {
		return usagef("%q: want apigee or picker", args[1])
	}
	switch args[0] {
	case "stop":
		return s.target.Stop(s.ctx, c)
	case "start":
		return s.target.Start(s.ctx, c)
	}
	return usagef("%q: want stop or start", args[0])
}

func cmdTopology(ts *testscript.TestScript, s *scenario, neg bool, args []string) error {
	if neg || len(args) > 0 {
		return usagef("topology takes no arguments")
	}
	dir, err := overlayDir(ts)
	if err != nil {
		return err
	}
	t, err := s.target.WithTopology(s.ctx, os.DirFS(dir))
	if err != nil {
		return err
	}
	s.owned = append(s.owned, t)
	s.target = t
	ts.Setenv("GATEWAY", t.GatewayURL())
	ts.Setenv("DEFAULT_KEY", t.Keys()["default"])
	return nil
}
