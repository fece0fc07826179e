package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatecheck/gatecheck/conformance"
	"github.com/gatecheck/gatecheck/conformance/harness"
	"github.com/gatecheck/gatecheck/conformance/harness/external"
	"github.com/gatecheck/gatecheck/conformance/harness/kind"
	"github.com/gatecheck/gatecheck/conformance/harness/sim"
	"github.com/gatecheck/gatecheck/conformance/report"
)

type conformanceFlags struct {
	target                               string
	manifests                            string
	gatewayURL, managementURL, org       string
	adminToken, tokenURL, credentials    string
	models                               []string
	reportOutput, junit, summary, readme string
	supported, exempt, profiles          string
	run, skip                            string
	organization, project, url, version  string
	contact                              []string
	concurrency                          int
	quiet                                bool
	// kind
	keep                                 bool
	nodeImage, imageArchive, ollamaModel string
	logs                                 string
}

func newConformanceCmd(g *globals) *cobra.Command {
	f := &conformanceFlags{}
	cmd := &cobra.Command{
		Use:   "conformance",
		Short: "Run the conformance scenarios against a target and write the reports",
		Long: `conformance runs the scripted scenarios (authentication, authorization, rate
limiting, threat protection, inference routing) against a target: the embedded
simulation (--target sim, the default), a kind cluster it brings up
(--target kind: needs Docker or Podman), or an existing deployment
(--target external --gateway-url URL). It prints progress as it goes and writes
a ConformanceReport (YAML), JUnit XML and a Markdown summary. It fails when a
scenario fails.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := runConformance(cmd.Context(), g, f, false)
			return err
		},
	}
	addConformanceFlags(cmd, f)
	return cmd
}

func newCertifyCmd(g *globals) *cobra.Command {
	f := &conformanceFlags{target: "external"}
	cmd := &cobra.Command{
		Use:   "certify",
		Short: "Run the suite against your deployment and write the report a vendor publishes",
		Long: `certify is conformance --target external that insists on the implementation
fields (--organization, --project, --url, --version, --contact). It writes the
report and, beside it, a README with a "Reproduce" section.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.target != "external" {
				return fmt.Errorf("certify runs against an external deployment (--target external)")
			}
			_, err := runConformance(cmd.Context(), g, f, true)
			return err
		},
	}
	addConformanceFlags(cmd, f)
	return cmd
}

func addConformanceFlags(cmd *cobra.Command, f *conformanceFlags) {
	fl := cmd.Flags()
	def := f.target
	if def == "" {
		def = "sim"
	}
	fl.StringVar(&f.target, "target", def, "where to run: sim, kind or external")
	fl.StringVar(&f.manifests, "manifests", "", "sim: the topology's manifests directory (default: the embedded default topology)")
	fl.StringVar(&f.gatewayURL, "gateway-url", "", "external: the gateway's base URL")
	fl.StringVar(&f.managementURL, "management-url", "", "external: the Apigee management API (https://apigee.googleapis.com for Apigee X); scenarios that provision are skipped without it")
	fl.StringVar(&f.org, "org", "", "external: the Apigee organisation")
	fl.StringVar(&f.adminToken, "admin-token", "", "external: a bearer token for the management API (gcloud auth print-access-token); default $GATECHECK_ADMIN_TOKEN")
	fl.StringVar(&f.tokenURL, "token-url", "", "external: where client-credentials tokens are minted (default: MANAGEMENT-URL/oauth/token)")
	fl.StringVar(&f.credentials, "credentials", "", "external: YAML file of pre-provisioned keys (keys: {default: KEY})")
	fl.StringSliceVar(&f.models, "models", nil, "external: model names the deployment serves, the default first; kind: fake (default) or ollama")
	fl.BoolVar(&f.keep, "keep", false, "kind: keep the cluster afterwards (kubectl --context kind-gatecheck)")
	fl.StringVar(&f.nodeImage, "node-image", "", "kind: the node image, kindest/node:vX.Y.Z (default: the kind library's)")
	fl.StringVar(&f.imageArchive, "image-archive", "", "kind: a gatecheck image archive from `gatecheck images build` (default: build one from this checkout)")
	fl.StringVar(&f.ollamaModel, "ollama-model", "", "kind --models ollama: the model Ollama pulls (default "+kind.DefaultOllamaModel+"; needs network)")
	fl.StringVar(&f.logs, "logs", "", "kind: where pod logs go when something fails (default: kind-logs beside --report-output, else _out/kind-logs)")
	fl.StringVar(&f.reportOutput, "report-output", "", "write the ConformanceReport (YAML) here")
	fl.StringVar(&f.junit, "junit", "", "write JUnit XML here")
	fl.StringVar(&f.summary, "summary", "", "write a Markdown summary here")
	fl.StringVar(&f.readme, "readme", "", "write the README a vendor publishes beside the report, with a Reproduce section (certify: default README.md beside --report-output)")
	fl.StringVar(&f.supported, "supported-features", "", "features the target claims, comma-separated (default: all)")
	fl.StringVar(&f.exempt, "exempt-features", "", "features the target does not claim, comma-separated")
	fl.StringVar(&f.profiles, "profiles", "", "profiles to run, comma-separated: AUTHN, AUTHZ, RATELIMIT, THREAT, ROUTING (default: all)")
	fl.StringVar(&f.run, "run", "", "run only scenarios whose name (area/name) matches this regexp")
	fl.StringVar(&f.skip, "skip", "", "skip scenarios whose name matches this regexp")
	fl.StringVar(&f.organization, "organization", "", "implementation: the organization that makes it")
	fl.StringVar(&f.project, "project", "", "implementation: the project")
	fl.StringVar(&f.url, "url", "", "implementation: its URL")
	fl.StringVar(&f.version, "version", "", "implementation: its version")
	fl.StringArrayVar(&f.contact, "contact", nil, "implementation: a contact (repeatable)")
	fl.IntVar(&f.concurrency, "concurrency", 0, "scenarios run at once (default: 4 per CPU)")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "print only failures and the summary")
}

func (f *conformanceFlags) options() (conformance.Options, error) {
	var o conformance.Options
	var err error
	if f.run != "" {
		if o.Run, err = regexp.Compile(f.run); err != nil {
			return o, fmt.Errorf("--run: %w", err)
		}
	}
	if f.skip != "" {
		if o.Skip, err = regexp.Compile(f.skip); err != nil {
			return o, fmt.Errorf("--skip: %w", err)
		}
	}
	if o.Profiles, err = conformance.ParseProfiles(f.profiles); err != nil {
		return o, fmt.Errorf("--profiles: %w", err)
	}
	if f.supported != "" {
		if o.Supported, err = conformance.ParseFeatures(f.supported); err != nil {
			return o, fmt.Errorf("--supported-features: %w", err)
		}
	}
	if o.Exempt, err = conformance.ParseFeatures(f.exempt); err != nil {
		return o, fmt.Errorf("--exempt-features: %w", err)
	}
	o.Concurrency = f.concurrency
	return o, nil
}

func (f *conformanceFlags) newTarget(ctx context.Context, g *globals) (harness.Target, error) {
	switch f.target {
	case "sim":
		log, err := g.logger()
		if err != nil {
			return nil, err
		}
		snap, err := loadSnapshot(f.manifests)
		if err != nil {
			return nil, err
		}
		return sim.NewTarget(ctx, sim.Options{Snapshot: snap, Logger: log})
	case "external":
		token := f.adminToken
		if token == "" {
			token = os.Getenv("GATECHECK_ADMIN_TOKEN")
		}
		return external.New(external.Options{
			GatewayURL: f.gatewayURL, ManagementURL: f.managementURL, Org: f.org, Token: token,
			TokenURL: f.tokenURL, CredentialsFile: f.credentials, Models: f.models,
		})
	case "kind":
		if f.manifests != "" {
			return nil, fmt.Errorf("--manifests is for --target sim: the kind target runs the default topology")
		}
		models, err := kindModels(f.models)
		if err != nil {
			return nil, err
		}
		log, err := g.logger()
		if err != nil {
			return nil, err
		}
		return kind.New(ctx, kind.Options{
			Keep: f.keep, NodeImage: f.nodeImage, ImageArchive: f.imageArchive,
			Models: models, OllamaModel: f.ollamaModel, LogDir: f.logDir(),
			Progress: g.stdout, Logger: log,
		})
	}
	return nil, fmt.Errorf("--target %q: want sim, kind or external", f.target)
}

// errScenariosFailed is returned when the run completed but scenarios failed.
var errScenariosFailed = errors.New("conformance failed")

func runConformance(ctx context.Context, g *globals, f *conformanceFlags, certify bool) (*report.ConformanceReport, error) {
	opts, err := f.options()
	if err != nil {
		return nil, err
	}
	impl := report.Implementation{Organization: f.organization, Project: f.project, URL: f.url, Version: f.version, Contact: f.contact}
	if certify {
		var missing []string
		for flag, v := range map[string]string{"--organization": f.organization, "--project": f.project, "--url": f.url, "--version": f.version, "--report-output": f.reportOutput} {
			if v == "" {
				missing = append(missing, flag)
			}
		}
		if len(f.contact) == 0 {
			missing = append(missing, "--contact")
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("certify needs %s", strings.Join(slices.Sorted(slices.Values(missing)), ", "))
		}
	}
	start := time.Now()
	target, err := f.newTarget(ctx, g)
	if err != nil {
		return nil, err
	}
	defer target.Close()
	var progress io.Writer = g.stdout
	if f.quiet {
		progress = failuresOnly{g.stdout}
	}
	fmt.Fprintf(g.stdout, "gatecheck conformance: target %s, gateway %s\n", target.Name(), target.GatewayURL())
	opts.Progress = progress
	results, err := conformance.Run(ctx, target, opts)
	if err != nil {
		return nil, err
	}
	claimed := opts.Claimed()
	var supported, unsupported []conformance.FeatureName
	for _, feat := range conformance.Features {
		if claimed[feat.Name] {
			supported = append(supported, feat.Name)
		} else {
			unsupported = append(unsupported, feat.Name)
		}
	}
	rs := toReportResults(results)
	rep, err := report.Build(rs, report.Options{
		Implementation: impl, Target: target.Name(), Version: buildVersion(), Profiles: opts.Profiles,
		Supported: supported, Unsupported: unsupported, Date: time.Now().UTC().Truncate(time.Second),
	})
	if err != nil {
		return nil, fmt.Errorf("building the report: %w", err)
	}
	if certify {
		if err := rep.ValidateForCertification(); err != nil {
			return nil, fmt.Errorf("the report is not fit for certification:\n%w", err)
		}
	}
	if err := writeReports(f, rep, rs); err != nil {
		return nil, err
	}
	failed := printSummary(g.stdout, rep, results, time.Since(start))
	if kt, ok := target.(*kind.Target); ok && failed > 0 {
		if err := kt.CollectLogs(ctx, f.logDir()); err != nil {
			fmt.Fprintf(g.stderr, "gatecheck: collecting the cluster's logs: %v\n", err)
		} else {
			fmt.Fprintf(g.stdout, "the cluster's logs are in %s\n", f.logDir())
		}
	}
	if failed > 0 {
		return rep, fmt.Errorf("%w: %d of %d scenarios failed", errScenariosFailed, failed, len(results))
	}
	return rep, nil
}

func toReportResults(results []conformance.Result) []report.ScenarioResult {
	out := make([]report.ScenarioResult, len(results))
	for i, r := range results {
		out[i] = report.ScenarioResult{
			Name: r.Name, Features: r.Features, Outcome: report.Outcome(r.Outcome),
			Reason: r.Reason, Started: r.Started, Duration: r.Duration, Log: r.Log,
		}
	}
	return out
}

func writeReports(f *conformanceFlags, rep *report.ConformanceReport, rs []report.ScenarioResult) error {
	write := func(path string, fn func(io.Writer) error) error {
		if path == "" {
			return nil
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		tmp := path + ".tmp"
		file, err := os.Create(tmp)
		if err != nil {
			return err
		}
		if err := fn(file); err != nil {
			file.Close()
			os.Remove(tmp)
			return fmt.Errorf("%s: %w", path, err)
		}
		if err := file.Close(); err != nil {
			os.Remove(tmp)
			return err
		}
		return os.Rename(tmp, path)
	}
	if err := write(f.reportOutput, func(w io.Writer) error { return report.WriteYAML(w, rep) }); err != nil {
		return err
	}
	if err := write(f.junit, func(w io.Writer) error { return report.WriteJUnit(w, "gatecheck-conformance", rs) }); err != nil {
		return err
	}
	if err := write(f.summary, func(w io.Writer) error { return report.WriteMarkdown(w, rep, rs) }); err != nil {
		return err
	}
	if f.readme != "" || (f.reportOutput != "" && f.target == "external" && f.organization != "") {
		readme := f.readme
		if readme == "" {
			readme = filepath.Join(filepath.Dir(f.reportOutput), "README.md")
		}
		if err := write(readme, func(w io.Writer) error {
			return report.WriteVendorReadme(w, rep, report.ReproduceCommand(rep))
		}); err != nil {
			return err
		}
	}
	return nil
}

// printSummary prints the per-profile table and returns how many failed.
func printSummary(w io.Writer, rep *report.ConformanceReport, results []conformance.Result, took time.Duration) int {
	count := map[conformance.Outcome]int{}
	for _, r := range results {
		count[r.Outcome]++
	}
	fmt.Fprintf(w, "\n%-10s %-9s %-9s %s\n", "PROFILE", "CORE", "EXTENDED", "SUMMARY")
	for _, p := range rep.Profiles {
		fmt.Fprintf(w, "%-10s %-9s %-9s %s\n", p.Name, p.Core.Result, extendedResult(p), p.Summary)
	}
	fmt.Fprintf(w, "\n%d scenarios: %d passed, %d failed, %d skipped in %s\n", len(results), count[conformance.Passed], count[conformance.Failed], count[conformance.Skipped], took.Round(time.Millisecond))
	return count[conformance.Failed]
}

func extendedResult(p report.ProfileReport) string {
	if p.Extended == nil {
		return "-"
	}
	return string(p.Extended.Result)
}

// failuresOnly passes on only the progress lines about failures.
type failuresOnly struct{ w io.Writer }

func (f failuresOnly) Write(p []byte) (int, error) {
	if strings.Contains(string(p), "] FAIL ") {
		return f.w.Write(p)
	}
	return len(p), nil
}

// kindModels reads --models for the kind target: fake (the default) or ollama.
func kindModels(models []string) (string, error) {
	switch {
	case len(models) == 0:
		return kind.ModelsFake, nil
	case len(models) == 1 && (models[0] == kind.ModelsFake || models[0] == kind.ModelsOllama):
		return models[0], nil
	}
	return "", fmt.Errorf("--models %s: with --target kind, want fake or ollama", strings.Join(models, ","))
}

// logDir is where the kind target's logs go.
func (f *conformanceFlags) logDir() string {
	switch {
	case f.logs != "":
		return f.logs
	case f.reportOutput != "":
		return filepath.Join(filepath.Dir(f.reportOutput), "kind-logs")
	}
	return filepath.Join("_out", "kind-logs")
}
