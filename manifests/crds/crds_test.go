package crds_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsvalidation "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/yaml"

	"github.com/gatecheck/gatecheck/manifests"
	"github.com/gatecheck/gatecheck/manifests/crds"
)

var update = flag.Bool("update", false, "copy the Gateway API CRDs from the module into this directory")

// gatewayAPIDir is the module's standard-channel CRD directory, from the
// module cache (go:embed cannot reach it, hence the copies).
func gatewayAPIDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}} {{.Dir}}", "sigs.k8s.io/gateway-api").Output()
	if err != nil {
		t.Skipf("go list -m sigs.k8s.io/gateway-api: %v", err)
	}
	version, dir, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	if version != crds.GatewayAPIVersion {
		t.Fatalf("go.mod requires sigs.k8s.io/gateway-api %s, the copies are of %s: update GatewayAPIVersion and run with -update", version, crds.GatewayAPIVersion)
	}
	if dir == "" {
		t.Skip("sigs.k8s.io/gateway-api is not in the module cache (go mod download)")
	}
	return filepath.Join(dir, "config", "crd", "standard")
}

// TestGatewayAPICopies checks the copied CRDs are byte for byte the module's.
// With -update it copies them.
func TestGatewayAPICopies(t *testing.T) {
	dir := gatewayAPIDir(t)
	for _, name := range crds.GatewayAPIFiles {
		want, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if *update {
			if err := os.WriteFile(name, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := fs.ReadFile(crds.FS(), name)
		if err != nil {
			t.Fatalf("%s is not embedded: %v (run with -update)", name, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from sigs.k8s.io/gateway-api@%s/config/crd/standard/%s: run go test ./manifests/crds -run TestGatewayAPICopies -update", name, crds.GatewayAPIVersion, name)
		}
	}
}

// TestCRDsAreValid runs the API server's CRD validation on every CRD:
// structural schemas, defaults that satisfy them, CEL rules that compile
// within the cost limits.
func TestCRDsAreValid(t *testing.T) {
	_, all, err := loadSchemas()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(crds.GatewayAPIFiles)+5 {
		t.Errorf("%d CRDs embedded, want the %d Gateway API ones and our 5", len(all), len(crds.GatewayAPIFiles))
	}
	for file, crd := range all {
		if errs := apiextensionsvalidation.ValidateCustomResourceDefinition(context.Background(), crd); len(errs) > 0 {
			t.Errorf("%s: %v", file, errs.ToAggregate())
		}
		if want := crd.Spec.Group + "_" + crd.Spec.Names.Plural + ".yaml"; file != want {
			t.Errorf("%s holds %s: name it %s", file, crd.Name, want)
		}
	}
}

// TestOwnKindsHaveCRDs: every kind of ours that manifests decodes is served
// by a CRD here, and the Inference Extension's carry the bundle version.
func TestOwnKindsHaveCRDs(t *testing.T) {
	s, all, err := loadSchemas()
	if err != nil {
		t.Fatal(err)
	}
	for _, gvk := range []schema.GroupVersionKind{
		{Group: "gateway.networking.k8s.io", Version: "v1", Kind: "GatewayClass"},
		{Group: "gateway.networking.k8s.io", Version: "v1", Kind: "Gateway"},
		{Group: "gateway.networking.k8s.io", Version: "v1", Kind: "HTTPRoute"},
		{Group: "gateway.networking.k8s.io", Version: "v1beta1", Kind: "ReferenceGrant"},
		{Group: "inference.networking.k8s.io", Version: "v1", Kind: "InferencePool"},
		{Group: "inference.networking.x-k8s.io", Version: "v1alpha2", Kind: "InferenceObjective"},
		{Group: "apim.googleapis.com", Version: "v1", Kind: "APIMExtensionPolicy"},
		{Group: "apim.googleapis.com", Version: "v1", Kind: "APIProduct"},
		{Group: "apim.googleapis.com", Version: "v1", Kind: "APIOperationSet"},
	} {
		if _, ok := s[gvk]; !ok {
			t.Errorf("no CRD serves %s", gvk)
		}
	}
	for file, crd := range all {
		if strings.HasPrefix(crd.Spec.Group, "inference.networking") && crd.Annotations["inference.networking.k8s.io/bundle-version"] == "" {
			t.Errorf("%s has no inference.networking.k8s.io/bundle-version annotation", file)
		}
		if crd.Spec.Group != "gateway.networking.k8s.io" {
			for _, v := range crd.Spec.Versions {
				if sr, err := apiextensions.GetSubresourcesForVersion(crd, v.Name); err != nil || sr == nil || sr.Status == nil {
					t.Errorf("%s version %s has no status subresource: the controller writes status through it", file, v.Name)
				}
			}
		}
	}
}

// TestAppliedManifestsValidate validates every object gatecheck applies to
// kind — the default topology and the kind overlay — against its CRD, or
// decodes it strictly when it is a built-in kind.
func TestAppliedManifestsValidate(t *testing.T) {
	s, _, err := loadSchemas()
	if err != nil {
		t.Fatal(err)
	}
	topology, err := readDocuments(manifests.Default(), "default/")
	if err != nil {
		t.Fatal(err)
	}
	overlay, err := readDocuments(manifests.KindOverlay(), "kind/")
	if err != nil {
		t.Fatal(err)
	}
	if len(topology) < 10 || len(overlay) < 10 {
		t.Fatalf("%d topology and %d overlay documents: the embedded files were not found", len(topology), len(overlay))
	}
	custom := 0
	for _, d := range append(topology, overlay...) {
		if _, ok := s[d.gvk]; ok {
			custom++
		}
		if err := validateDocument(s, d); err != nil {
			t.Error(err)
		}
	}
	if custom < 7 {
		t.Errorf("only %d objects were validated against a CRD", custom)
	}
}

// TestBrokenManifestsAreRejected: the validations the types imply refuse bad
// objects, and the error names the field.
func TestBrokenManifestsAreRejected(t *testing.T) {
	s, _, err := loadSchemas()
	if err != nil {
		t.Fatal(err)
	}
	const pool = `
apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {name: p}
spec:
  selector: {matchLabels: {app: m}}
  targetPorts: [{number: 8000}]
  endpointPickerRef: {name: p-epp, port: {number: 9002}, failureMode: FailClose}
`
	const policy = `
apiVersion: apim.googleapis.com/v1
kind: APIMExtensionPolicy
metadata: {name: p}
spec:
  timeout: 1000ms
  targetRef: {name: gw, kind: Gateway}
`
	const product = `
apiVersion: apim.googleapis.com/v1
kind: APIProduct
metadata: {name: p}
spec:
  approvalType: auto
  attributes: [{name: access, value: private}]
`
	const opset = `
apiVersion: apim.googleapis.com/v1
kind: APIOperationSet
metadata: {name: o}
spec:
  apiProductRefs: [{name: p, kind: APIProduct}]
  quota: {limit: 10, interval: 1, timeUnit: minute}
  restOperations: [{name: chat, path: /v1/chat/completions, methods: [POST]}]
`
	const objective = `
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceObjective
metadata: {name: o}
spec:
  priority: -1
  poolRef: {name: p}
`
	const route = `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs: [{name: svc, port: 8000}]
`
	const gateway = `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: gatecheck
  listeners: [{name: http, protocol: HTTP, port: 80}]
`
	for _, tc := range []struct {
		name string
		base string
		edit func(obj map[string]any)
		want []string // substrings of the error, the field path first; none: valid
	}{
		{"pool as written", pool, nil, nil},
		{"pool port 0", pool, set("spec.targetPorts", []any{map[string]any{"number": 0}}), []string{"spec.targetPorts[0].number", "greater than or equal to 1"}},
		{"pool port 65536", pool, set("spec.endpointPickerRef.port.number", 65536), []string{"spec.endpointPickerRef.port.number", "less than or equal to 65535"}},
		{"pool failure mode", pool, set("spec.endpointPickerRef.failureMode", "Sometimes"), []string{"spec.endpointPickerRef.failureMode", "Unsupported value", `"FailOpen"`}},
		{"pool app protocol", pool, set("spec.appProtocol", "grpc"), []string{"spec.appProtocol", "Unsupported value"}},
		{"pool no labels", pool, set("spec.selector.matchLabels", map[string]any{}), []string{"spec.selector.matchLabels", "at least 1"}},
		{"pool nine ports", pool, set("spec.targetPorts", ports(9)), []string{"spec.targetPorts", "at most 8 items"}},
		{"pool no ports", pool, set("spec.targetPorts", []any{}), []string{"spec.targetPorts", "at least 1 items"}},
		{"pool duplicate ports", pool, set("spec.targetPorts", []any{map[string]any{"number": 8000}, map[string]any{"number": 8000}}), []string{"spec.targetPorts", "port numbers must be unique"}},
		{"pool missing selector", pool, del("spec.selector"), []string{"spec.selector", "Required value"}},
		{"pool picker without port", pool, del("spec.endpointPickerRef.port"), []string{"spec.endpointPickerRef", "port is required"}},
		{"pool unknown field", pool, set("spec.selectr", "x"), []string{"spec.selectr", "unknown field"}},
		{"policy as written", policy, nil, nil},
		{"policy timeout", policy, set("spec.timeout", "soon"), []string{"spec.timeout", "should match"}},
		{"policy missing targetRef", policy, del("spec.targetRef"), []string{"spec.targetRef", "Required value"}},
		{"policy targets a route", policy, set("spec.targetRef.kind", "HTTPRoute"), []string{"spec.targetRef.kind", "Unsupported value"}},
		{"policy failOpen a string", policy, set("spec.failOpen", "no"), []string{"spec.failOpen", "must be of type boolean"}},
		{"product as written", product, nil, nil},
		{"product approval type", product, set("spec.approvalType", "sometimes"), []string{"spec.approvalType", "Unsupported value"}},
		{"product nameless attribute", product, set("spec.attributes", []any{map[string]any{"value": "x"}}), []string{"spec.attributes[0].name", "Required value"}},
		{"operation set as written", opset, nil, nil},
		{"operation set time unit", opset, set("spec.quota.timeUnit", "week"), []string{"spec.quota.timeUnit", "Unsupported value"}},
		{"operation set quota 0", opset, set("spec.quota.limit", 0), []string{"spec.quota.limit", "greater than or equal to 1"}},
		{"operation set no operations", opset, del("spec.restOperations"), []string{"spec.restOperations", "Required value"}},
		{"operation set method", opset, set("spec.restOperations", []any{map[string]any{"path": "/v1/x", "methods": []any{"FETCH"}}}), []string{"spec.restOperations[0].methods[0]", "Unsupported value"}},
		{"operation set relative path", opset, set("spec.restOperations", []any{map[string]any{"path": "v1/x"}}), []string{"spec.restOperations[0].path", "should match"}},
		{"objective as written", objective, nil, nil},
		{"objective without pool", objective, del("spec.poolRef"), []string{"spec.poolRef", "Required value"}},
		{"objective pool kind", objective, set("spec.poolRef.kind", "Service"), []string{"spec.poolRef.kind", "Unsupported value"}},
		{"route as written", route, nil, nil},
		{"route backend port 0", route, set("spec.rules", []any{map[string]any{"backendRefs": []any{map[string]any{"name": "svc", "port": 0}}}}), []string{"spec.rules[0].backendRefs[0].port", "greater than or equal to 1"}},
		{"gateway as written", gateway, nil, nil},
		{"gateway listener port 0", gateway, set("spec.listeners", []any{map[string]any{"name": "http", "protocol": "HTTP", "port": 0}}), []string{"spec.listeners[0].port", "greater than or equal to 1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			docs, err := splitYAML(tc.name, []byte(tc.base))
			if err != nil || len(docs) != 1 {
				t.Fatalf("fixture: %v", err)
			}
			d := docs[0]
			if tc.edit != nil {
				tc.edit(d.obj)
			}
			cv, ok := s[d.gvk]
			if !ok {
				t.Fatalf("no CRD for %s", d.gvk)
			}
			errs := cv.validate(d.obj)
			if len(tc.want) == 0 {
				if len(errs) > 0 {
					t.Fatalf("valid object refused: %v", errs.ToAggregate())
				}
				return
			}
			if len(errs) == 0 {
				t.Fatalf("accepted; want an error naming %s", tc.want[0])
			}
			msg := errs.ToAggregate().Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
}

// set returns an edit that sets the dotted path to v (its numbers as the API
// server decodes them: int64).
func set(p string, v any) func(map[string]any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	if err := utiljson.Unmarshal(b, &v); err != nil {
		panic(err)
	}
	return func(obj map[string]any) {
		keys := strings.Split(p, ".")
		m := obj
		for _, k := range keys[:len(keys)-1] {
			next, ok := m[k].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[k] = next
			}
			m = next
		}
		m[keys[len(keys)-1]] = v
	}
}

// del returns an edit that removes the dotted path.
func del(p string) func(map[string]any) {
	return func(obj map[string]any) {
		keys := strings.Split(p, ".")
		m := obj
		for _, k := range keys[:len(keys)-1] {
			m = m[k].(map[string]any)
		}
		delete(m, keys[len(keys)-1])
	}
}

func ports(n int) []any {
	var out []any
	for i := range n {
		out = append(out, map[string]any{"number": 8000 + i})
	}
	return out
}

// TestOverlayNamesMatchTheTopology: the overlay's runtime Service is the one
// Compile points the gateway at, and its NodePort is the one the kind node
// maps.
func TestOverlayNamesMatchTheTopology(t *testing.T) {
	snap, err := manifests.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	overlay, err := readDocuments(manifests.KindOverlay(), "kind/")
	if err != nil {
		t.Fatal(err)
	}
	var services []string
	for _, d := range overlay {
		if d.gvk.Kind == "Service" {
			services = append(services, d.name)
		}
	}
	for _, gw := range snap.Gateways {
		for _, ext := range gw.Extensions {
			if !slices.Contains(services, ext.Service.Name) {
				t.Errorf("the overlay has no Service %s for APIMExtensionPolicy %s (have %v)", ext.Service.Name, ext.Name, services)
			}
		}
	}
	var found bool
	for _, d := range overlay {
		if d.gvk.Kind != "Service" || d.name != "gatecheck-gateway" {
			continue
		}
		b, _ := yaml.Marshal(d.obj)
		found = strings.Contains(string(b), "nodePort: 30080")
	}
	if !found {
		t.Error("the overlay's gatecheck-gateway Service does not expose NodePort 30080")
	}
}

// TestBuiltinKindsDecodeStrictly: a built-in object with a misspelt field, or
// a kind nothing serves, is refused with the field or kind named.
func TestBuiltinKindsDecodeStrictly(t *testing.T) {
	s, _, err := loadSchemas()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {replica: 2}\n", `unknown field "spec.replica"`},
		{"apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80, port: 81}]}\n", "port"},
		{"apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n", "no CRD here serves"},
	} {
		docs, err := splitYAML("t.yaml", []byte(tc.yaml))
		if err != nil {
			if strings.Contains(err.Error(), tc.want) {
				continue // a duplicate key is refused while splitting
			}
			t.Fatal(err)
		}
		err = validateDocument(s, docs[0])
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
