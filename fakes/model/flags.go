package model

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gatecheck/gatecheck/internal/clock"
)

// Modes of generation (the --mode flag).
const (
	// ModeRandom answers with deterministic pseudo-sentences drawn from the
	// seed, the model name and the prompt.
	ModeRandom = "random"
	// ModeEcho answers with the last user message (or the prompt).
	ModeEcho = "echo"
)

// Defaults that ParseFlags and New fill in for zero fields.
const (
	// DefaultSeed is the seed ParseFlags uses when --seed is not given, so
	// runs are reproducible (llm-d defaults to the current time instead).
	DefaultSeed int64 = 42
	// DefaultPort is the port reported in x-inference-port when Port is 0.
	DefaultPort = 8000
	// DefaultMaxNumSeqs is the number of running slots when MaxNumSeqs is 0.
	DefaultMaxNumSeqs = 5
	// DefaultMaxModelLen is the context length when MaxModelLen is 0.
	DefaultMaxModelLen = 1024
	// DefaultMaxLoRAs is the number of adapters that may run at once when
	// MaxLoRAs is 0.
	DefaultMaxLoRAs = 1
	// DefaultKVCacheBlocks is the KV cache size in blocks when KVCacheBlocks
	// is 0.
	DefaultKVCacheBlocks = 1024
	// DefaultNamespace is the namespace reported when PodNamespace is empty.
	DefaultNamespace = "default"
	// BlockSize is the number of tokens in one KV cache block.
	BlockSize = 16
)

// Config configures a fake model server. The zero value of every field but
// Model means its default (see the Default constants); Config flows
// flags → ParseFlags → New (defaults filled) → Validate.
type Config struct {
	// Model is the base model name (--model). Required.
	Model string
	// ServedModelNames are the names the model answers to
	// (--served-model-name, repeatable, or several values after one flag).
	// Empty means [Model]. Model itself is always accepted too.
	ServedModelNames []string
	// Port is reported in the x-inference-port header (--port); the caller
	// makes the listener. Zero means DefaultPort.
	Port int
	// Mode is ModeRandom (default when empty) or ModeEcho (--mode).
	Mode string
	// Seed drives the generated text and the failure injection (--seed).
	// Zero is a valid seed; ParseFlags defaults to DefaultSeed.
	Seed int64
	// MaxNumSeqs is the number of running slots (--max-num-seqs); requests
	// beyond it wait in a FIFO queue. Zero means DefaultMaxNumSeqs.
	MaxNumSeqs int
	// MaxModelLen bounds prompt plus completion tokens (--max-model-len).
	// Zero means DefaultMaxModelLen.
	MaxModelLen int
	// TimeToFirstToken is the wait before the first token
	// (--time-to-first-token, "200ms" or plain milliseconds "200").
	TimeToFirstToken time.Duration
	// InterTokenLatency is the wait between tokens (--inter-token-latency).
	InterTokenLatency time.Duration
	// TimeToFirstTokenStdDev is the standard deviation of the gaussian
	// jitter added to TimeToFirstToken (--time-to-first-token-std-dev).
	TimeToFirstTokenStdDev time.Duration
	// InterTokenLatencyStdDev is the standard deviation of the gaussian
	// jitter added to InterTokenLatency (--inter-token-latency-std-dev).
	InterTokenLatencyStdDev time.Duration
	// LoRAModules are the LoRA adapter names (--lora-modules). An entry may
	// be a plain name, "name=path" (vLLM) or a JSON object
	// {"name":...,"path":...} (llm-d); New keeps the names.
	LoRAModules []string
	// MaxLoRAs is how many distinct adapters may run at once (--max-loras).
	// Zero means DefaultMaxLoRAs.
	MaxLoRAs int
	// FailureInjectionRate is the percentage (0..100) of requests that fail
	// with an injected error (--failure-injection-rate).
	FailureInjectionRate int
	// PodName is reported in x-inference-pod (--pod-name; POD_NAME in
	// llm-d). Empty means the host name.
	PodName string
	// PodNamespace is reported in x-inference-namespace (--pod-namespace;
	// POD_NAMESPACE in llm-d). Empty means DefaultNamespace.
	PodNamespace string
	// KVCacheBlocks is the KV cache size in blocks of BlockSize tokens
	// (--kv-cache-size, llm-d's name). Zero means DefaultKVCacheBlocks.
	KVCacheBlocks int
	// Clock stamps "created" fields and the lora_requests_info value; nil
	// means the wall clock. Latencies always use real timers.
	Clock clock.Clock
}

// ParseFlags parses container arguments such as
// ["--model", "qwen", "--max-num-seqs", "3"] into a Config with the flag
// defaults filled in, and validates it. An unknown flag is an error that
// names it; -h or --help returns an error wrapping flag.ErrHelp.
func ParseFlags(args []string) (Config, error) {
	cfg := Config{
		Seed:          DefaultSeed,
		Port:          DefaultPort,
		Mode:          ModeRandom,
		MaxNumSeqs:    DefaultMaxNumSeqs,
		MaxModelLen:   DefaultMaxModelLen,
		MaxLoRAs:      DefaultMaxLoRAs,
		KVCacheBlocks: DefaultKVCacheBlocks,
	}
	fs := flag.NewFlagSet("model", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&cfg.Model, "model", "", "base model name (required)")
	fs.Var((*stringList)(&cfg.ServedModelNames), "served-model-name", "names the model answers to")
	fs.IntVar(&cfg.Port, "port", cfg.Port, "port reported in x-inference-port")
	fs.StringVar(&cfg.Mode, "mode", cfg.Mode, "random or echo")
	fs.Int64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the generated text")
	fs.IntVar(&cfg.MaxNumSeqs, "max-num-seqs", cfg.MaxNumSeqs, "running slots")
	fs.IntVar(&cfg.MaxModelLen, "max-model-len", cfg.MaxModelLen, "context length in tokens")
	fs.Var((*millis)(&cfg.TimeToFirstToken), "time-to-first-token", "wait before the first token")
	fs.Var((*millis)(&cfg.InterTokenLatency), "inter-token-latency", "wait between tokens")
	fs.Var((*millis)(&cfg.TimeToFirstTokenStdDev), "time-to-first-token-std-dev", "jitter of the first token")
	fs.Var((*millis)(&cfg.InterTokenLatencyStdDev), "inter-token-latency-std-dev", "jitter between tokens")
	fs.Var((*loraList)(&cfg.LoRAModules), "lora-modules", "LoRA adapters")
	fs.IntVar(&cfg.MaxLoRAs, "max-loras", cfg.MaxLoRAs, "adapters running at once")
	fs.IntVar(&cfg.FailureInjectionRate, "failure-injection-rate", 0, "percent of requests that fail")
	fs.StringVar(&cfg.PodName, "pod-name", "", "pod name reported in x-inference-pod")
	fs.StringVar(&cfg.PodNamespace, "pod-namespace", "", "namespace reported in x-inference-namespace")
	fs.IntVar(&cfg.KVCacheBlocks, "kv-cache-size", cfg.KVCacheBlocks, "KV cache size in blocks")

	if err := fs.Parse(spreadListFlags(args)); err != nil {
		return Config{}, fmt.Errorf("parse model server flags: %w", err)
	}
	if rest := fs.Args(); len(rest) > 0 {
		return Config{}, fmt.Errorf("parse model server flags: unexpected argument %q", rest[0])
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// spreadListFlags rewrites "--flag v1 v2" into "--flag v1 --flag v2" for the
// flags that take several values, as vLLM's nargs='+' does: "--lora-modules a
// b --port 1" is read as two --lora-modules flags.
func spreadListFlags(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		out = append(out, args[i])
		name := strings.TrimLeft(args[i], "-")
		if !isListFlag(args[i], name) || i+1 >= len(args) {
			continue
		}
		out = append(out, args[i+1]) // the first value, whatever it looks like
		i++
		for i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			out = append(out, "--"+name, args[i+1])
			i++
		}
	}
	return out
}

func isListFlag(arg, name string) bool {
	if !strings.HasPrefix(arg, "-") || strings.Contains(arg, "=") {
		return false
	}
	switch name {
	case "served-model-name", "lora-modules":
		return true
	}
	return false
}

// Validate reports the first problem with c. Zero fields are fine (they mean
// their defaults); negative numbers, unknown modes, rates outside 0..100 and
// malformed or clashing LoRA modules are not.
func (c Config) Validate() error {
	var errs []error
	if strings.TrimSpace(c.Model) == "" {
		errs = append(errs, errors.New("--model is required"))
	}
	switch c.Mode {
	case "", ModeRandom, ModeEcho:
	default:
		errs = append(errs, fmt.Errorf("--mode %q is not %q or %q", c.Mode, ModeRandom, ModeEcho))
	}
	if c.Port < 0 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("--port %d is outside 0..65535", c.Port))
	}
	for _, n := range []struct {
		flag string
		v    int
	}{
		{"--max-num-seqs", c.MaxNumSeqs},
		{"--max-model-len", c.MaxModelLen},
		{"--max-loras", c.MaxLoRAs},
		{"--kv-cache-size", c.KVCacheBlocks},
	} {
		if n.v < 0 {
			errs = append(errs, fmt.Errorf("%s %d is negative", n.flag, n.v))
		}
	}
	if c.FailureInjectionRate < 0 || c.FailureInjectionRate > 100 {
		errs = append(errs, fmt.Errorf("--failure-injection-rate %d is outside 0..100", c.FailureInjectionRate))
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{
		{"--time-to-first-token", c.TimeToFirstToken},
		{"--inter-token-latency", c.InterTokenLatency},
		{"--time-to-first-token-std-dev", c.TimeToFirstTokenStdDev},
		{"--inter-token-latency-std-dev", c.InterTokenLatencyStdDev},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s %s is negative", d.flag, d.v))
		}
	}
	for _, n := range []struct{ flag, v string }{
		{"--model", c.Model}, {"--pod-name", c.PodName}, {"--pod-namespace", c.PodNamespace},
	} {
		if err := checkName(n.flag, n.v); err != nil {
			errs = append(errs, err)
		}
	}
	served := map[string]bool{c.Model: true}
	for _, n := range c.ServedModelNames {
		if strings.TrimSpace(n) == "" {
			errs = append(errs, errors.New("--served-model-name has an empty name"))
		} else if err := checkName("--served-model-name", n); err != nil {
			errs = append(errs, err)
		}
		served[n] = true
	}
	seen := map[string]bool{}
	for _, m := range c.LoRAModules {
		names, err := parseLoRAModule(m)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, n := range names {
			if err := checkName("--lora-modules", n); err != nil {
				errs = append(errs, err)
			}
			switch {
			case strings.Contains(n, ","):
				errs = append(errs, fmt.Errorf("--lora-modules %q has a comma, which vllm:lora_requests_info uses as separator", n))
			case served[n]:
				errs = append(errs, fmt.Errorf("--lora-modules %q clashes with a served model name", n))
			case seen[n]:
				errs = append(errs, fmt.Errorf("--lora-modules %q is given twice", n))
			}
			seen[n] = true
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid model server config: %w", err)
	}
	return nil
}

// checkName rejects names that cannot be metric label or header values:
// invalid UTF-8 or control characters.
func checkName(flag, v string) error {
	if !utf8.ValidString(v) {
		return fmt.Errorf("%s %q is not valid UTF-8", flag, v)
	}
	if strings.ContainsFunc(v, unicode.IsControl) {
		return fmt.Errorf("%s %q has a control character", flag, v)
	}
	return nil
}

// withDefaults returns c with zero fields set to their defaults and LoRA
// modules reduced to names. c must be valid.
func (c Config) withDefaults(hostname func() (string, error)) Config {
	if len(c.ServedModelNames) == 0 {
		c.ServedModelNames = []string{c.Model}
	}
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.Mode == "" {
		c.Mode = ModeRandom
	}
	if c.MaxNumSeqs == 0 {
		c.MaxNumSeqs = DefaultMaxNumSeqs
	}
	if c.MaxModelLen == 0 {
		c.MaxModelLen = DefaultMaxModelLen
	}
	if c.MaxLoRAs == 0 {
		c.MaxLoRAs = DefaultMaxLoRAs
	}
	if c.KVCacheBlocks == 0 {
		c.KVCacheBlocks = DefaultKVCacheBlocks
	}
	if c.PodName == "" {
		if h, err := hostname(); err == nil && h != "" {
			c.PodName = h
		} else {
			c.PodName = "localhost"
		}
	}
	if c.PodNamespace == "" {
		c.PodNamespace = DefaultNamespace
	}
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	var loras []string
	for _, m := range c.LoRAModules {
		names, _ := parseLoRAModule(m) // validated before
		loras = append(loras, names...)
	}
	c.LoRAModules = loras
	return c
}

// parseLoRAModule reads one --lora-modules value: a JSON object with a
// "name" (llm-d, vLLM), "name=path" (older vLLM), or plain names, several
// separated by commas.
func parseLoRAModule(v string) ([]string, error) {
	v = strings.TrimSpace(v)
	if strings.HasPrefix(v, "{") {
		var m struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal([]byte(v), &m); err != nil {
			return nil, fmt.Errorf("--lora-modules %q is not a valid JSON object: %w", v, err)
		}
		if strings.TrimSpace(m.Name) == "" {
			return nil, fmt.Errorf("--lora-modules %q has no \"name\"", v)
		}
		return []string{m.Name}, nil
	}
	var names []string
	for _, part := range strings.Split(v, ",") {
		name, _, _ := strings.Cut(strings.TrimSpace(part), "=")
		if name == "" {
			return nil, fmt.Errorf("--lora-modules %q has an empty name", v)
		}
		names = append(names, name)
	}
	return names, nil
}

// millis is a duration flag that reads "200ms" or, as llm-d does, plain
// integer milliseconds "200".
type millis time.Duration

func (m *millis) String() string {
	if m == nil {
		return "0s"
	}
	return time.Duration(*m).String()
}

func (m *millis) Set(s string) error {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return fmt.Errorf("duration %q is negative", s)
		}
		*m = millis(time.Duration(n) * time.Millisecond)
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is neither a duration like 200ms nor integer milliseconds", s)
	}
	if d < 0 {
		return fmt.Errorf("duration %q is negative", s)
	}
	*m = millis(d)
	return nil
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}

func (l *stringList) Set(s string) error {
	if strings.TrimSpace(s) == "" {
		return errors.New("empty value")
	}
	*l = append(*l, s)
	return nil
}

// loraList is the --lora-modules flag: each value is checked at once so the
// error names the flag.
type loraList []string

func (l *loraList) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, " ")
}

func (l *loraList) Set(s string) error {
	if _, err := parseLoRAModule(s); err != nil {
		return err
	}
	*l = append(*l, s)
	return nil
}
