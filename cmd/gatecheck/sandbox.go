package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatecheck/gatecheck/conformance/harness/sim"
	"github.com/gatecheck/gatecheck/manifests"
)

type sandboxFlags struct {
	gatewayAddr string
	manifests   string
	readyFile   string
	seed        int64
	stateDir    string
	adminToken  string
	org         string
}

func newSandboxCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Run the whole simulated stack for a developer",
	}
	cmd.AddCommand(newSandboxUpCmd(g), newSandboxTraceCmd(g))
	return cmd
}

func newSandboxUpCmd(g *globals) *cobra.Command {
	f := &sandboxFlags{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start the gateway, endpoint picker and model servers on loopback and serve until interrupted",
		Long: `sandbox up starts every component of a topology in this process: the gateway on
--gateway-addr, the rest on free loopback ports. It prints the gateway URL and a
curl line, writes --ready-file once everything answers, and serves until SIGINT
or SIGTERM.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSandboxUp(cmd, g, f)
		},
	}
	cmd.Flags().StringVar(&f.gatewayAddr, "gateway-addr", "127.0.0.1:8080", "address of the gateway's listener")
	cmd.Flags().StringVar(&f.manifests, "manifests", "", "directory of the topology's manifests (default: the embedded default topology)")
	cmd.Flags().StringVar(&f.readyFile, "ready-file", "", "write JSON describing the running sandbox to this file once everything answers")
	cmd.Flags().Int64Var(&f.seed, "seed", 1, "seed for the picker's tie-breaks and weighted route choices")
	cmd.Flags().StringVar(&f.stateDir, "state-dir", "", "keep the fake Apigee's developers, apps, keys, products and counters in this directory across restarts (default: in memory)")
	cmd.Flags().StringVar(&f.adminToken, "admin-token", "", "bearer token for the management API (default: a random one, printed)")
	cmd.Flags().StringVar(&f.org, "org", "gatecheck", "Apigee organisation name of the management API")
	return cmd
}

func loadSnapshot(dir string) (*manifests.Snapshot, error) {
	if dir == "" {
		return manifests.LoadDefault()
	}
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("--manifests: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("--manifests %s: not a directory", dir)
	}
	objs, policies, err := manifests.Load(os.DirFS(dir), ".")
	if err != nil {
		return nil, fmt.Errorf("manifests in %s:\n%w", dir, err)
	}
	snap, err := manifests.Compile(objs, policies)
	if err != nil {
		return nil, fmt.Errorf("manifests in %s:\n%w", dir, err)
	}
	return snap, nil
}

func runSandboxUp(cmd *cobra.Command, g *globals, f *sandboxFlags) error {
	start := time.Now()
	log, err := g.logger()
	if err != nil {
		return err
	}
	snap, err := loadSnapshot(f.manifests)
	if err != nil {
		return err
	}
	env, err := sim.Start(cmd.Context(), sim.Options{
		Snapshot: snap, GatewayAddr: f.gatewayAddr, Logger: log, Seed: f.seed,
		StateDir: f.stateDir, AdminToken: f.adminToken, Org: f.org, Provision: true,
	})
	if err != nil {
		return err
	}
	defer env.Close()
	if f.readyFile != "" {
		if err := sim.WriteReadyFile(f.readyFile, env.Ready()); err != nil {
			return err
		}
		defer os.Remove(f.readyFile)
	}
	printSandbox(g, env, time.Since(start))
	<-cmd.Context().Done()
	fmt.Fprintln(g.stdout, "gatecheck sandbox: shutting down")
	return nil
}

func printSandbox(g *globals, env *sim.Env, took time.Duration) {
	models := env.Models()
	first := "my-model"
	if len(models) > 0 {
		first = models[0]
	}
	url := env.GatewayURL()
	r := env.Ready()
	w := g.stdout
	fmt.Fprintf(w, "gatecheck sandbox is up (ready in %s)\n\n", took.Round(time.Millisecond))
	fmt.Fprintf(w, "  gateway:     %s\n", url)
	if len(models) > 0 {
		fmt.Fprintf(w, "  models:      %s\n", strings.Join(models, ", "))
	}
	keyHeader := ""
	if r.Admin != "" {
		fmt.Fprintf(w, "  management:  %s/v1/organizations/%s  (Authorization: Bearer %s)\n", r.Admin, r.Org, r.AdminToken)
		fmt.Fprintf(w, "  api key:     %s  (app %s of %s)\n", r.APIKey, sim.SandboxApp, sim.SandboxDeveloper)
		keyHeader = fmt.Sprintf(" -H 'x-api-key: %s'", r.APIKey)
	}
	fmt.Fprintf(w, "\nTry:\n  curl -s %s/v1/chat/completions -H 'content-type: application/json'%s \\\n", url, keyHeader)
	fmt.Fprintf(w, "    -d '{\"model\":%q,\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}'\n", first)
	if r.Admin != "" {
		fmt.Fprintf(w, "  gatecheck sandbox trace --admin %s --admin-token %s   # why was a request allowed or denied?\n\n", r.Admin, r.AdminToken)
	} else {
		fmt.Fprintf(w, "  OLLAMA_HOST=%s ollama run %s   # the Ollama API is served too\n\n", url, first)
	}
	fmt.Fprintln(w, "Press Ctrl-C to stop.")
}
