package main

import (
	"cmp"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatecheck/gatecheck/conformance/harness/kind"
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
	models      string   // fake or ollama
	ollamaHosts []string // --models ollama: the Ollama servers
	ollamaModel string
	pull        bool
	// --target kind
	target, nodeImage, imageArchive string
}

func newSandboxCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Run the whole simulated stack for a developer",
	}
	cmd.AddCommand(newSandboxUpCmd(g), newSandboxTraceCmd(g), newSandboxDownCmd(g))
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
	cmd.Flags().StringVar(&f.models, "models", "fake", "model servers: fake (gatecheck's fake model servers) or ollama (real Ollama servers as the pool's endpoints)")
	cmd.Flags().StringSliceVar(&f.ollamaHosts, "ollama-host", nil, "with --models ollama: the Ollama servers, comma-separated [http://]host[:port] (default: $OLLAMA_HOST, else 127.0.0.1:11434)")
	cmd.Flags().StringVar(&f.ollamaModel, "ollama-model", "", "with --models ollama: the model to serve (default: gatecheck's tiny model, created where missing)")
	cmd.Flags().BoolVar(&f.pull, "pull", false, "with --models ollama: pull --ollama-model where it is missing, with a progress bar")
	cmd.Flags().StringVar(&f.target, "target", "sim", "sim (everything in this process) or kind (a kind cluster that stays up; needs Docker or Podman)")
	cmd.Flags().StringVar(&f.nodeImage, "node-image", "", "--target kind: the node image (default: the kind library's)")
	cmd.Flags().StringVar(&f.imageArchive, "image-archive", "", "--target kind: a gatecheck image archive (default: build one from this checkout)")
	return cmd
}

// ollamaOptions turns the --models flags into the simulation's option: nil
// for the fake model servers.
func (f *sandboxFlags) ollamaOptions(cmd *cobra.Command, g *globals) (*sim.OllamaOptions, error) {
	switch f.models {
	case "fake":
		for _, name := range []string{"ollama-host", "ollama-model", "pull"} {
			if cmd.Flags().Changed(name) {
				return nil, fmt.Errorf("--%s needs --models ollama", name)
			}
		}
		return nil, nil
	case "ollama":
		return &sim.OllamaOptions{Hosts: f.ollamaHosts, Model: f.ollamaModel, Pull: f.pull, Progress: g.stderr}, nil
	}
	return nil, fmt.Errorf("--models %q: want fake or ollama", f.models)
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
	switch f.target {
	case "sim":
	case "kind":
		return runSandboxUpKind(cmd, g, f)
	default:
		return fmt.Errorf("--target %q: want sim or kind", f.target)
	}
	start := time.Now()
	log, err := g.logger()
	if err != nil {
		return err
	}
	snap, err := loadSnapshot(f.manifests)
	if err != nil {
		return err
	}
	ollamaOpts, err := f.ollamaOptions(cmd, g)
	if err != nil {
		return err
	}
	env, err := sim.Start(cmd.Context(), sim.Options{
		Snapshot: snap, GatewayAddr: f.gatewayAddr, Logger: log, Seed: f.seed,
		StateDir: f.stateDir, AdminToken: f.adminToken, Org: f.org, Provision: true,
		Ollama: ollamaOpts,
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
	ollamaHosts := env.OllamaHosts()
	if len(ollamaHosts) > 0 {
		fmt.Fprintf(w, "  ollama:      %s  (the pool's endpoints)\n", strings.Join(ollamaHosts, ", "))
	}
	keyHeader := ""
	if r.Admin != "" {
		fmt.Fprintf(w, "  management:  %s/v1/organizations/%s  (Authorization: Bearer %s)\n", r.Admin, r.Org, r.AdminToken)
		fmt.Fprintf(w, "  api key:     %s  (app %s of %s)\n", r.APIKey, sim.SandboxApp, sim.SandboxDeveloper)
		keyHeader = fmt.Sprintf(" -H 'x-api-key: %s'", r.APIKey)
	}
	fmt.Fprintf(w, "\nTry:\n  curl -s %s/v1/chat/completions -H 'content-type: application/json'%s \\\n", url, keyHeader)
	fmt.Fprintf(w, "    -d '{\"model\":%q,\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}'\n", first)
	if len(ollamaHosts) > 0 {
		fmt.Fprintf(w, "  curl -s %s/api/chat%s \\\n", url, keyHeader)
		fmt.Fprintf(w, "    -d '{\"model\":%q,\"stream\":false,\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}'\n", first)
	}
	if r.Admin != "" {
		fmt.Fprintf(w, "  gatecheck sandbox trace --admin %s --admin-token %s   # why was a request allowed or denied?\n\n", r.Admin, r.AdminToken)
	} else {
		fmt.Fprintf(w, "  OLLAMA_HOST=%s ollama run %s   # the Ollama API is served too\n\n", url, first)
	}
	fmt.Fprintln(w, "Press Ctrl-C to stop.")
}

// runSandboxUpKind brings the kind cluster up, prints where everything is,
// and returns: the cluster stays up until sandbox down.
func runSandboxUpKind(cmd *cobra.Command, g *globals, f *sandboxFlags) error {
	for _, name := range []string{"manifests", "state-dir", "admin-token", "org", "seed", "ollama-host", "pull"} {
		if cmd.Flags().Changed(name) {
			return fmt.Errorf("--%s is for --target sim", name)
		}
	}
	if f.models == "fake" && cmd.Flags().Changed("ollama-model") {
		return fmt.Errorf("--ollama-model needs --models ollama")
	}
	_, port, err := net.SplitHostPort(f.gatewayAddr)
	if err != nil {
		return fmt.Errorf("--gateway-addr: %w", err)
	}
	gatewayPort, err := strconv.Atoi(port)
	if err != nil {
		return fmt.Errorf("--gateway-addr: port %q: %w", port, err)
	}
	log, err := g.logger()
	if err != nil {
		return err
	}
	start := time.Now()
	t, err := kind.New(cmd.Context(), kind.Options{
		Keep: true, NodeImage: f.nodeImage, ImageArchive: f.imageArchive,
		Models: f.models, OllamaModel: f.ollamaModel, GatewayPort: gatewayPort,
		LogDir: filepath.Join("_out", "kind-logs"), Progress: g.stderr, Logger: log,
	})
	if err != nil {
		return err
	}
	defer t.Close() // keeps the cluster
	if f.readyFile != "" {
		if err := sim.WriteReadyFile(f.readyFile, sim.Ready{
			Gateway: t.GatewayURL(), Admin: t.ManagementURL(), AdminToken: t.AdminToken(), Org: kind.Org, APIKey: t.Keys()["default"],
		}); err != nil {
			return err
		}
	}
	w := g.stdout
	fmt.Fprintf(w, "gatecheck sandbox is up on kind cluster %q (ready in %s)\n\n", t.ClusterName(), time.Since(start).Round(time.Second))
	fmt.Fprintf(w, "  gateway:     %s\n", t.GatewayURL())
	fmt.Fprintf(w, "  models:      %s\n", strings.Join(t.Models(), ", "))
	fmt.Fprintf(w, "  management:  %s/v1/organizations/%s  (Authorization: Bearer %s)\n", t.ManagementURL(), kind.Org, t.AdminToken())
	fmt.Fprintf(w, "  api key:     %s  (app %s of %s)\n", t.Keys()["default"], sim.SandboxApp, sim.SandboxDeveloper)
	fmt.Fprintf(w, "  kubectl:     kubectl --context kind-%s get gateways,httproutes,inferencepools,apimextensionpolicies\n", t.ClusterName())
	model := "my-model"
	if ms := t.Models(); len(ms) > 0 {
		model = ms[0]
	}
	fmt.Fprintf(w, "\nTry:\n  curl -s %s/v1/chat/completions -H 'content-type: application/json' -H 'x-api-key: %s' \\\n", t.GatewayURL(), t.Keys()["default"])
	fmt.Fprintf(w, "    -d '{\"model\":%q,\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}'\n", model)
	fmt.Fprintf(w, "  gatecheck sandbox trace --admin %s --admin-token %s\n", t.ManagementURL(), t.AdminToken())
	fmt.Fprintf(w, "\nThe cluster stays up. Delete it with: gatecheck sandbox down --target kind\n")
	return nil
}

func newSandboxDownCmd(g *globals) *cobra.Command {
	var target, name string
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Delete the sandbox's kind cluster (sandbox up --target kind)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if target != "kind" {
				return fmt.Errorf("sandbox down is for --target kind: a sandbox on --target sim stops with Ctrl-C")
			}
			existed, err := kind.Delete(cmd.Context(), name, g.stderr)
			if err != nil {
				return err
			}
			if !existed {
				fmt.Fprintf(g.stdout, "no kind cluster %q\n", cmp.Or(name, kind.DefaultClusterName))
				return nil
			}
			fmt.Fprintf(g.stdout, "deleted kind cluster %q\n", cmp.Or(name, kind.DefaultClusterName))
			return nil
		},
	}
	cmd.Flags().StringVar(&target, "target", "kind", "kind")
	cmd.Flags().StringVar(&name, "name", kind.DefaultClusterName, "the kind cluster")
	return cmd
}
