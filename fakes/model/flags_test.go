package model

import (
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		args    []string
		want    func(*Config) // edits the defaults into the expected config
		wantErr string        // substring; empty means success
	}{
		{name: "minimal", args: []string{"--model", "qwen"}, want: func(c *Config) {}},
		{name: "everything", args: []string{
			"--model", "meta-llama/Llama-3.1-8B-Instruct", "--served-model-name", "llama", "llama-8b",
			"--port", "8200", "--mode", "echo", "--seed", "7", "--max-num-seqs", "3", "--max-model-len", "4096",
			"--time-to-first-token", "200", "--inter-token-latency", "15ms",
			"--time-to-first-token-std-dev", "1.5s", "--inter-token-latency-std-dev=3",
			"--lora-modules", `{"name":"food-review-1","path":"/adapters/food"}`, "sql-lora", "a=/p",
			"--max-loras", "2", "--failure-injection-rate", "10",
			"-pod-name", "vllm-0", "--pod-namespace", "llm", "--kv-cache-size", "2048",
		}, want: func(c *Config) {
			c.Model = "meta-llama/Llama-3.1-8B-Instruct"
			c.ServedModelNames = []string{"llama", "llama-8b"}
			c.Port = 8200
			c.Mode = ModeEcho
			c.Seed = 7
			c.MaxNumSeqs = 3
			c.MaxModelLen = 4096
			c.TimeToFirstToken = 200 * time.Millisecond
			c.InterTokenLatency = 15 * time.Millisecond
			c.TimeToFirstTokenStdDev = 1500 * time.Millisecond
			c.InterTokenLatencyStdDev = 3 * time.Millisecond
			c.LoRAModules = []string{`{"name":"food-review-1","path":"/adapters/food"}`, "sql-lora", "a=/p"}
			c.MaxLoRAs = 2
			c.FailureInjectionRate = 10
			c.PodName = "vllm-0"
			c.PodNamespace = "llm"
			c.KVCacheBlocks = 2048
		}},
		{name: "repeated list flags", args: []string{"--model", "m", "--lora-modules", "x", "--lora-modules=y"},
			want: func(c *Config) { c.Model = "m"; c.LoRAModules = []string{"x", "y"} }},
		{name: "unknown flag", args: []string{"--model", "qwen", "--enable-kvcache"}, wantErr: "flag provided but not defined: -enable-kvcache"},
		{name: "bad duration", args: []string{"--model", "qwen", "--time-to-first-token", "soon"},
			wantErr: `invalid value "soon" for flag -time-to-first-token`},
		{name: "negative duration", args: []string{"--model", "qwen", "--inter-token-latency", "-5"}, wantErr: "negative"},
		{name: "bad int", args: []string{"--model", "qwen", "--max-num-seqs", "many"}, wantErr: "-max-num-seqs"},
		{name: "no model", args: []string{"--port", "1"}, wantErr: "--model is required"},
		{name: "bad mode", args: []string{"--model", "q", "--mode", "loud"}, wantErr: `--mode "loud"`},
		{name: "rate", args: []string{"--model", "q", "--failure-injection-rate", "101"}, wantErr: "outside 0..100"},
		{name: "bad lora json", args: []string{"--model", "q", "--lora-modules", `{"name":`}, wantErr: "not a valid JSON object"},
		{name: "lora without name", args: []string{"--model", "q", "--lora-modules", `{"path":"/x"}`}, wantErr: `has no "name"`},
		{name: "lora clash", args: []string{"--model", "q", "--lora-modules", "q"}, wantErr: "clashes"},
		{name: "lora twice", args: []string{"--model", "q", "--lora-modules", "x", "x"}, wantErr: "given twice"},
		{name: "positional", args: []string{"--model", "q", "--port", "1", "extra"}, wantErr: `unexpected argument "extra"`},
		{name: "missing value", args: []string{"--model"}, wantErr: "flag needs an argument: -model"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseFlags(tc.args)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			want := Config{Model: "qwen", Seed: DefaultSeed, Port: DefaultPort, Mode: ModeRandom, MaxNumSeqs: DefaultMaxNumSeqs,
				MaxModelLen: DefaultMaxModelLen, MaxLoRAs: DefaultMaxLoRAs, KVCacheBlocks: DefaultKVCacheBlocks}
			tc.want(&want)
			require.Equal(t, want, got)
			_, err = New(got)
			require.NoError(t, err)
		})
	}
}

func TestParseFlagsHelp(t *testing.T) {
	t.Parallel()
	_, err := ParseFlags([]string{"--help"})
	require.True(t, errors.Is(err, flag.ErrHelp), "%v", err)
}

func TestValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, Config{Model: "m"}.Validate())
	err := Config{Model: "m", MaxNumSeqs: -1, Port: 70000, TimeToFirstToken: -time.Second,
		ServedModelNames: []string{" "}}.Validate()
	require.Error(t, err)
	for _, want := range []string{"--max-num-seqs -1 is negative", "--port 70000", "--time-to-first-token -1s is negative",
		"--served-model-name has an empty name"} {
		require.ErrorContains(t, err, want)
	}
}

// FuzzParseFlags feeds arbitrary argument lists: no panic, and whatever
// parses must also make a server.
func FuzzParseFlags(f *testing.F) {
	for _, seed := range []string{
		"--model qwen --max-num-seqs 3",
		"--model qwen --lora-modules {\"name\":\"a\"} b --served-model-name x y",
		"--model qwen --time-to-first-token 200 --inter-token-latency 1s",
		"--model",
		"--bogus",
		"--model q --mode echo --seed -1 --kv-cache-size 0",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Fields(line)
		cfg, err := ParseFlags(args)
		if err != nil {
			return
		}
		require.NoError(t, cfg.Validate())
		s, err := New(cfg)
		require.NoError(t, err)
		s.Close()
	})
}
