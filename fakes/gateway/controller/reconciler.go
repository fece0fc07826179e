package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/gatecheck/gatecheck/internal/apigeeapi"
	"github.com/gatecheck/gatecheck/manifests"
)

// ProductSyncer puts the topology's API products into the Apigee runtime.
type ProductSyncer interface {
	SyncProducts(ctx context.Context, products []apigeeapi.APIProduct) error
}

// Options configure a Reconciler. The zero value of every field is usable.
type Options struct {
	// ControllerName is the GatewayClass controllerName served; empty means
	// DefaultControllerName.
	ControllerName string
	// Policies is Apigee policy XML by path, as manifests.Load returns it
	// (the API server holds none); nil means none.
	Policies map[string][]byte
	// OnSnapshot receives every snapshot compiled, before status is written:
	// the data plane's Swap.
	OnSnapshot func(*manifests.Snapshot)
	// Products, when set, receives the snapshot's products after each
	// compile.
	Products ProductSyncer
	// Resync re-reads the topology this often even without a change, so
	// products lost by a restarted runtime come back. Zero means 30s.
	Resync time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
}

// Reconciler compiles the cluster's topology and writes its status. Every
// watched change leads to one Sync of the whole topology: a topology is a
// handful of objects, and Compile resolves references across all of them.
type Reconciler struct {
	c    client.Client
	opts Options
	log  *slog.Logger

	mu     sync.Mutex
	served *manifests.Snapshot
}

// NewReconciler returns a Reconciler reading and writing through c.
func NewReconciler(c client.Client, opts Options) *Reconciler {
	if opts.ControllerName == "" {
		opts.ControllerName = DefaultControllerName
	}
	if opts.Resync == 0 {
		opts.Resync = 30 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Reconciler{c: c, opts: opts, log: log}
}

// Result is what one Sync did.
type Result struct {
	// Compiled is the compile outcome; Compiled.Snapshot is what is now
	// served, unless it is nil (the previous snapshot stays).
	Compiled *Compiled
	// Topology is what was read.
	Topology *Topology
	// StatusWrites counts the objects whose status changed.
	StatusWrites int
	// SyncErr is why products could not be synced, if they could not.
	SyncErr error
}

// Served is the snapshot in service, nil before the first successful Sync.
func (r *Reconciler) Served() *manifests.Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.served
}

// Sync reads the topology, compiles what can be served, hands it to
// OnSnapshot, syncs the products and writes status.
func (r *Reconciler) Sync(ctx context.Context) (*Result, error) {
	topo, err := Collect(ctx, r.c, r.opts.ControllerName)
	if err != nil {
		return nil, err
	}
	compiled := CompileServable(topo.Objects, r.opts.Policies)
	res := &Result{Compiled: compiled, Topology: topo}
	r.mu.Lock()
	if compiled.Snapshot != nil {
		r.served = compiled.Snapshot
	}
	served := r.served
	r.mu.Unlock()
	if compiled.Snapshot != nil && r.opts.OnSnapshot != nil {
		r.opts.OnSnapshot(compiled.Snapshot)
	}
	for obj, probs := range compiled.Problems {
		r.log.Warn("not served as written", "object", obj, "problems", messages(probs))
	}
	for file, fe := range compiled.DroppedPolicies {
		r.log.Warn("policy file left out", "file", file, "problem", fe.Msg)
	}
	if compiled.Snapshot == nil {
		r.log.Error("the topology cannot be compiled; the previous snapshot stays in service", "err", compiled.Err)
	}
	if r.opts.Products != nil && served != nil {
		if err := r.opts.Products.SyncProducts(ctx, served.Products); err != nil {
			res.SyncErr = err
			r.log.Warn("products not synced into the Apigee runtime", "err", err)
		}
	}
	w := &statusWriter{c: r.c, in: &statusInput{
		controller: r.opts.ControllerName, topo: topo, compiled: compiled,
		served: served, syncErr: res.SyncErr, now: now(),
	}}
	err = w.writeAll(ctx)
	res.StatusWrites = w.written
	return res, err
}

// topologyKey is the one reconcile request every event maps to.
var topologyKey = reconcile.Request{NamespacedName: types.NamespacedName{Name: "topology"}}

// Reconcile implements reconcile.Reconciler: a Sync, again after Resync, and
// soon after a failed product sync (the runtime may still be starting).
func (r *Reconciler) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	res, err := r.Sync(ctx)
	if err != nil {
		return reconcile.Result{}, err
	}
	if res.SyncErr != nil {
		return reconcile.Result{RequeueAfter: 2 * time.Second}, nil
	}
	return reconcile.Result{RequeueAfter: r.opts.Resync}, nil
}

// SetupWithManager watches every kind the topology is made of. Spec changes
// count (status writes, including our own, do not); Pods are not watched
// here: the Resolver reads them from the cache when a request needs them.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	toTopology := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{topologyKey}
	})
	spec := builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}))
	b := ctrl.NewControllerManagedBy(mgr).Named("gatecheck-topology")
	for _, obj := range []client.Object{
		&gatewayv1.GatewayClass{}, &gatewayv1.Gateway{}, &gatewayv1.HTTPRoute{},
		&InferencePool{}, &InferenceObjective{},
		&APIMExtensionPolicy{}, &APIProduct{}, &APIOperationSet{},
		&appsv1.Deployment{},
	} {
		b = b.Watches(obj, toTopology, spec)
	}
	// A Service has no generation: every change counts.
	b = b.Watches(&corev1.Service{}, toTopology, builder.WithPredicates(predicate.ResourceVersionChangedPredicate{}))
	return b.Complete(r)
}

// ManagementSyncer syncs products through the fake Apigee's management API,
// as the Apigee Operator syncs them into Apigee: update, or create when
// missing; products it created and the topology no longer has are deleted.
type ManagementSyncer struct {
	Client *apigeeapi.Client

	mu    sync.Mutex
	owned map[string]bool
}

// SyncProducts implements ProductSyncer.
func (s *ManagementSyncer) SyncProducts(ctx context.Context, products []apigeeapi.APIProduct) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.owned == nil {
		s.owned = map[string]bool{}
	}
	var errs []error
	now := map[string]bool{}
	for _, p := range products {
		now[p.Name] = true
		_, err := s.Client.UpdateProduct(ctx, p)
		var apiErr *apigeeapi.APIError
		if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusNotFound {
			_, err = s.Client.CreateProduct(ctx, p)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("product %s: %w", p.Name, err))
			continue
		}
		s.owned[p.Name] = true
	}
	var gone []string
	for name := range s.owned {
		if !now[name] {
			gone = append(gone, name)
		}
	}
	slices.Sort(gone)
	for _, name := range gone {
		err := s.Client.DeleteProduct(ctx, name)
		var apiErr *apigeeapi.APIError
		if err != nil && !(errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusNotFound) {
			errs = append(errs, fmt.Errorf("delete product %s: %w", name, err))
			continue
		}
		delete(s.owned, name)
	}
	return errors.Join(errs...)
}
