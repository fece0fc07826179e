package controller

import (
	"context"
	"errors"
	"fmt"
	"github.com/gatecheck/gatecheck/internal/httpserver"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/gatecheck/gatecheck/fakes/gateway"
	"github.com/gatecheck/gatecheck/internal/apigeeapi"
	"github.com/gatecheck/gatecheck/manifests"
)

// ServeOptions configure Serve.
type ServeOptions struct {
	// Addr is the data plane's listen address, for example ":8080".
	Addr string
	// HealthAddr serves /healthz and /readyz (ready once a topology has been
	// compiled); empty turns them off.
	HealthAddr string
	// Gateway is the Gateway served on Addr; the zero Ref means the first
	// Gateway of the compiled topology.
	Gateway manifests.Ref
	// ManagementURL, Org and AdminToken reach the fake Apigee's management
	// API, where products are synced; an empty ManagementURL skips syncing.
	ManagementURL, Org, AdminToken string
	// ControllerName; empty means DefaultControllerName.
	ControllerName string
	// Policies is Apigee policy XML by path (the cluster holds none).
	Policies map[string][]byte
	// Seed seeds the data plane's random choices.
	Seed int64
	// Logger; nil discards.
	Logger *slog.Logger
	// Ready, when set, is told the data plane's address once it listens.
	Ready func(addr string)
}

// Serve runs the in-cluster gateway until ctx ends: the controller, the data
// plane on Addr, and health endpoints. cfg reaches the API server
// (rest.InClusterConfig in a Pod).
func Serve(ctx context.Context, cfg *rest.Config, o ServeOptions) error {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// controller-runtime logs through a process-wide logr logger and warns
	// when none was set; this command owns the process.
	ctrllog.SetLogger(logr.FromSlogHandler(log.Handler()))
	scheme, err := NewScheme()
	if err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Logger:                 logr.FromSlogHandler(log.Handler()),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: cmpOr(o.HealthAddr, "0"),
	})
	if err != nil {
		return fmt.Errorf("controller manager: %w", err)
	}
	// Start the Pod and InferencePool informers with the manager, so the
	// first request need not wait for them.
	for _, obj := range []client.Object{&corev1.Pod{}, &InferencePool{}} {
		if _, err := mgr.GetCache().GetInformer(ctx, obj); err != nil {
			return fmt.Errorf("informer: %w", err)
		}
	}
	gw, err := gateway.New(&manifests.Snapshot{}, gateway.Options{
		Resolver: &Resolver{Reader: mgr.GetCache()},
		Logger:   log.With("component", "gateway"),
		Seed:     o.Seed,
	})
	if err != nil {
		return err
	}
	defer gw.Close()
	var products ProductSyncer
	if o.ManagementURL != "" {
		products = &ManagementSyncer{Client: apigeeapi.NewClient(o.ManagementURL, o.Org, o.AdminToken, &http.Client{Timeout: 10 * time.Second})}
	}
	r := NewReconciler(mgr.GetClient(), Options{
		ControllerName: o.ControllerName,
		Policies:       o.Policies,
		OnSnapshot:     gw.Swap,
		Products:       products,
		Logger:         log.With("component", "controller"),
	})
	if err := r.SetupWithManager(mgr); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("topology", func(*http.Request) error {
		if r.Served() == nil {
			return errors.New("no topology compiled yet")
		}
		return nil
	}); err != nil {
		return err
	}
	// A named Gateway gets the data plane's own server and listener, so its
	// limits and request smuggling checks apply on the wire; otherwise each
	// request goes to the first Gateway compiled.
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var ref manifests.Ref
		if snap := r.Served(); snap != nil && len(snap.Gateways) > 0 {
			ref = snap.Gateways[0].Ref
		}
		gw.Handler(ref).ServeHTTP(w, req)
	})}
	var wrap func(net.Listener) net.Listener
	if o.Gateway != (manifests.Ref{}) {
		srv = gw.Server(o.Gateway)
		wrap = func(lis net.Listener) net.Listener { return gw.Listener(lis, o.Gateway) }
	}
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		return httpserver.Run(ctx, o.Addr, srv, wrap, o.Ready)
	})); err != nil {
		return err
	}
	log.Info("in-cluster gateway starting", "addr", o.Addr, "controller", cmpOr(o.ControllerName, DefaultControllerName))
	return mgr.Start(ctx)
}

// WatchPool calls update with the pool's endpoints (see PoolEndpoints) now
// and whenever they change, until ctx ends: what an endpoint picker in a
// cluster runs instead of a static endpoint list. It reads only the pool's
// namespace, so a Role there is enough.
func WatchPool(ctx context.Context, cfg *rest.Config, pool manifests.Ref, log *slog.Logger, update func([]Endpoint)) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctrllog.SetLogger(logr.FromSlogHandler(log.Handler()))
	scheme, err := NewScheme()
	if err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Logger:                 logr.FromSlogHandler(log.Handler()),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cache.Options{DefaultNamespaces: map[string]cache.Config{pool.Namespace: {}}},
	})
	if err != nil {
		return fmt.Errorf("controller manager: %w", err)
	}
	var (
		mu   sync.Mutex
		last []Endpoint
		sent bool
	)
	rec := reconcile.Func(func(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
		eps, err := PoolEndpoints(ctx, mgr.GetClient(), pool)
		if err != nil {
			log.Warn("pool endpoints", "pool", pool.String(), "err", err)
			eps = nil
		}
		mu.Lock()
		defer mu.Unlock()
		if sent && slices.EqualFunc(eps, last, func(a, b Endpoint) bool { return a.Address == b.Address && a.Pod == b.Pod }) {
			return reconcile.Result{}, nil
		}
		last, sent = eps, true
		addrs := make([]string, len(eps))
		for i, ep := range eps {
			addrs[i] = ep.Address
		}
		log.Info("pool endpoints changed", "pool", pool.String(), "endpoints", strings.Join(addrs, ","))
		update(eps)
		return reconcile.Result{}, nil
	})
	toPool := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: pool.Namespace, Name: pool.Name}}}
	})
	err = ctrl.NewControllerManagedBy(mgr).Named("gatecheck-pool-endpoints").
		Watches(&InferencePool{}, toPool).
		Watches(&corev1.Pod{}, toPool).
		Complete(rec)
	if err != nil {
		return err
	}
	return mgr.Start(ctx)
}

// InClusterNamespace is the namespace of the Pod this process runs in:
// $POD_NAMESPACE, or the service account's namespace file.
func InClusterNamespace() (string, error) {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns, nil
	}
	b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
	if err != nil {
		return "", fmt.Errorf("the namespace of this pod: set POD_NAMESPACE: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
