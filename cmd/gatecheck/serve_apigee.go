package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatecheck/gatecheck/fakes/apigee"
	"github.com/gatecheck/gatecheck/fakes/apigee/mgmt"
	"github.com/gatecheck/gatecheck/fakes/apigee/policy"
	"github.com/gatecheck/gatecheck/fakes/apigee/state"
	"github.com/gatecheck/gatecheck/internal/clock"
	"github.com/gatecheck/gatecheck/manifests"
)

func newServeApigeeCmd(g *globals) *cobra.Command {
	var (
		dir, policyName, adminToken, stateDir, org string
		grpcPort, adminPort                        int
	)
	cmd := &cobra.Command{
		Use:   "apigee",
		Short: "Run the fake Apigee runtime: ext_proc on --grpc-port, management API and /oauth/token on --admin-port",
		Long: `serve apigee runs the runtime of one APIMExtensionPolicy of a topology (its
default security and attached policy XML) as an ext_proc server, and the
management API in Apigee's shapes. Products and operation sets of the topology
are synced into its state first, as the Apigee Operator does.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			if adminToken == "" {
				return fmt.Errorf("--admin-token is required: the management API refuses calls without it")
			}
			snap, err := loadSnapshot(dir)
			if err != nil {
				return err
			}
			ext, err := pickExtension(snap, policyName)
			if err != nil {
				return err
			}
			clk := &clock.Shifted{}
			var store state.Store = state.NewMemory(state.WithClock(clk))
			if stateDir != "" {
				if store, err = state.OpenFile(filepath.Join(stateDir, "state.db"), state.WithClock(clk)); err != nil {
					return err
				}
			}
			defer store.Close()
			ctx := cmd.Context()
			if err := apigee.SyncProducts(ctx, store, snap.Products); err != nil {
				return err
			}
			flow, err := apigee.BuildFlow(ext, policy.Env{Store: store, Clock: clk, Org: org, HTTPClient: &http.Client{Timeout: 5 * time.Second}})
			if err != nil {
				return err
			}
			traces := apigee.NewTraces(0)
			rt := apigee.New(apigee.Options{Flow: flow, Clock: clk, Logger: log, Traces: traces})
			api, err := mgmt.New(mgmt.Options{
				Store: store, Org: org, AdminToken: adminToken, Clock: clk, Logger: log,
				OnClockAdvance: func(d time.Duration) error { clk.Advance(d); return nil },
				Emulator:       apigee.TracesHandler(traces, adminToken),
			})
			if err != nil {
				return err
			}
			lis, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(grpcPort)))
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "apigee runtime for %s listening on %s\n", ext.Name, lis.Addr())
			errc := make(chan error, 2)
			go func() { errc <- rt.Serve(lis) }()
			go func() {
				errc <- serveHTTP(ctx, g, net.JoinHostPort("", strconv.Itoa(adminPort)), api.Handler(), "apigee management API")
			}()
			select {
			case err := <-errc:
				rt.Stop()
				return err
			case <-ctx.Done():
				rt.Stop()
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				select {
				case <-errc:
				case <-sctx.Done():
				}
				return nil
			}
		},
	}
	cmd.Flags().StringVar(&dir, "manifests", "", "directory of the topology's manifests (default: the embedded default topology)")
	cmd.Flags().StringVar(&policyName, "policy", "", "the APIMExtensionPolicy whose flow to run (default: the first)")
	cmd.Flags().IntVar(&grpcPort, "grpc-port", manifests.RuntimePort, "port of the ext_proc gRPC server")
	cmd.Flags().IntVar(&adminPort, "admin-port", 8081, "port of the management API and /oauth/token")
	cmd.Flags().StringVar(&adminToken, "admin-token", "", "bearer token the management API requires")
	cmd.Flags().StringVar(&stateDir, "state-dir", "", "keep state in this directory (default: in memory)")
	cmd.Flags().StringVar(&org, "org", mgmt.DefaultOrg, "Apigee organisation name")
	return cmd
}

func pickExtension(snap *manifests.Snapshot, name string) (*manifests.Extension, error) {
	for _, gw := range snap.Gateways {
		for _, ext := range gw.Extensions {
			if name == "" || ext.Name == name {
				return ext, nil
			}
		}
	}
	if name == "" {
		return nil, fmt.Errorf("the topology has no APIMExtensionPolicy")
	}
	return nil, fmt.Errorf("--policy: no APIMExtensionPolicy named %s targets a Gateway", name)
}
