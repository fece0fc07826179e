package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatecheck/gatecheck/fakes/epp"
	"github.com/gatecheck/gatecheck/fakes/gateway"
	"github.com/gatecheck/gatecheck/fakes/model"
	"github.com/gatecheck/gatecheck/manifests"
)

func newServeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run one component as its own process (what the kind images run)",
	}
	cmd.AddCommand(newServeModelCmd(g), newServeEPPCmd(g), newServeGatewayCmd(g), newServeApigeeCmd(g))
	return cmd
}

func newServeModelCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "model [llm-d-inference-sim flags]",
		Short: "Run a fake model server (OpenAI and Ollama APIs, vLLM metrics)",
		Long: `serve model runs the fake model server. Its flags are llm-d-inference-sim's:
--model, --served-model-name, --port, --mode, --seed, --max-num-seqs,
--max-model-len, --time-to-first-token, --inter-token-latency, --lora-modules,
--max-loras, --failure-injection-rate, --pod-name, --pod-namespace.`,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, a := range args {
				if a == "-h" || a == "--help" {
					return cmd.Help()
				}
			}
			cfg, err := model.ParseFlags(args)
			if err != nil {
				return err
			}
			if cfg.PodName == "" {
				cfg.PodName = os.Getenv("POD_NAME")
			}
			if cfg.PodNamespace == "" {
				cfg.PodNamespace = os.Getenv("POD_NAMESPACE")
			}
			m, err := model.New(cfg)
			if err != nil {
				return err
			}
			defer m.Close()
			return serveHTTP(cmd.Context(), g, net.JoinHostPort("", strconv.Itoa(cfg.Port)), m.Handler(), "model server")
		},
	}
}

func serveHTTP(ctx context.Context, g *globals, addr string, h http.Handler, what string) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(g.stdout, "%s listening on %s\n", what, lis.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func newServeEPPCmd(g *globals) *cobra.Command {
	var (
		pool      string
		grpcPort  int
		endpoints []string
		seed      int64
	)
	cmd := &cobra.Command{
		Use:   "epp",
		Short: "Run an endpoint picker (Envoy ext_proc over gRPC, with gRPC health)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			var eps []epp.Endpoint
			for _, e := range endpoints {
				if _, _, err := net.SplitHostPort(e); err != nil {
					return fmt.Errorf("--endpoints %q: want ip:port: %w", e, err)
				}
				eps = append(eps, epp.Endpoint{Address: e})
			}
			s := epp.New(epp.Config{Pool: pool, Logger: log, Seed: seed})
			s.SetEndpoints(eps)
			s.Start(cmd.Context())
			lis, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(grpcPort)))
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "endpoint picker for pool %s listening on %s\n", pool, lis.Addr())
			go func() {
				<-cmd.Context().Done()
				s.Close()
			}()
			return s.Serve(lis)
		},
	}
	cmd.Flags().StringVar(&pool, "pool", "", "name of the InferencePool this picker serves")
	cmd.Flags().IntVar(&grpcPort, "grpc-port", 9002, "port of the ext_proc gRPC server (gRPC health is served on it too)")
	cmd.Flags().StringSliceVar(&endpoints, "endpoints", nil, "model server endpoints, ip:port, comma-separated")
	cmd.Flags().Int64Var(&seed, "seed", 1, "seed for tie-breaks")
	return cmd
}

func newServeGatewayCmd(g *globals) *cobra.Command {
	var (
		dir      string
		addr     string
		gwName   string
		services []string
		pools    []string
		seed     int64
	)
	cmd := &cobra.Command{
		Use:   "gateway",
		Short: "Run the Gateway API data plane for a topology",
		Long: `serve gateway runs the data plane of one Gateway of a topology. Services resolve
through DNS (name.namespace.svc:port) unless --service maps them; pool endpoints
come from --pool.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			snap, err := loadSnapshot(dir)
			if err != nil {
				return err
			}
			res, err := newStaticResolver(services, pools)
			if err != nil {
				return err
			}
			gw, err := gateway.New(snap, gateway.Options{Resolver: res, Logger: log, Seed: seed})
			if err != nil {
				return err
			}
			defer gw.Close()
			ref, err := pickGateway(snap, gwName)
			if err != nil {
				return err
			}
			return serveHTTP(cmd.Context(), g, addr, gw.Handler(ref), "gateway "+ref.String())
		},
	}
	cmd.Flags().StringVar(&dir, "manifests", "", "directory of the topology's manifests (default: the embedded default topology)")
	cmd.Flags().StringVar(&addr, "addr", ":8080", "listen address")
	cmd.Flags().StringVar(&gwName, "gateway", "", "namespace/name of the Gateway to serve (default: the first)")
	cmd.Flags().StringArrayVar(&services, "service", nil, "namespace/name=host:port[,host:port] address of a Service (repeatable)")
	cmd.Flags().StringArrayVar(&pools, "pool", nil, "namespace/name=ip:port[,ip:port] endpoints of an InferencePool (repeatable)")
	cmd.Flags().Int64Var(&seed, "seed", 1, "seed for weighted route choices")
	return cmd
}

func pickGateway(snap *manifests.Snapshot, name string) (manifests.Ref, error) {
	if len(snap.Gateways) == 0 {
		return manifests.Ref{}, errors.New("the topology has no Gateway")
	}
	if name == "" {
		return snap.Gateways[0].Ref, nil
	}
	ref, err := parseRef(name)
	if err != nil {
		return manifests.Ref{}, fmt.Errorf("--gateway: %w", err)
	}
	for _, gw := range snap.Gateways {
		if gw.Ref == ref {
			return ref, nil
		}
	}
	return manifests.Ref{}, fmt.Errorf("--gateway: no Gateway %s in the topology", ref)
}

func parseRef(s string) (manifests.Ref, error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok {
		ns, name = "default", s
	}
	if ns == "" || name == "" {
		return manifests.Ref{}, fmt.Errorf("%q: want namespace/name", s)
	}
	return manifests.Ref{Namespace: ns, Name: name}, nil
}

// staticResolver resolves Services and pools from flags, and Services not
// named there through cluster DNS.
type staticResolver struct {
	services map[manifests.Ref][]string
	pools    map[manifests.Ref][]string
}

func newStaticResolver(services, pools []string) (*staticResolver, error) {
	r := &staticResolver{services: map[manifests.Ref][]string{}, pools: map[manifests.Ref][]string{}}
	parse := func(flag string, vals []string, into map[manifests.Ref][]string) error {
		for _, v := range vals {
			name, addrs, ok := strings.Cut(v, "=")
			if !ok {
				return fmt.Errorf("--%s %q: want namespace/name=host:port[,host:port]", flag, v)
			}
			ref, err := parseRef(name)
			if err != nil {
				return fmt.Errorf("--%s: %w", flag, err)
			}
			for _, a := range strings.Split(addrs, ",") {
				if _, _, err := net.SplitHostPort(a); err != nil {
					return fmt.Errorf("--%s %q: %w", flag, v, err)
				}
				into[ref] = append(into[ref], a)
			}
		}
		return nil
	}
	if err := parse("service", services, r.services); err != nil {
		return nil, err
	}
	if err := parse("pool", pools, r.pools); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *staticResolver) ServiceAddrs(svc manifests.Ref, port int32) ([]string, error) {
	if a, ok := r.services[svc]; ok {
		return a, nil
	}
	return []string{net.JoinHostPort(svc.Name+"."+svc.Namespace+".svc", strconv.Itoa(int(port)))}, nil
}

func (r *staticResolver) PoolEndpoints(pool manifests.Ref) ([]string, error) {
	if a, ok := r.pools[pool]; ok {
		return a, nil
	}
	return nil, fmt.Errorf("no endpoints known for pool %s (give them with --pool)", pool)
}
