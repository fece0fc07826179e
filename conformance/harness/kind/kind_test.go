package kind

import (
	"context"
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/gatecheck/gatecheck/conformance/harness"
	"github.com/gatecheck/gatecheck/images"
	"github.com/gatecheck/gatecheck/manifests"
)

const noEngineHint = ". Run the same suite in-process with --target sim."

// TestNoEngineHere runs the real detection: on a machine whose container
// engine does not answer (this one has the docker CLI and no daemon), New
// stops at once with the message that says what is missing and what to do.
func TestNoEngineHere(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if e, err := DetectEngine(ctx); err == nil {
		t.Skipf("%s answers here (%s): nothing to check", e.Name, e.Version)
	}
	start := time.Now()
	_, err := New(ctx, Options{Progress: &strings.Builder{}})
	if err == nil {
		t.Fatal("New succeeded without a container engine")
	}
	var ne *NoEngineError
	if !errors.As(err, &ne) || !errors.Is(err, ErrNoEngine) {
		t.Fatalf("error %T %v: want a *NoEngineError", err, err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "--target kind needs a container engine (Docker or Podman) and none answered: ") || !strings.HasSuffix(msg, noEngineHint) {
		t.Errorf("message %q", msg)
	}
	if _, lerr := exec.LookPath("docker"); lerr == nil && !strings.Contains(msg, "docker: ") {
		t.Errorf("message %q does not say what docker answered", msg)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("took %s to fail: it must stop at once", took)
	}
}

// TestNewStopsBeforeAnythingWithoutAnEngine: the injected detection fails,
// and New returns its error without building or creating anything.
func TestNewStopsBeforeAnythingWithoutAnEngine(t *testing.T) {
	t.Parallel()
	var progress strings.Builder
	want := &NoEngineError{Detail: "docker: Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"}
	_, err := New(context.Background(), Options{
		Progress:     &progress,
		DetectEngine: func(context.Context) (Engine, error) { return Engine{}, want },
	})
	if err != want {
		t.Fatalf("error %v, want the detection's", err)
	}
	if got := err.Error(); got != "--target kind needs a container engine (Docker or Podman) and none answered: docker: Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?. Run the same suite in-process with --target sim." {
		t.Errorf("message %q", got)
	}
	if progress.Len() != 0 {
		t.Errorf("New did something before failing: %q", progress.String())
	}
}

// fakeProber answers as the engines of a table row would.
type fakeProber struct {
	installed map[string]bool
	answers   map[string]string // engine: version; absent: fails with its complaint
	complaint map[string]string
	env       map[string]string
	ran       []string
}

func (f *fakeProber) prober() prober {
	return prober{
		lookPath: func(name string) (string, error) {
			if f.installed[name] {
				return "/usr/bin/" + name, nil
			}
			return "", exec.ErrNotFound
		},
		run: func(_ context.Context, name string, args ...string) ([]byte, []byte, error) {
			engine := strings.TrimPrefix(name, "/usr/bin/")
			f.ran = append(f.ran, engine+" "+strings.Join(args, " "))
			if v, ok := f.answers[engine]; ok {
				return []byte(v + "\n"), nil, nil
			}
			return nil, []byte(f.complaint[engine]), errors.New("exit status 1")
		},
		env: func(k string) string { return f.env[k] },
	}
}

func TestDetectEngine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		f          fakeProber
		wantEngine string
		wantErr    string
	}{
		{
			name:    "docker CLI without its daemon",
			f:       fakeProber{installed: map[string]bool{"docker": true}, complaint: map[string]string{"docker": "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n"}},
			wantErr: "none answered: docker: Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?; nerdctl: not installed; podman: not installed. Run the same",
		},
		{
			name:    "nothing installed",
			f:       fakeProber{},
			wantErr: "none answered: docker: not installed; nerdctl: not installed; podman: not installed.",
		},
		{
			name:       "podman answers when docker does not",
			f:          fakeProber{installed: map[string]bool{"docker": true, "podman": true}, answers: map[string]string{"podman": "5.4.0"}, complaint: map[string]string{"docker": "Cannot connect"}},
			wantEngine: "podman",
		},
		{
			name:       "docker first",
			f:          fakeProber{installed: map[string]bool{"docker": true, "podman": true}, answers: map[string]string{"docker": "28.2.2", "podman": "5.4.0"}},
			wantEngine: "docker",
		},
		{
			name:    "KIND_EXPERIMENTAL_PROVIDER picks one",
			f:       fakeProber{installed: map[string]bool{"docker": true, "podman": true}, answers: map[string]string{"docker": "28.2.2"}, complaint: map[string]string{"podman": "Error: cannot connect to Podman"}, env: map[string]string{"KIND_EXPERIMENTAL_PROVIDER": "podman"}},
			wantErr: "none answered: podman: Error: cannot connect to Podman.",
		},
		{
			name:    "KIND_EXPERIMENTAL_PROVIDER unknown",
			f:       fakeProber{env: map[string]string{"KIND_EXPERIMENTAL_PROVIDER": "lxc"}},
			wantErr: "KIND_EXPERIMENTAL_PROVIDER=lxc names no engine kind supports",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := tc.f.prober().detect(context.Background())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrNoEngine) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if e.Name != tc.wantEngine || e.Provider == nil || e.Version == "" {
				t.Errorf("engine %+v, want %s", e, tc.wantEngine)
			}
		})
	}
}

func TestClusterConfig(t *testing.T) {
	t.Parallel()
	b, err := yaml.Marshal(clusterConfig(8080, 8081))
	if err != nil {
		t.Fatal(err)
	}
	want := `apiVersion: kind.x-k8s.io/v1alpha4
kind: Cluster
networking: {}
nodes:
- extraPortMappings:
  - containerPort: 30080
    hostPort: 8080
    listenAddress: 127.0.0.1
    protocol: TCP
  - containerPort: 30081
    hostPort: 8081
    listenAddress: 127.0.0.1
    protocol: TCP
  role: control-plane
`
	if string(b) != want {
		t.Errorf("kind config:\n%s\nwant:\n%s", b, want)
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		o   Options
		err string
	}{
		{o: Options{}},
		{o: Options{Models: "ollama", OllamaModel: "llama3.2:1b"}},
		{o: Options{Models: "vllm"}, err: `models "vllm": want fake or ollama`},
		{o: Options{OllamaModel: "llama3.2:1b"}, err: "only pulled with models ollama"},
		{o: Options{GatewayPort: 9000, ManagementPort: 9000}, err: "different host ports"},
		{o: Options{ImageArchive: "/nonexistent.tar"}, err: "image archive"},
	} {
		got, err := tc.o.validate()
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%+v: error %v, want %q", tc.o, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%+v: %v", tc.o, err)
			continue
		}
		if got.ClusterName != "gatecheck" || got.GatewayPort != 8080 || got.ManagementPort != 8081 || got.Timeouts.Scale == 0 {
			t.Errorf("defaults not filled in: %+v", got)
		}
		if got.Models == ModelsOllama && got.Timeouts.Deployments != 20*time.Minute {
			t.Errorf("ollama waits %s for Deployments", got.Timeouts.Deployments)
		}
	}
}

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, u := range objs {
		if u.GetKind() == kind && u.GetName() == name {
			return u
		}
	}
	return nil
}

// TestBundle: what is applied to the cluster, with the fake models and with
// Ollama.
func TestBundle(t *testing.T) {
	t.Parallel()
	b, err := buildBundle(false, DefaultOllamaModel, "sha256:abc")
	if err != nil {
		t.Fatal(err)
	}
	if len(b.crds) != 9 {
		t.Errorf("%d CRDs", len(b.crds))
	}
	for _, c := range b.crds {
		if c.GetKind() != "CustomResourceDefinition" {
			t.Errorf("%s %s among the CRDs", c.GetKind(), c.GetName())
		}
	}
	for _, want := range [][2]string{
		{"Deployment", GatewayDeployment}, {"Service", "gatecheck-gateway"}, {"ClusterRole", "gatecheck-gateway"},
		{"Deployment", "apigee-runtime-inference-gateway-apim"}, {"Service", "apigee-management"},
		{"Role", "gatecheck-epp"}, {"Deployment", "vllm-pool-epp"}, {"Deployment", ModelsDeployment},
		{"Gateway", "inference-gateway"}, {"InferencePool", "vllm-pool"}, {"APIMExtensionPolicy", "inference-gateway-apim"},
	} {
		if find(b.objects, want[0], want[1]) == nil {
			t.Errorf("no %s %s applied", want[0], want[1])
		}
	}
	if find(b.objects, "Deployment", "ollama") != nil {
		t.Error("Ollama applied with the fake models")
	}
	for _, u := range b.objects {
		if u.GetKind() != "Deployment" {
			continue
		}
		id, _, _ := unstructured.NestedString(u.Object, "spec", "template", "metadata", "annotations", ImageAnnotation)
		if id != "sha256:abc" {
			t.Errorf("Deployment %s runs %s but its pods are not stamped with the image ID", u.GetName(), images.DefaultTag)
		}
	}

	o, err := buildBundle(true, "llama3.2:1b", "sha256:abc")
	if err != nil {
		t.Fatal(err)
	}
	if find(o.objects, "Deployment", ModelsDeployment) != nil {
		t.Error("the fake model servers are applied with Ollama")
	}
	ol := find(o.objects, "Deployment", "ollama")
	if ol == nil {
		t.Fatal("no Ollama Deployment")
	}
	if find(o.objects, "Service", ModelsDeployment) == nil {
		t.Error("the vllm-sim Service is gone with Ollama; the pool's endpoints need it")
	}
	b2, _ := yaml.Marshal(ol.Object)
	if !strings.Contains(string(b2), "value: llama3.2:1b") {
		t.Errorf("OLLAMA_MODEL not set:\n%s", b2)
	}
	if strings.Contains(string(b2), ImageAnnotation) {
		t.Error("the Ollama Deployment is stamped with gatecheck's image ID")
	}
	labels, _, _ := unstructured.NestedStringMap(ol.Object, "spec", "template", "metadata", "labels")
	snap, _ := manifests.LoadDefault()
	for k, v := range snap.Pools[manifests.Ref{Namespace: "default", Name: "vllm-pool"}].Selector {
		if labels[k] != v {
			t.Errorf("Ollama pods are not selected by the pool (label %s=%s)", k, v)
		}
	}
}

// TestComponents: the Deployments that stop and start are in what is applied.
func TestComponents(t *testing.T) {
	t.Parallel()
	snap, err := manifests.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	b, err := buildBundle(false, "", "")
	if err != nil {
		t.Fatal(err)
	}
	tg := &Target{snap: snap}
	for c, want := range map[harness.Component]string{
		harness.ComponentApigee: "apigee-runtime-inference-gateway-apim",
		harness.ComponentPicker: "vllm-pool-epp",
	} {
		got, err := tg.components(c)
		if err != nil || !slices.Equal(got, []string{want}) {
			t.Errorf("components(%s) = %v, %v; want [%s]", c, got, err, want)
		}
		if find(b.objects, "Deployment", want) == nil {
			t.Errorf("no Deployment %s is applied", want)
		}
	}
	if _, err := tg.components("model"); !errors.Is(err, harness.ErrUnsupported) {
		t.Errorf("components(model): %v", err)
	}
	if models := harness.ModelNames(snap); !slices.Contains(models, "qwen2.5-0.5b-instruct") {
		t.Errorf("models %v", models)
	}
}
