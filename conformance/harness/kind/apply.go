package kind

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/gatecheck/gatecheck/images"
	"github.com/gatecheck/gatecheck/manifests"
	"github.com/gatecheck/gatecheck/manifests/crds"
)

// Names the overlay and the default topology use.
const (
	// Namespace is where the topology and the overlay live.
	Namespace = "default"
	// AdminSecret holds the management API's admin token (key "token"); the
	// gateway controller and the Apigee runtime read it.
	AdminSecret = "gatecheck-apigee-admin"
	// GatewayDeployment is the in-cluster gateway.
	GatewayDeployment = "gatecheck-gateway"
	// ImageAnnotation on a pod template carries the loaded image's ID, so
	// pods restart when a reused cluster gets a new image of the same tag.
	ImageAnnotation = "gatecheck.dev/image-id"
	// FieldOwner is the server-side apply field manager.
	FieldOwner = "gatecheck"
	// ModelsDeployment is the default topology's fake model servers, which
	// --models ollama replaces.
	ModelsDeployment = "vllm-sim"
	// DefaultOllamaModel is pulled when --ollama-model is not given.
	DefaultOllamaModel = "qwen2.5:0.5b"
)

// bundle is what New applies: the CRDs first (and waits until they are
// established), then the objects.
type bundle struct {
	crds    []*unstructured.Unstructured
	objects []*unstructured.Unstructured
}

// buildBundle reads the embedded CRDs, overlay and default topology, and
// prepares them for this run: with ollama, Ollama replaces the fake model
// servers and pulls model; every Deployment running the gatecheck image is
// stamped with imageID.
func buildBundle(ollama bool, model, imageID string) (*bundle, error) {
	b := &bundle{}
	var err error
	if b.crds, err = decodeFS(crds.FS(), "."); err != nil {
		return nil, fmt.Errorf("CRDs: %w", err)
	}
	overlay, err := decodeFS(manifests.KindOverlay(), ".")
	if err != nil {
		return nil, fmt.Errorf("kind overlay: %w", err)
	}
	topology, err := decodeFS(manifests.Default(), ".")
	if err != nil {
		return nil, fmt.Errorf("default topology: %w", err)
	}
	if ollama {
		topology = slices.DeleteFunc(topology, func(u *unstructured.Unstructured) bool {
			return u.GetKind() == "Deployment" && u.GetName() == ModelsDeployment
		})
		models, err := decodeFS(manifests.KindOverlay(), "ollama")
		if err != nil {
			return nil, fmt.Errorf("ollama: %w", err)
		}
		for _, u := range models {
			if err := setEnv(u, "OLLAMA_MODEL", model); err != nil {
				return nil, err
			}
		}
		topology = append(topology, models...)
	}
	b.objects = append(overlay, topology...)
	for _, u := range b.objects {
		if err := stampImage(u, imageID); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// decodeFS decodes every .yaml file directly in dir of fsys (not below it),
// in name order.
func decodeFS(fsys fs.FS, dir string) ([]*unstructured.Unstructured, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var out []*unstructured.Unstructured
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".yaml" {
			continue
		}
		p := path.Join(dir, e.Name())
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil, err
		}
		objs, err := decodeYAML(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out = append(out, objs...)
	}
	return out, nil
}

// decodeYAML decodes a multi-document YAML file into unstructured objects.
func decodeYAML(data []byte) ([]*unstructured.Unstructured, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []*unstructured.Unstructured
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		j, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, err
		}
		if bytes.Equal(bytes.TrimSpace(j), []byte("null")) {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(j); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
}

// containers returns the pod template's containers of a Deployment.
func containers(u *unstructured.Unstructured) []any {
	cs, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
	return cs
}

// stampImage annotates the pod template of a Deployment that runs the
// gatecheck image with the image's ID.
func stampImage(u *unstructured.Unstructured, imageID string) error {
	if u.GetKind() != "Deployment" || imageID == "" {
		return nil
	}
	uses := false
	for _, c := range containers(u) {
		if m, ok := c.(map[string]any); ok && m["image"] == images.DefaultTag {
			uses = true
		}
	}
	if !uses {
		return nil
	}
	return unstructured.SetNestedField(u.Object, imageID, "spec", "template", "metadata", "annotations", ImageAnnotation)
}

// setEnv sets an environment variable of every container of a Deployment.
func setEnv(u *unstructured.Unstructured, name, value string) error {
	cs := containers(u)
	for _, c := range cs {
		m, ok := c.(map[string]any)
		if !ok {
			continue
		}
		env, _ := m["env"].([]any)
		found := false
		for _, e := range env {
			if em, ok := e.(map[string]any); ok && em["name"] == name {
				em["value"], found = value, true
			}
		}
		if !found {
			env = append(env, map[string]any{"name": name, "value": value})
		}
		m["env"] = env
	}
	return unstructured.SetNestedSlice(u.Object, cs, "spec", "template", "spec", "containers")
}

// apply applies objects with server-side apply, taking ownership of every
// field they set.
func apply(ctx context.Context, c client.Client, objs []*unstructured.Unstructured) error {
	for _, u := range objs {
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u.DeepCopy()), client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
			return fmt.Errorf("apply %s %s: %w", u.GetKind(), objectName(u), err)
		}
	}
	return nil
}

func objectName(u *unstructured.Unstructured) string {
	if u.GetNamespace() == "" {
		return u.GetName()
	}
	return u.GetNamespace() + "/" + u.GetName()
}
