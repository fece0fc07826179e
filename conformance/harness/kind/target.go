package kind

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/e2e-framework/klient/k8s"
	"sigs.k8s.io/e2e-framework/klient/k8s/resources"
	"sigs.k8s.io/e2e-framework/klient/wait"
	"sigs.k8s.io/e2e-framework/klient/wait/conditions"
	"sigs.k8s.io/kind/pkg/cluster"

	"github.com/gatecheck/gatecheck/conformance/harness"
	"github.com/gatecheck/gatecheck/conformance/harness/sim"
	"github.com/gatecheck/gatecheck/images"
	"github.com/gatecheck/gatecheck/internal/apigeeapi"
	"github.com/gatecheck/gatecheck/manifests"
)

// Defaults of Options.
const (
	DefaultClusterName    = "gatecheck"
	DefaultGatewayPort    = 8080
	DefaultManagementPort = 8081
	// Org is the Apigee organisation of the runtime's management API.
	Org = "gatecheck"
)

// Model server kinds for Options.Models.
const (
	ModelsFake   = "fake"
	ModelsOllama = "ollama"
)

// Timeouts bound each wait of New and of Start; the zero value of a field
// means its default.
type Timeouts struct {
	// ControlPlane: kind's wait for the control plane to be ready. 3m.
	ControlPlane time.Duration
	// CRDs: every CRD established. 1m.
	CRDs time.Duration
	// Deployments: every Deployment available. 5m; with Ollama, 20m (the
	// model is pulled first).
	Deployments time.Duration
	// Gateway: the Gateway Programmed, the gateway and the management API
	// answering on the host, and a first chat completion through. 3m.
	Gateway time.Duration
	// Scale: a component stopped (its pods gone) or started (available and
	// serving again). 2m.
	Scale time.Duration
}

func (t Timeouts) withDefaults(ollama bool) Timeouts {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&t.ControlPlane, 3*time.Minute)
	def(&t.CRDs, time.Minute)
	if ollama {
		def(&t.Deployments, 20*time.Minute)
	}
	def(&t.Deployments, 5*time.Minute)
	def(&t.Gateway, 3*time.Minute)
	def(&t.Scale, 2*time.Minute)
	return t
}

// Options configure New. The zero value brings up the default cluster.
type Options struct {
	// ClusterName; empty means DefaultClusterName. An existing cluster of
	// this name is reused, and then not deleted by Close.
	ClusterName string
	// NodeImage is the kind node image (kindest/node:vX.Y.Z); empty means
	// the kind library's default.
	NodeImage string
	// Keep leaves the cluster running after Close (and after a failed New).
	Keep bool
	// ImageArchive is a gatecheck image archive to load (from `gatecheck
	// images build`); empty means build one from the module source, which
	// needs a checkout (see ModuleDir).
	ImageArchive string
	// ModuleDir is a directory in the gatecheck checkout to build from;
	// empty means the working directory.
	ModuleDir string
	// Models is ModelsFake (default) or ModelsOllama.
	Models string
	// OllamaModel is the model Ollama pulls; empty means DefaultOllamaModel.
	OllamaModel string
	// GatewayPort and ManagementPort are the host ports on 127.0.0.1; zero
	// means 8080 and 8081.
	GatewayPort, ManagementPort int
	// LogDir receives the pods' and nodes' logs when New fails; empty
	// means none are written.
	LogDir string
	// Progress receives a line per step; nil discards.
	Progress io.Writer
	// Logger receives debug logs; nil discards.
	Logger *slog.Logger
	// Timeouts of the waits.
	Timeouts Timeouts
	// DetectEngine finds the container engine; nil means DetectEngine.
	DetectEngine func(context.Context) (Engine, error)
}

// Target is a kind cluster running the default topology.
type Target struct {
	opts     Options
	name     string
	provider *cluster.Provider
	created  bool
	engine   Engine

	cfg    *rest.Config
	client client.Client
	res    *resources.Resources
	snap   *manifests.Snapshot

	gatewayURL, mgmtURL string
	adminToken          string
	mgmt                *apigeeapi.Client
	hc                  *http.Client
	key                 string
	models              []string

	mu       sync.Mutex
	replicas map[string]int32 // of stopped Deployments
	tmp      []string         // directories to remove on Close
	closed   bool
}

var _ harness.Target = (*Target)(nil)

// New brings the cluster up (see the package documentation) and returns
// once the gateway serves a chat completion. Without a container engine it
// fails at once with a *NoEngineError.
func New(ctx context.Context, opts Options) (_ *Target, err error) {
	o, err := opts.validate()
	if err != nil {
		return nil, err
	}
	detect := o.DetectEngine
	if detect == nil {
		detect = DetectEngine
	}
	engine, err := detect(ctx)
	if err != nil {
		return nil, err
	}
	t := &Target{
		opts: o, name: o.ClusterName, engine: engine,
		gatewayURL: "http://127.0.0.1:" + strconv.Itoa(o.GatewayPort),
		mgmtURL:    "http://127.0.0.1:" + strconv.Itoa(o.ManagementPort),
		hc:         &http.Client{Timeout: 30 * time.Second},
		replicas:   map[string]int32{},
	}
	t.progress("container engine: %s %s", engine.Name, engine.Version)
	t.provider = cluster.NewProvider(engine.Provider, cluster.ProviderWithLogger(progressLogger{o.progress()}))
	if t.snap, err = manifests.LoadDefault(); err != nil {
		return nil, fmt.Errorf("default topology: %w", err)
	}
	t.models = harness.ModelNames(t.snap)
	if o.Models == ModelsOllama {
		t.models = []string{o.OllamaModel}
	}
	defer func() {
		if err != nil && t.cfg != nil {
			if o.LogDir != "" {
				if lerr := t.CollectLogs(context.WithoutCancel(ctx), o.LogDir); lerr == nil {
					t.progress("logs of the failed bring-up are in %s", o.LogDir)
				}
			}
		}
		if err != nil {
			_ = t.Close()
		}
	}()
	archive, imageID, err := t.bringUpCluster(ctx)
	if err != nil {
		return t, err
	}
	t.progress("loading %s into the nodes", archive)
	if err := loadImage(t.provider, t.name, archive); err != nil {
		return t, err
	}
	if t.cfg, err = restConfig(t.provider, t.name); err != nil {
		return t, err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return t, err
	}
	if t.client, err = client.New(t.cfg, client.Options{Scheme: scheme}); err != nil {
		return t, err
	}
	if t.res, err = resources.New(t.cfg); err != nil {
		return t, err
	}
	if err := t.install(ctx, imageID); err != nil {
		return t, err
	}
	t.mgmt = apigeeapi.NewClient(t.mgmtURL, Org, t.adminToken, t.hc)
	if err := t.waitServing(ctx); err != nil {
		return t, err
	}
	t.progress("ready: gateway %s, management API %s", t.gatewayURL, t.mgmtURL)
	return t, nil
}

func (o Options) validate() (Options, error) {
	if o.ClusterName == "" {
		o.ClusterName = DefaultClusterName
	}
	switch o.Models {
	case "":
		o.Models = ModelsFake
	case ModelsFake, ModelsOllama:
	default:
		return o, fmt.Errorf("models %q: want %s or %s", o.Models, ModelsFake, ModelsOllama)
	}
	if o.OllamaModel == "" {
		o.OllamaModel = DefaultOllamaModel
	} else if o.Models != ModelsOllama {
		return o, fmt.Errorf("an Ollama model (%s) is only pulled with models %s", o.OllamaModel, ModelsOllama)
	}
	if o.GatewayPort == 0 {
		o.GatewayPort = DefaultGatewayPort
	}
	if o.ManagementPort == 0 {
		o.ManagementPort = DefaultManagementPort
	}
	if o.GatewayPort == o.ManagementPort {
		return o, fmt.Errorf("the gateway and the management API need different host ports (both %d)", o.GatewayPort)
	}
	if o.ImageArchive != "" {
		if _, err := os.Stat(o.ImageArchive); err != nil {
			return o, fmt.Errorf("image archive: %w", err)
		}
	}
	o.Timeouts = o.Timeouts.withDefaults(o.Models == ModelsOllama)
	return o, nil
}

func (o Options) progress() io.Writer {
	if o.Progress == nil {
		return io.Discard
	}
	return o.Progress
}

func (t *Target) progress(format string, args ...any) {
	fmt.Fprintf(t.opts.progress(), "gatecheck kind: "+format+"\n", args...)
}

// bringUpCluster creates the cluster (or finds it) while the image is built,
// and returns the archive for the node's platform and the image's ID.
func (t *Target) bringUpCluster(ctx context.Context) (archive, imageID string, err error) {
	exists, err := clusterExists(t.provider, t.name)
	if err != nil {
		return "", "", err
	}
	type built struct {
		res *images.Result
		err error
	}
	build := func(p images.Platform) built {
		if t.opts.ImageArchive != "" {
			return built{}
		}
		dir, err := os.MkdirTemp("", "gatecheck-kind-image-")
		if err != nil {
			return built{err: err}
		}
		t.mu.Lock()
		t.tmp = append(t.tmp, dir)
		t.mu.Unlock()
		t.progress("building the gatecheck image for %s (go build, no Docker)", p)
		res, err := images.Build(ctx, images.Options{ModuleDir: t.opts.ModuleDir, Platforms: []images.Platform{p}, OutDir: dir})
		return built{res, err}
	}
	host := images.HostPlatform()
	done := make(chan built, 1)
	go func() { done <- build(host) }()
	if exists {
		t.progress("reusing kind cluster %q (it will be kept)", t.name)
	} else {
		t.progress("creating kind cluster %q", t.name)
		opts := []cluster.CreateOption{
			cluster.CreateWithV1Alpha4Config(clusterConfig(t.opts.GatewayPort, t.opts.ManagementPort)),
			cluster.CreateWithWaitForReady(t.opts.Timeouts.ControlPlane),
			cluster.CreateWithDisplayUsage(false),
			cluster.CreateWithDisplaySalutation(false),
		}
		if t.opts.NodeImage != "" {
			opts = append(opts, cluster.CreateWithNodeImage(t.opts.NodeImage))
		}
		if err := t.provider.Create(t.name, opts...); err != nil {
			<-done
			return "", "", fmt.Errorf("create kind cluster %s: %w", t.name, err)
		}
		t.created = true
	}
	b := <-done
	if b.err != nil {
		return "", "", b.err
	}
	if t.opts.ImageArchive != "" {
		return t.opts.ImageArchive, "", nil
	}
	ns, err := t.provider.ListInternalNodes(t.name)
	if err != nil || len(ns) == 0 {
		return "", "", fmt.Errorf("nodes of %s: %v", t.name, err)
	}
	p, err := nodePlatform(ns[0])
	if err != nil {
		return "", "", err
	}
	if p != host {
		if b = build(p); b.err != nil {
			return "", "", b.err
		}
	}
	a, _ := b.res.ArchiveFor(p)
	return a.Path, a.ImageID.String(), nil
}

// install applies the CRDs, the admin Secret, the overlay and the topology,
// and waits until the Deployments are available and the Gateway programmed.
func (t *Target) install(ctx context.Context, imageID string) error {
	b, err := buildBundle(t.opts.Models == ModelsOllama, t.opts.OllamaModel, imageID)
	if err != nil {
		return err
	}
	t.progress("applying %d CRDs", len(b.crds))
	if err := apply(ctx, t.client, b.crds); err != nil {
		return err
	}
	for _, crd := range b.crds {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("apiextensions.k8s.io/v1")
		u.SetKind("CustomResourceDefinition")
		u.SetName(crd.GetName())
		if err := t.waitFor(ctx, "CRD "+crd.GetName()+" established", t.opts.Timeouts.CRDs,
			conditions.New(t.res).ResourceMatch(u, func(o k8s.Object) bool { return hasCondition(o, "Established") })); err != nil {
			return err
		}
	}
	if err := t.ensureAdminSecret(ctx); err != nil {
		return err
	}
	t.progress("applying the kind overlay and the default topology (%d objects)", len(b.objects))
	if err := apply(ctx, t.client, b.objects); err != nil {
		return err
	}
	for _, u := range b.objects {
		if u.GetKind() != "Deployment" {
			continue
		}
		if err := t.waitFor(ctx, "Deployment "+objectName(u)+" available", t.opts.Timeouts.Deployments,
			conditions.New(t.res).DeploymentAvailable(u.GetName(), u.GetNamespace())); err != nil {
			return err
		}
	}
	for _, gw := range t.snap.Gateways {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("gateway.networking.k8s.io/v1")
		u.SetKind("Gateway")
		u.SetName(gw.Ref.Name)
		u.SetNamespace(gw.Ref.Namespace)
		if err := t.waitFor(ctx, "Gateway "+gw.Ref.String()+" programmed", t.opts.Timeouts.Gateway,
			conditions.New(t.res).ResourceMatch(u, func(o k8s.Object) bool { return hasCondition(o, "Programmed") })); err != nil {
			return err
		}
	}
	return nil
}

// ensureAdminSecret keeps the token of a reused cluster, or makes one.
func (t *Target) ensureAdminSecret(ctx context.Context) error {
	var s corev1.Secret
	err := t.client.Get(ctx, types.NamespacedName{Namespace: Namespace, Name: AdminSecret}, &s)
	switch {
	case err == nil && len(s.Data["token"]) > 0:
		t.adminToken = string(s.Data["token"])
		return nil
	case err != nil && !apierrors.IsNotFound(err):
		return fmt.Errorf("secret %s: %w", AdminSecret, err)
	}
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	t.adminToken = hex.EncodeToString(b[:])
	s = corev1.Secret{}
	s.Name, s.Namespace = AdminSecret, Namespace
	s.Labels = map[string]string{"app.kubernetes.io/part-of": "gatecheck"}
	s.StringData = map[string]string{"token": t.adminToken}
	if err := t.client.Create(ctx, &s); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("secret %s: %w", AdminSecret, err)
	}
	return nil
}

// hasCondition reports whether an unstructured object's status has a
// condition of type typ with status True.
func hasCondition(o k8s.Object, typ string) bool {
	u, ok := o.(*unstructured.Unstructured)
	if !ok {
		return false
	}
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == typ && m["status"] == "True" {
			return true
		}
	}
	return false
}

// waitFor polls cond with e2e-framework's wait until it holds or timeout.
func (t *Target) waitFor(ctx context.Context, what string, timeout time.Duration, cond func(context.Context) (bool, error)) error {
	t.opts.loggerOrDiscard().Debug("waiting", "for", what, "timeout", timeout)
	err := wait.For(cond, wait.WithContext(ctx), wait.WithTimeout(timeout), wait.WithInterval(time.Second), wait.WithImmediate())
	if err != nil {
		return fmt.Errorf("waiting %s for %s: %w", timeout, what, err)
	}
	return nil
}

func (o Options) loggerOrDiscard() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

// waitServing waits until the gateway and the management API answer on the
// host, provisions the sandbox app, and sees one chat completion through.
func (t *Target) waitServing(ctx context.Context) error {
	timeout := t.opts.Timeouts.Gateway
	if err := t.waitFor(ctx, "the gateway on "+t.gatewayURL, timeout, func(ctx context.Context) (bool, error) {
		return t.answers(ctx, http.MethodGet, t.gatewayURL+"/", ""), nil
	}); err != nil {
		return err
	}
	var products []string
	for _, p := range t.snap.Products {
		products = append(products, p.Name)
	}
	if err := t.waitFor(ctx, "the management API on "+t.mgmtURL+" with the topology's products", timeout, func(ctx context.Context) (bool, error) {
		have, err := t.mgmt.ListProducts(ctx)
		if err != nil {
			return false, nil
		}
		for _, want := range products {
			if !slices.ContainsFunc(have, func(p apigeeapi.APIProduct) bool { return p.Name == want }) {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		return err
	}
	key, err := t.provision(ctx, products)
	if err != nil {
		return fmt.Errorf("provisioning the sandbox app: %w", err)
	}
	t.key = key
	return t.waitChat(ctx, timeout)
}

// answers reports whether an HTTP request gets an answer from the server
// itself (any status; a 502/503/504 from something in between does not count).
func (t *Target) answers(ctx context.Context, method, url, token string) bool {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return false
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := t.hc.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return true
}

// waitChat waits until a chat completion with the sandbox key succeeds: the
// gateway, the runtime, the picker and a model server all serving.
func (t *Target) waitChat(ctx context.Context, timeout time.Duration) error {
	if t.key == "" || len(t.models) == 0 {
		return nil
	}
	body := fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"ping"}],"max_tokens":4}`, t.models[0])
	var last string
	err := t.waitFor(ctx, "a chat completion through the gateway", timeout, func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.gatewayURL+"/v1/chat/completions", strings.NewReader(body))
		if err != nil {
			return false, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("x-api-key", t.key)
		resp, err := t.hc.Do(req)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		last = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(b)))
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return fmt.Errorf("%w (last answer: %s)", err, last)
	}
	return nil
}

// provision makes (or finds) the sandbox developer and app, as the sandbox
// does, and returns the app's key.
func (t *Target) provision(ctx context.Context, products []string) (string, error) {
	c := t.mgmt
	app, err := c.GetApp(ctx, sim.SandboxDeveloper, sim.SandboxApp)
	var apiErr *apigeeapi.APIError
	switch {
	case err == nil:
	case errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusNotFound:
		if _, err := c.GetDeveloper(ctx, sim.SandboxDeveloper); err != nil {
			if _, err := c.CreateDeveloper(ctx, apigeeapi.Developer{Email: sim.SandboxDeveloper, FirstName: "Sandbox", LastName: "Developer", UserName: "sandbox"}); err != nil {
				return "", err
			}
		}
		if app, err = c.CreateApp(ctx, sim.SandboxDeveloper, apigeeapi.DeveloperApp{Name: sim.SandboxApp, APIProducts: products}); err != nil {
			return "", err
		}
	default:
		return "", err
	}
	if len(app.Credentials) == 0 {
		return "", fmt.Errorf("app %s of %s has no credentials", sim.SandboxApp, sim.SandboxDeveloper)
	}
	return app.Credentials[0].ConsumerKey, nil
}

// Name is "kind".
func (t *Target) Name() string { return "kind" }

// GatewayURL is the gateway on the host's loopback.
func (t *Target) GatewayURL() string { return t.gatewayURL }

// ManagementURL is the management API on the host's loopback.
func (t *Target) ManagementURL() string { return t.mgmtURL }

// AdminToken is the management API's bearer token.
func (t *Target) AdminToken() string { return t.adminToken }

// ClusterName is the kind cluster's name (its kubectl context is kind-NAME).
func (t *Target) ClusterName() string { return t.name }

// Capabilities: provisioning, time (the runtime's clock), components and
// traces; not a topology of a scenario's own.
func (t *Target) Capabilities() harness.Capabilities {
	return harness.Capabilities{Provision: true, Clock: true, Components: true, Traces: true, Ollama: t.opts.Models == ModelsOllama}
}

// Management is an admin client of the runtime's management API.
func (t *Target) Management() *apigeeapi.Client { return t.mgmt }

// Keys has the sandbox app's key as "default".
func (t *Target) Keys() map[string]string {
	if t.key == "" {
		return nil
	}
	return map[string]string{"default": t.key}
}

// Models are the names the model servers answer to.
func (t *Target) Models() []string { return t.models }

// AdvanceClock moves the Apigee runtime's clock through its management API
// (quotas, key and token expiry live there). A restart of the runtime resets
// it.
func (t *Target) AdvanceClock(ctx context.Context, d time.Duration) error {
	return t.mgmt.AdvanceClock(ctx, d)
}

// components are the Deployments behind a component: the Apigee runtime of
// every APIMExtensionPolicy (the overlay names its Deployment after the
// runtime Service), or the Deployments behind every pool's picker Service.
func (t *Target) components(c harness.Component) ([]string, error) {
	var out []string
	switch c {
	case harness.ComponentApigee:
		for _, gw := range t.snap.Gateways {
			for _, ext := range gw.Extensions {
				if !slices.Contains(out, ext.Service.Name) {
					out = append(out, ext.Service.Name)
				}
			}
		}
	case harness.ComponentPicker:
		for _, p := range t.snap.Pools {
			if p.Picker == nil {
				continue
			}
			if svc, ok := t.snap.Services[p.Picker.Service]; ok {
				for _, w := range svc.Workloads {
					if !slices.Contains(out, w.Ref.Name) {
						out = append(out, w.Ref.Name)
					}
				}
			}
		}
	default:
		return nil, fmt.Errorf("component %q: %w", c, harness.ErrUnsupported)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the topology has no %s: %w", c, harness.ErrUnsupported)
	}
	slices.Sort(out)
	return out, nil
}

// Stop scales the component's Deployments to 0 and waits until their pods
// are gone.
func (t *Target) Stop(ctx context.Context, c harness.Component) error {
	names, err := t.components(c)
	if err != nil {
		return err
	}
	for _, name := range names {
		var d appsv1.Deployment
		if err := t.client.Get(ctx, types.NamespacedName{Namespace: Namespace, Name: name}, &d); err != nil {
			return fmt.Errorf("stop %s: %w", c, err)
		}
		t.mu.Lock()
		if d.Spec.Replicas != nil && *d.Spec.Replicas > 0 {
			t.replicas[name] = *d.Spec.Replicas
		}
		t.mu.Unlock()
		if err := t.scale(ctx, &d, 0); err != nil {
			return fmt.Errorf("stop %s: %w", c, err)
		}
		sel := labels.SelectorFromSet(d.Spec.Selector.MatchLabels).String()
		if err := t.waitFor(ctx, "the pods of "+name+" to go", t.opts.Timeouts.Scale,
			conditions.New(t.res).ResourceListN(&corev1.PodList{}, 0, resources.WithLabelSelector(sel))); err != nil {
			return err
		}
	}
	return nil
}

// Start scales the component's Deployments back and waits until they are
// available and a chat completion goes through again.
func (t *Target) Start(ctx context.Context, c harness.Component) error {
	names, err := t.components(c)
	if err != nil {
		return err
	}
	for _, name := range names {
		var d appsv1.Deployment
		if err := t.client.Get(ctx, types.NamespacedName{Namespace: Namespace, Name: name}, &d); err != nil {
			return fmt.Errorf("start %s: %w", c, err)
		}
		t.mu.Lock()
		n, ok := t.replicas[name]
		t.mu.Unlock()
		if !ok {
			n = 1
		}
		if d.Spec.Replicas != nil && *d.Spec.Replicas > 0 {
			continue // running
		}
		if err := t.scale(ctx, &d, n); err != nil {
			return fmt.Errorf("start %s: %w", c, err)
		}
		if err := t.waitFor(ctx, "Deployment "+name+" available", t.opts.Timeouts.Scale,
			conditions.New(t.res).DeploymentAvailable(name, Namespace)); err != nil {
			return err
		}
	}
	return t.waitChat(ctx, t.opts.Timeouts.Scale)
}

func (t *Target) scale(ctx context.Context, d *appsv1.Deployment, n int32) error {
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Replicas = &n
	return t.client.Patch(ctx, d, patch)
}

// Trace fetches a decision trace from the runtime's management API.
func (t *Target) Trace(ctx context.Context, id string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.mgmtURL+"/v1/emulator/traces/"+id, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+t.adminToken)
	resp, err := t.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("trace %s: %w", id, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("trace %s: %d %s", id, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	// Indented as the simulation's, so scenarios read the same text.
	var out bytes.Buffer
	if err := json.Indent(&out, bytes.TrimSpace(b), "", "  "); err != nil {
		return nil, fmt.Errorf("trace %s: %w", id, err)
	}
	return out.Bytes(), nil
}

// WithTopology is not offered: the cluster runs the default topology.
func (t *Target) WithTopology(context.Context, fs.FS) (harness.Target, error) {
	return nil, fmt.Errorf("a topology of the scenario's own on kind: %w", harness.ErrUnsupported)
}

// Close deletes the cluster, unless Options.Keep or the cluster was there
// before New.
func (t *Target) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	for _, d := range t.tmp {
		os.RemoveAll(d)
	}
	if t.provider == nil || !t.created || t.opts.Keep {
		if t.provider != nil && t.created {
			t.progress("keeping kind cluster %q (kubectl --context kind-%s; delete with gatecheck sandbox down --target kind)", t.name, t.name)
		}
		return nil
	}
	t.progress("deleting kind cluster %q", t.name)
	return t.provider.Delete(t.name, "")
}

// Delete deletes the kind cluster name (DefaultClusterName when empty),
// reporting whether there was one.
func Delete(ctx context.Context, name string, progress io.Writer) (bool, error) {
	if name == "" {
		name = DefaultClusterName
	}
	engine, err := DetectEngine(ctx)
	if err != nil {
		return false, err
	}
	p := cluster.NewProvider(engine.Provider, cluster.ProviderWithLogger(progressLogger{Options{Progress: progress}.progress()}))
	exists, err := clusterExists(p, name)
	if err != nil || !exists {
		return false, err
	}
	return true, p.Delete(name, "")
}

// CollectLogs writes the logs of every container of every pod in the
// topology's namespace (and of the previous run of restarted ones) to dir,
// and kind's node logs under dir/nodes.
func (t *Target) CollectLogs(ctx context.Context, dir string) error {
	if t.cfg == nil {
		return errors.New("no cluster to collect logs from")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var errs []error
	if err := writePodLogs(ctx, t.cfg, t.client, Namespace, dir); err != nil {
		errs = append(errs, err)
	}
	if err := t.provider.CollectLogs(t.name, filepath.Join(dir, "nodes")); err != nil {
		errs = append(errs, fmt.Errorf("node logs: %w", err))
	}
	return errors.Join(errs...)
}
