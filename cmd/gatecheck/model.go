package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/gatecheck/gatecheck/models/ollama"
	"github.com/gatecheck/gatecheck/models/tiny"
)

// hostUsage documents every --host flag of `gatecheck model`.
const hostUsage = "Ollama server, [http://]host[:port] (default: $OLLAMA_HOST, else 127.0.0.1:11434)"

func newModelCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "model",
		Short: "Get models onto a real Ollama: write and create the tiny model, or pull one",
	}
	cmd.AddCommand(newModelTinyCmd(g), newModelPullCmd(g))
	return cmd
}

type modelTinyFlags struct {
	out    string
	create string
	seed   int64
	host   string
}

func newModelTinyCmd(g *globals) *cobra.Command {
	f := &modelTinyFlags{}
	cmd := &cobra.Command{
		Use:   "tiny [--out FILE] [--create NAME]",
		Short: "Write gatecheck's tiny random-weight llama model as GGUF, and create it in Ollama",
		Long: `model tiny writes a tiny llama model with random weights as GGUF (a few hundred
KB, a SentencePiece vocabulary with byte fallback): it answers gibberish, but
with real tokenization, real streaming and real token counts. The same --seed
writes the same bytes.

--out writes it to a file (without --out or --create: ` + tiny.Name + `.gguf).
--create NAME uploads it to Ollama and creates the model NAME from it, so that
Ollama serves it with no download — on a machine with no internet too.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runModelTiny(cmd, g, f)
		},
	}
	cmd.Flags().StringVar(&f.out, "out", "", "write the GGUF file here")
	cmd.Flags().StringVar(&f.create, "create", "", "create the model NAME in Ollama from it (for example "+tiny.Name+")")
	cmd.Flags().Int64Var(&f.seed, "seed", tiny.DefaultSeed, "seed of the random weights")
	cmd.Flags().StringVar(&f.host, "host", "", hostUsage)
	return cmd
}

func runModelTiny(cmd *cobra.Command, g *globals, f *modelTinyFlags) error {
	if f.out == "" && f.create == "" {
		f.out = tiny.Name + ".gguf"
	}
	w := g.stdout
	if f.out != "" {
		if err := tiny.WriteFile(f.out, f.seed); err != nil {
			return err
		}
		b, err := os.ReadFile(f.out)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		fmt.Fprintf(w, "wrote %s: tiny random-weight llama model, seed %d, %d bytes, sha256:%s\n", f.out, f.seed, len(b), hex.EncodeToString(sum[:]))
	}
	if f.create == "" {
		seed := ""
		if f.seed != tiny.DefaultSeed {
			seed = fmt.Sprintf(" --seed %d", f.seed)
		}
		fmt.Fprintf(w, "create it in Ollama with: gatecheck model tiny --create %s%s\n", tiny.Name, seed)
		return nil
	}
	srv, err := ollama.NewServer(f.host)
	if err != nil {
		return fmt.Errorf("--host: %w", err)
	}
	digest, err := srv.CreateTiny(cmd.Context(), f.create, f.seed)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "created %s on Ollama at %s from blob %s (seed %d)\n", f.create, srv, digest, f.seed)
	fmt.Fprintf(w, "try: OLLAMA_HOST=%s ollama run %s hello\n", srv.URL.Host, f.create)
	model := ""
	if f.create != tiny.Name {
		model = " --ollama-model " + f.create
	}
	fmt.Fprintf(w, " or: gatecheck sandbox up --models ollama --ollama-host %s%s\n", srv.URL.Host, model)
	return nil
}

func newModelPullCmd(g *globals) *cobra.Command {
	var host string
	cmd := &cobra.Command{
		Use:   "pull NAME",
		Short: "Make sure Ollama has a model, pulling it with a progress bar if it is missing",
		Long: `model pull makes sure the Ollama server has the model NAME: if it is missing, it
pulls it through Ollama's API, with a progress bar on stderr. Offline the
registry does not answer and the pull fails at once; the error suggests
` + "`gatecheck model tiny --create NAME`" + ` instead.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			srv, err := ollama.NewServer(host)
			if err != nil {
				return fmt.Errorf("--host: %w", err)
			}
			name := args[0]
			has, err := srv.Has(cmd.Context(), name)
			if err != nil {
				return err
			}
			if has {
				fmt.Fprintf(g.stdout, "%s is on Ollama at %s\n", name, srv)
				return nil
			}
			if err := srv.Pull(cmd.Context(), name, g.stderr); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "pulled %s on Ollama at %s\n", name, srv)
			return nil
		},
	}
	cmd.Flags().StringVar(&host, "host", "", hostUsage)
	return cmd
}
