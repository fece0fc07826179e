package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatecheck/gatecheck/fakes/apigee"
	"github.com/gatecheck/gatecheck/internal/apigeeapi"
)

func newSandboxTraceCmd(g *globals) *cobra.Command {
	var (
		readyFile, admin, token string
		limit                   int
		asJSON                  bool
	)
	cmd := &cobra.Command{
		Use:   "trace [TRACE-ID]",
		Short: "Print the fake Apigee's decision traces: each policy, its outcome, its time and the variables it set",
		Long: `trace prints the latest decision traces of a running sandbox (or the one whose id
a denied response carried in x-gatecheck-trace-id). It finds the sandbox
through --ready-file, or --admin and --admin-token.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if admin == "" || token == "" {
				if readyFile == "" {
					return fmt.Errorf("say where the sandbox is: --ready-file, or --admin and --admin-token")
				}
				b, err := os.ReadFile(readyFile)
				if err != nil {
					return fmt.Errorf("--ready-file: %w", err)
				}
				var r struct{ Admin, AdminToken string }
				if err := json.Unmarshal(b, &r); err != nil {
					return fmt.Errorf("--ready-file %s: %w", readyFile, err)
				}
				admin, token = r.Admin, r.AdminToken
			}
			if admin == "" {
				return fmt.Errorf("the sandbox has no fake Apigee (its topology has no APIMExtensionPolicy)")
			}
			path := fmt.Sprintf("/v1/emulator/traces?limit=%d", limit)
			if len(args) == 1 {
				path = "/v1/emulator/traces/" + args[0]
			}
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, strings.TrimRight(admin, "/")+path, nil)
			if err != nil {
				return err
			}
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
			if err != nil {
				return err
			}
			if resp.StatusCode != http.StatusOK {
				var e apigeeapi.Error
				if json.Unmarshal(body, &e) == nil && e.Err.Message != "" {
					return fmt.Errorf("traces: %d %s", resp.StatusCode, e.Err.Message)
				}
				return fmt.Errorf("traces: %s", resp.Status)
			}
			var traces []apigee.Trace
			if len(args) == 1 {
				var tr apigee.Trace
				if err := json.Unmarshal(body, &tr); err != nil {
					return fmt.Errorf("traces: %w", err)
				}
				traces = []apigee.Trace{tr}
			} else {
				var list struct{ Traces []apigee.Trace }
				if err := json.Unmarshal(body, &list); err != nil {
					return fmt.Errorf("traces: %w", err)
				}
				traces = list.Traces
			}
			if asJSON {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(traces)
			}
			printTraces(g.stdout, traces)
			return nil
		},
	}
	cmd.Flags().StringVar(&readyFile, "ready-file", "", "the sandbox's ready file")
	cmd.Flags().StringVar(&admin, "admin", "", "the management API's base URL")
	cmd.Flags().StringVar(&token, "admin-token", "", "the management API's bearer token")
	cmd.Flags().IntVar(&limit, "limit", 5, "how many of the latest traces")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printTraces(w io.Writer, traces []apigee.Trace) {
	if len(traces) == 0 {
		fmt.Fprintln(w, "no traces yet")
		return
	}
	for _, tr := range traces {
		outcome := tr.Outcome
		if tr.Fault != "" {
			outcome += " " + tr.Fault
		}
		fmt.Fprintf(w, "%s  %s %s %s  → %s (%d)  [%s]\n", tr.Time.Format(time.RFC3339), tr.ID, tr.Method, tr.Path, outcome, tr.Status, tr.Flow)
		for _, s := range tr.Steps {
			fmt.Fprintf(w, "    %-8s %-24s %-20s %-40s %s\n", s.Phase, s.Policy, s.Kind, s.Outcome, s.Duration)
			for _, k := range slices.Sorted(maps.Keys(s.Vars)) {
				fmt.Fprintf(w, "             %s = %s\n", k, s.Vars[k])
			}
		}
	}
}
