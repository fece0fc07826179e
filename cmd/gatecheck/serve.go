package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/gatecheck/gatecheck/internal/httpserver"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/client/config"

	"github.com/gatecheck/gatecheck/fakes/epp"
	"github.com/gatecheck/gatecheck/fakes/gateway"
	"github.com/gatecheck/gatecheck/fakes/gateway/controller"
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
	return serveServer(ctx, g, addr, &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, nil, what)
}

// serveServer serves srv on addr, through wrap when it is set, until ctx ends.
func serveServer(ctx context.Context, g *globals, addr string, srv *http.Server, wrap func(net.Listener) net.Listener, what string) error {
	return httpserver.Run(ctx, addr, srv, wrap, func(a string) { fmt.Fprintf(g.stdout, "%s listening on %s\n", what, a) })
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
			// In a cluster, without --endpoints, the endpoints are the ready
			// Pods of the pool, watched through the API server.
			discover := len(eps) == 0 && pool != "" && inCluster()
			poolRef, err := eppPoolRef(pool, discover)
			if err != nil {
				return err
			}
			s := epp.New(epp.Config{Pool: poolRef.Name, Logger: log, Seed: seed})
			s.SetEndpoints(eps)
			s.Start(cmd.Context())
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			watchErr := make(chan error, 1)
			if discover {
				cfg, err := ctrlconfig.GetConfig()
				if err != nil {
					return fmt.Errorf("reaching the API server to watch pool %s: %w", poolRef, err)
				}
				go func() {
					watchErr <- controller.WatchPool(ctx, cfg, poolRef, log, func(found []controller.Endpoint) {
						eps := make([]epp.Endpoint, len(found))
						for i, f := range found {
							eps[i] = epp.Endpoint{Address: f.Address, Labels: f.Labels}
						}
						s.SetEndpoints(eps)
					})
				}()
			}
			lis, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(grpcPort)))
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "endpoint picker for pool %s listening on %s\n", poolRef.Name, lis.Addr())
			go func() {
				select {
				case <-ctx.Done():
				case err := <-watchErr:
					if err != nil {
						log.Error("watching the pool's pods failed; stopping", "pool", poolRef.String(), "err", err)
						watchErr <- err
					}
				}
				s.Close()
			}()
			if err := s.Serve(lis); err != nil {
				return err
			}
			select {
			case err := <-watchErr:
				return err
			default:
				return nil
			}
		},
	}
	cmd.Flags().StringVar(&pool, "pool", "", "the InferencePool this picker serves, [namespace/]name; in a cluster without --endpoints, its ready Pods are its endpoints")
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

		cluster                              bool
		healthAddr, mgmtURL, org, adminToken string
	)
	cmd := &cobra.Command{
		Use:   "gateway",
		Short: "Run the Gateway API data plane for a topology",
		Long: `serve gateway runs the data plane of one Gateway of a topology. Services resolve
through DNS (name.namespace.svc:port) unless --service maps them; pool endpoints
come from --pool.

With --in-cluster (the default inside a Pod when neither --manifests, --service
nor --pool is given) it is a Gateway API controller instead: it watches the
topology through the API server, compiles it as the simulation does, serves it,
writes status conditions, and syncs APIProducts into the fake Apigee runtime at
--apigee-management. Policy XML, which a cluster does not hold, comes from
--manifests (or the embedded default topology).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			if cluster || (inCluster() && dir == "" && len(services) == 0 && len(pools) == 0) {
				return serveGatewayInCluster(cmd.Context(), g, log, dir, addr, gwName, healthAddr, mgmtURL, org, adminToken, seed)
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
			// The gateway's own server and listener: its limits and the
			// request smuggling checks apply on the wire.
			wire := func(lis net.Listener) net.Listener { return gw.Listener(lis, ref) }
			return serveServer(cmd.Context(), g, addr, gw.Server(ref), wire, "gateway "+ref.String())
		},
	}
	cmd.Flags().StringVar(&dir, "manifests", "", "directory of the topology's manifests (default: the embedded default topology)")
	cmd.Flags().StringVar(&addr, "addr", ":8080", "listen address")
	cmd.Flags().StringVar(&gwName, "gateway", "", "namespace/name of the Gateway to serve (default: the first)")
	cmd.Flags().StringArrayVar(&services, "service", nil, "namespace/name=host:port[,host:port] address of a Service (repeatable)")
	cmd.Flags().StringArrayVar(&pools, "pool", nil, "namespace/name=ip:port[,ip:port] endpoints of an InferencePool (repeatable)")
	cmd.Flags().Int64Var(&seed, "seed", 1, "seed for weighted route choices")
	cmd.Flags().BoolVar(&cluster, "in-cluster", false, "watch the topology through the API server (in a Pod, or with $KUBECONFIG)")
	cmd.Flags().StringVar(&healthAddr, "health-addr", ":8082", "in-cluster: /healthz and /readyz (ready once the topology compiled)")
	cmd.Flags().StringVar(&mgmtURL, "apigee-management", "", "in-cluster: the fake Apigee's management API, where APIProducts are synced")
	cmd.Flags().StringVar(&org, "org", "gatecheck", "in-cluster: the Apigee organisation of --apigee-management")
	cmd.Flags().StringVar(&adminToken, "admin-token", "", "in-cluster: the management API's bearer token (default $GATECHECK_ADMIN_TOKEN)")
	return cmd
}

// inCluster reports whether this process runs in a Kubernetes Pod.
func inCluster() bool { return os.Getenv("KUBERNETES_SERVICE_HOST") != "" }

// eppPoolRef reads --pool: [namespace/]name, the namespace defaulting to the
// Pod's own when discovering in a cluster.
func eppPoolRef(pool string, discover bool) (manifests.Ref, error) {
	if strings.Contains(pool, "/") {
		ref, err := parseRef(pool)
		if err != nil {
			return ref, fmt.Errorf("--pool: %w", err)
		}
		return ref, nil
	}
	ns := "default"
	if discover {
		var err error
		if ns, err = controller.InClusterNamespace(); err != nil {
			return manifests.Ref{}, err
		}
	}
	return manifests.Ref{Namespace: ns, Name: pool}, nil
}

// serveGatewayInCluster runs the in-cluster gateway (package
// fakes/gateway/controller).
//
// The cluster holds no policy XML: it comes from --manifests DIR, or the
// embedded default topology, as the fake Apigee runtime's does.
func serveGatewayInCluster(ctx context.Context, g *globals, log *slog.Logger, dir, addr, gwName, healthAddr, mgmtURL, org, adminToken string, seed int64) error {
	fsys := manifests.Default()
	if dir != "" {
		fsys = os.DirFS(dir)
	}
	_, policies, err := manifests.Load(fsys, ".")
	if err != nil {
		return fmt.Errorf("policy XML: %w", err)
	}
	cfg, err := ctrlconfig.GetConfig()
	if err != nil {
		return fmt.Errorf("--in-cluster: reaching the API server: %w", err)
	}
	var ref manifests.Ref
	if gwName != "" {
		if ref, err = parseRef(gwName); err != nil {
			return fmt.Errorf("--gateway: %w", err)
		}
	}
	if adminToken == "" {
		adminToken = os.Getenv("GATECHECK_ADMIN_TOKEN")
	}
	if mgmtURL != "" && adminToken == "" {
		return fmt.Errorf("--apigee-management needs the admin token (--admin-token or $GATECHECK_ADMIN_TOKEN)")
	}
	return controller.Serve(ctx, cfg, controller.ServeOptions{
		Addr: addr, HealthAddr: healthAddr, Gateway: ref,
		ManagementURL: mgmtURL, Org: org, AdminToken: adminToken,
		Policies: policies, Seed: seed, Logger: log,
		Ready: func(a string) { fmt.Fprintf(g.stdout, "in-cluster gateway listening on %s\n", a) },
	})
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
