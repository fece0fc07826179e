package manifests

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// edit changes the default topology's files, by file name.
type edit func(files map[string]string)

// patch replaces the one occurrence of old in file with new.
func patch(file, old, new string) edit {
	return func(files map[string]string) {
		if strings.Count(files[file], old) != 1 {
			panic("patch: " + file + " does not contain exactly one " + old)
		}
		files[file] = strings.Replace(files[file], old, new, 1)
	}
}

// add appends YAML documents to file (creating it).
func add(file, yaml string) edit {
	return func(files map[string]string) {
		if files[file] != "" {
			files[file] += "---\n"
		}
		files[file] += yaml
	}
}

// drop removes a file. Dropping apim.yaml drops the policy XML of the
// default APIMExtensionPolicy too: it has no flow left to attach to.
func drop(file string) edit {
	return func(files map[string]string) {
		delete(files, file)
		if file == "apim.yaml" {
			for name := range files {
				if strings.HasPrefix(name, "policies/inference-gateway-apim/") {
					delete(files, name)
				}
			}
		}
	}
}

// defaultFiles returns the default topology's files as text.
func defaultFiles(t testing.TB) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := fs.WalkDir(Default(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(Default(), p)
		files[p] = string(b)
		return err
	})
	require.NoError(t, err)
	return files
}

// loadAndCompile loads files from memory and compiles them.
func loadAndCompile(files map[string]string) (*Snapshot, error) {
	fsys := fstest.MapFS{}
	for name, text := range files {
		fsys["topology/"+name] = &fstest.MapFile{Data: []byte(text)}
	}
	objs, policies, err := Load(fsys, "topology")
	if err != nil {
		return nil, err
	}
	return Compile(objs, policies)
}

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		edits []edit
		want  string
	}{
		// Strict decoding: unknown fields, with their paths, in every kind.
		{
			name:  "unknown field in GatewayClass",
			edits: []edit{patch("gateway.yaml", "  controllerName:", "  controller: x\n  controllerName:")},
			want:  `gateway.yaml: GatewayClass gatecheck: spec.controller: unknown field`,
		},
		{
			name:  "unknown field in Gateway",
			edits: []edit{patch("gateway.yaml", "    port: 80\n", "    port: 80\n    foo: bar\n")},
			want:  `gateway.yaml: Gateway default/inference-gateway: spec.listeners[0].foo: unknown field`,
		},
		{
			name:  "unknown field in HTTPRoute",
			edits: []edit{patch("httproute.yaml", "    timeouts:", "    timeout: 5s\n    timeouts:")},
			want:  `httproute.yaml: HTTPRoute default/llm-route: spec.rules[0].timeout: unknown field`,
		},
		{
			name:  "unknown field in InferencePool (the pre-v1.6 portNumber)",
			edits: []edit{patch("inferencepool.yaml", "    port:\n      number: 9002\n", "    portNumber: 9002\n")},
			want:  `inferencepool.yaml: InferencePool default/vllm-pool: spec.endpointPickerRef.portNumber: unknown field`,
		},
		{
			name:  "unknown field in InferenceObjective (the InferenceModel criticality)",
			edits: []edit{patch("inferencepool.yaml", "  priority: 0\n", "  criticality: Critical\n")},
			want:  `inferencepool.yaml: InferenceObjective default/chat-default: spec.criticality: unknown field`,
		},
		{
			name:  "unknown field in Deployment",
			edits: []edit{patch("models.yaml", "        image: gatecheck:dev", "        imagee: gatecheck:dev")},
			want:  `models.yaml: Deployment default/vllm-sim: spec.template.spec.containers[0].imagee: unknown field`,
		},
		{
			name:  "unknown field in Service",
			edits: []edit{patch("models.yaml", "    targetPort: http", "    targetport: http")},
			want:  `models.yaml: Service default/vllm-sim: spec.ports[0].targetport: unknown field`,
		},
		{
			name:  "duplicate field",
			edits: []edit{patch("httproute.yaml", "  name: llm-route\n", "  name: llm-route\n  name: other\n")},
			want:  `httproute.yaml: document 1: invalid YAML: line 8: duplicate field "name"`,
		},
		{
			name:  "wrong value type",
			edits: []edit{patch("gateway.yaml", "port: 80", "port: eighty")},
			want:  `gateway.yaml: Gateway default/inference-gateway: spec.listeners.port: expected an integer, got string`,
		},
		{
			name:  "YAML syntax error names the line in the file",
			edits: []edit{patch("inferencepool.yaml", "      app: vllm-sim\n", "      app: vllm-sim\n     bad: indent\n")},
			want:  `inferencepool.yaml: document 1: invalid YAML: line 13: did not find expected key`,
		},
		{
			name:  "unsupported kind",
			edits: []edit{add("extra.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")},
			want:  `extra.yaml: document 1: unsupported kind v1 ConfigMap`,
		},
		{
			name:  "unsupported version of a known kind",
			edits: []edit{patch("inferencepool.yaml", "apiVersion: inference.networking.k8s.io/v1\n", "apiVersion: inference.networking.x-k8s.io/v1alpha2\n")},
			want:  `inferencepool.yaml: document 1: unsupported kind inference.networking.x-k8s.io/v1alpha2 InferencePool (InferencePool is supported as inference.networking.k8s.io/v1)`,
		},
		{
			name:  "missing apiVersion",
			edits: []edit{add("extra.yaml", "kind: Service\nmetadata: {name: x}\n")},
			want:  `extra.yaml: document 1: apiVersion: must be set`,
		},
		{
			name:  "missing kind",
			edits: []edit{add("extra.yaml", "apiVersion: v1\nmetadata: {name: x}\n")},
			want:  `extra.yaml: document 1: kind: must be set`,
		},
		{
			name:  "missing names, in the second and third documents",
			edits: []edit{add("extra.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: ok}\n---\napiVersion: v1\nkind: Service\nmetadata: {}\n---\napiVersion: v1\nkind: Service\nmetadata: {namespace: x}\n")},
			want:  "extra.yaml: document 2: metadata.name: must be set\nextra.yaml: document 3: metadata.name: must be set",
		},
		{
			name:  "not a mapping",
			edits: []edit{add("extra.yaml", "- a\n- b\n")},
			want:  `extra.yaml: document 1: document is not a mapping (a Kubernetes object)`,
		},
		{
			name:  "object defined twice",
			edits: []edit{add("extra.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: vllm-sim}\n")},
			want: "httproute.yaml: HTTPRoute default/llm-route: spec.rules[1].backendRefs[0].port: Service default/vllm-sim has no port 8000\n" +
				`models.yaml: Service default/vllm-sim: defined twice (also in extra.yaml document 1)`,
		},

		// References.
		{
			name:  "missing gateway",
			edits: []edit{patch("httproute.yaml", "    name: inference-gateway", "    name: public-gateway")},
			want:  `httproute.yaml: HTTPRoute default/llm-route: spec.parentRefs[0].name: Gateway default/public-gateway not found`,
		},
		{
			name:  "gateway in another namespace",
			edits: []edit{patch("httproute.yaml", "    name: inference-gateway", "    name: inference-gateway\n    namespace: infra")},
			want:  `httproute.yaml: HTTPRoute default/llm-route: spec.parentRefs[0].name: Gateway infra/inference-gateway not found`,
		},
		{
			name:  "sectionName names no listener",
			edits: []edit{patch("httproute.yaml", "    name: inference-gateway", "    name: inference-gateway\n    sectionName: https")},
			want:  `httproute.yaml: HTTPRoute default/llm-route: spec.parentRefs[0].sectionName: Gateway default/inference-gateway has no listener "https"`,
		},
		{
			name:  "non-Gateway parent",
			edits: []edit{patch("httproute.yaml", "    kind: Gateway", "    kind: ListenerSet")},
			want:  `httproute.yaml: HTTPRoute default/llm-route: spec.parentRefs[0]: parent ListenerSet in group "gateway.networking.k8s.io" is not supported (only Gateway)`,
		},
		{
			name: "missing service",
			edits: []edit{patch("httproute.yaml", "    - group: inference.networking.k8s.io\n      kind: InferencePool\n      name: vllm-pool\n",
				"    - name: vllm\n      port: 8000\n")},
			want: `httproute.yaml: HTTPRoute default/llm-route: spec.rules[0].backendRefs[0].name: Service default/vllm not found`,
		},
		{
			name: "service port that does not exist",
			edits: []edit{patch("httproute.yaml", "    - group: inference.networking.k8s.io\n      kind: InferencePool\n      name: vllm-pool\n",
				"    - name: vllm-sim\n      port: 80\n")},
			want: `httproute.yaml: HTTPRoute default/llm-route: spec.rules[0].backendRefs[0].port: Service default/vllm-sim has no port 80`,
		},
		{
			name: "service backend without a port",
			edits: []edit{patch("httproute.yaml", "    - group: inference.networking.k8s.io\n      kind: InferencePool\n      name: vllm-pool\n",
				"    - name: vllm-sim\n")},
			want: `httproute.yaml: HTTPRoute default/llm-route: spec.rules[0].backendRefs[0].port: must be set for a Service backend`,
		},
		{
			name:  "missing pool",
			edits: []edit{patch("httproute.yaml", "      name: vllm-pool", "      name: vllm-pool-2")},
			want:  `httproute.yaml: HTTPRoute default/llm-route: spec.rules[0].backendRefs[0].name: InferencePool default/vllm-pool-2 not found`,
		},
		{
			name:  "backend of an unsupported kind",
			edits: []edit{patch("httproute.yaml", "      kind: InferencePool", "      kind: InferenceModel")},
			want:  `httproute.yaml: HTTPRoute default/llm-route: spec.rules[0].backendRefs[0].kind: backend kind InferenceModel in group "inference.networking.k8s.io" is not supported (use Service or inference.networking.k8s.io InferencePool)`,
		},
		{
			name:  "pool selector matching no Deployment",
			edits: []edit{patch("inferencepool.yaml", "      app: vllm-sim", "      app: vllm")},
			want:  `inferencepool.yaml: InferencePool default/vllm-pool: spec.selector.matchLabels: no Deployment matches selector app=vllm`,
		},
		{
			name:  "picker service missing",
			edits: []edit{patch("inferencepool.yaml", "    name: vllm-pool-epp", "    name: epp")},
			want:  `inferencepool.yaml: InferencePool default/vllm-pool: spec.endpointPickerRef.name: Service default/epp not found`,
		},
		{
			name:  "picker port missing on the service",
			edits: []edit{patch("inferencepool.yaml", "      number: 9002", "      number: 9999")},
			want:  `inferencepool.yaml: InferencePool default/vllm-pool: spec.endpointPickerRef.port.number: Service default/vllm-pool-epp has no port 9999`,
		},
		{
			name:  "picker without port",
			edits: []edit{patch("inferencepool.yaml", "    port:\n      number: 9002\n", "")},
			want:  `inferencepool.yaml: InferencePool default/vllm-pool: spec.endpointPickerRef.port: must be set when kind is Service`,
		},
		{
			name:  "objective naming a missing pool",
			edits: []edit{patch("inferencepool.yaml", "    name: vllm-pool\n", "    name: qwen-pool\n")},
			want:  `inferencepool.yaml: InferenceObjective default/chat-default: spec.poolRef.name: InferencePool default/qwen-pool not found`,
		},
		{
			name:  "named targetPort no container declares",
			edits: []edit{patch("models.yaml", "    targetPort: http", "    targetPort: web")},
			want: "httproute.yaml: HTTPRoute default/llm-route: spec.rules[1].backendRefs[0].port: Service default/vllm-sim has no port 8000\n" +
				`models.yaml: Service default/vllm-sim: spec.ports[0].targetPort: no container port named "web" in the Deployments the selector matches`,
		},
		{
			name:  "route without parents",
			edits: []edit{patch("httproute.yaml", "  parentRefs:\n  - group: gateway.networking.k8s.io\n    kind: Gateway\n    name: inference-gateway\n", "")},
			want:  `httproute.yaml: HTTPRoute default/llm-route: spec.parentRefs: must name at least one Gateway`,
		},

		// Values.
		{
			name:  "bad regular expression",
			edits: []edit{patch("httproute.yaml", "        type: PathPrefix\n        value: /v1/", "        type: RegularExpression\n        value: /v1/(chat")},
			want:  "httproute.yaml: HTTPRoute default/llm-route: spec.rules[0].matches[0].path.value: invalid regular expression: error parsing regexp: missing closing ): `/v1/(chat`",
		},
		{
			name:  "bad header regular expression",
			edits: []edit{patch("httproute.yaml", "        value: /v1/\n", "        value: /v1/\n      headers:\n      - name: X-Tenant\n        type: RegularExpression\n        value: \"[a-\"\n")},
			want:  "httproute.yaml: HTTPRoute default/llm-route: spec.rules[0].matches[0].headers[0].value: invalid regular expression: error parsing regexp: missing closing ]: `[a-`",
		},
		{
			name:  "path value without a leading slash",
			edits: []edit{patch("httproute.yaml", "value: /api/", "value: api/")},
			want:  `httproute.yaml: HTTPRoute default/llm-route: spec.rules[0].matches[1].path.value: must start with "/", got "api/"`,
		},
		{
			name:  "unknown path match type",
			edits: []edit{patch("httproute.yaml", "        type: PathPrefix\n        value: /api/", "        type: Prefix\n        value: /api/")},
			want:  `httproute.yaml: HTTPRoute default/llm-route: spec.rules[0].matches[1].path.type: unsupported path match type "Prefix" (use Exact, PathPrefix or RegularExpression)`,
		},
		{
			name:  "invalid method",
			edits: []edit{patch("httproute.yaml", "        value: /v1/\n", "        value: /v1/\n      method: get\n")},
			want:  `httproute.yaml: HTTPRoute default/llm-route: spec.rules[0].matches[0].method: invalid HTTP method "get" (use one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH)`,
		},
		{
			name:  "weight out of range",
			edits: []edit{patch("httproute.yaml", "      name: vllm-pool\n", "      name: vllm-pool\n      weight: 1000001\n")},
			want:  `httproute.yaml: HTTPRoute default/llm-route: spec.rules[0].backendRefs[0].weight: must be between 0 and 1000000, got 1000001`,
		},
		{
			name:  "bad failureMode",
			edits: []edit{patch("inferencepool.yaml", "failureMode: FailClose", "failureMode: FailClosed")},
			want:  `inferencepool.yaml: InferencePool default/vllm-pool: spec.endpointPickerRef.failureMode: must be FailOpen or FailClose, got "FailClosed"`,
		},
		{
			name:  "bad duration",
			edits: []edit{patch("httproute.yaml", "request: 300s", "request: 5 minutes")},
			want:  `httproute.yaml: HTTPRoute default/llm-route: spec.rules[0].timeouts.request: invalid duration "5 minutes" (want a Gateway API duration such as 10s, 1m or 500ms)`,
		},
		{
			name:  "backendRequest longer than request",
			edits: []edit{patch("httproute.yaml", "request: 300s", "request: 1m\n      backendRequest: 2m")},
			want:  `httproute.yaml: HTTPRoute default/llm-route: spec.rules[0].timeouts.backendRequest: must not be longer than timeouts.request (1m)`,
		},
		{
			name:  "unsupported filter",
			edits: []edit{patch("httproute.yaml", "    timeouts:", "    filters:\n    - type: URLRewrite\n      urlRewrite: {hostname: example.com}\n    timeouts:")},
			want:  `httproute.yaml: HTTPRoute default/llm-route: spec.rules[0].filters[0].type: filter type URLRewrite is not supported`,
		},
		{
			name:  "HTTPS listener",
			edits: []edit{patch("gateway.yaml", "    protocol: HTTP\n    port: 80", "    protocol: HTTPS\n    port: 443")},
			want:  `gateway.yaml: Gateway default/inference-gateway: spec.listeners[0].protocol: protocol HTTPS is not supported by the simulation`,
		},
		{
			name:  "duplicate listener names",
			edits: []edit{patch("gateway.yaml", "    port: 80\n", "    port: 80\n  - name: http\n    protocol: HTTP\n    port: 8080\n")},
			want:  `gateway.yaml: Gateway default/inference-gateway: spec.listeners[1].name: duplicate listener name "http"`,
		},
		{
			name:  "gateway without class",
			edits: []edit{patch("gateway.yaml", "  gatewayClassName: gatecheck\n", "")},
			want:  `gateway.yaml: Gateway default/inference-gateway: spec.gatewayClassName: must be set`,
		},
		{
			name:  "too many replicas",
			edits: []edit{patch("models.yaml", "replicas: 3", "replicas: 65")},
			want:  `models.yaml: Deployment default/vllm-sim: spec.replicas: must be between 0 and 64, got 65`,
		},
		{
			name:  "deployment selector not matching its template",
			edits: []edit{patch("models.yaml", "  selector:\n    matchLabels:\n      app: vllm-sim\n", "  selector:\n    matchLabels:\n      app: other\n")},
			want:  `models.yaml: Deployment default/vllm-sim: spec.selector: does not match the pod template labels app=vllm-sim`,
		},
		{
			name:  "pool with duplicate target ports",
			edits: []edit{patch("inferencepool.yaml", "  - number: 8000\n", "  - number: 8000\n  - number: 8000\n")},
			want:  `inferencepool.yaml: InferencePool default/vllm-pool: spec.targetPorts[1].number: duplicate port 8000`,
		},

		{
			name:  "picker of an unsupported kind",
			edits: []edit{patch("inferencepool.yaml", "    name: vllm-pool-epp", "    kind: Deployment\n    name: vllm-pool-epp")},
			want:  `inferencepool.yaml: InferencePool default/vllm-pool: spec.endpointPickerRef.kind: kind Deployment is not supported (only Service)`,
		},
		{
			name:  "bad appProtocol",
			edits: []edit{patch("inferencepool.yaml", "  targetPorts:", "  appProtocol: grpc\n  targetPorts:")},
			want:  `inferencepool.yaml: InferencePool default/vllm-pool: spec.appProtocol: must be http or kubernetes.io/h2c, got "grpc"`,
		},
		{
			name:  "objective naming a pool by a wrong kind",
			edits: []edit{patch("inferencepool.yaml", "    kind: InferencePool\n", "    kind: InferenceModel\n")},
			want:  `inferencepool.yaml: InferenceObjective default/chat-default: spec.poolRef.kind: must be InferencePool, got "InferenceModel"`,
		},
		{
			name: "objective name used in two namespaces",
			edits: []edit{add("team.yaml", `apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceObjective
metadata: {name: chat-default, namespace: team}
spec: {poolRef: {name: team-pool}}
---
apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {name: team-pool, namespace: team}
spec: {selector: {matchLabels: {app: team}}, targetPorts: [{number: 8000}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: team, namespace: team}
spec:
  selector: {matchLabels: {app: team}}
  template:
    metadata: {labels: {app: team}}
    spec: {containers: [{name: m, image: "m:1"}]}
`)},
			want: `team.yaml: InferenceObjective team/chat-default: metadata.name: InferenceObjective default/chat-default has the same name; requests name objectives by name alone`,
		},

		// Everything at once: every broken reference is reported, in file order.
		{
			name: "multiple errors reported together",
			edits: []edit{
				patch("gateway.yaml", "    protocol: HTTP\n", "    protocol: TLS\n"),
				patch("httproute.yaml", "    name: inference-gateway", "    name: gw"),
				patch("httproute.yaml", "value: /api/", "value: api"),
				patch("httproute.yaml", "      name: vllm-pool\n", "      name: pool\n"),
				patch("inferencepool.yaml", "    name: vllm-pool-epp", "    name: epp"),
				drop("models.yaml"),
			},
			want: "gateway.yaml: Gateway default/inference-gateway: spec.listeners[0].protocol: protocol TLS is not supported by the simulation\n" +
				"httproute.yaml: HTTPRoute default/llm-route: spec.parentRefs[0].name: Gateway default/gw not found\n" +
				"httproute.yaml: HTTPRoute default/llm-route: spec.rules[0].backendRefs[0].name: InferencePool default/pool not found\n" +
				"httproute.yaml: HTTPRoute default/llm-route: spec.rules[0].matches[1].path.value: must start with \"/\", got \"api\"\n" +
				"httproute.yaml: HTTPRoute default/llm-route: spec.rules[1].backendRefs[0].name: Service default/vllm-sim not found\n" +
				"inferencepool.yaml: InferencePool default/vllm-pool: spec.endpointPickerRef.name: Service default/epp not found\n" +
				`inferencepool.yaml: InferencePool default/vllm-pool: spec.selector.matchLabels: no Deployment matches selector app=vllm-sim`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			files := defaultFiles(t)
			for _, e := range tt.edits {
				e(files)
			}
			s, err := loadAndCompile(files)
			require.Error(t, err)
			assert.Nil(t, s)
			assert.Equal(t, tt.want, err.Error())
			for _, e := range unjoin(err) {
				var fe *FieldError
				assert.True(t, errors.As(e, &fe), "%T is not a *FieldError", e)
			}
		})
	}
}

// unjoin flattens errors.Join trees.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	return []error{err}
}

func TestCompileVariants(t *testing.T) {
	t.Parallel()
	t.Run("pool without picker", func(t *testing.T) {
		t.Parallel()
		files := defaultFiles(t)
		patch("inferencepool.yaml", "  endpointPickerRef:\n    name: vllm-pool-epp\n    port:\n      number: 9002\n    failureMode: FailClose\n", "")(files)
		s, err := loadAndCompile(files)
		require.NoError(t, err)
		assert.Nil(t, s.Pools[Ref{"default", "vllm-pool"}].Picker)
	})
	t.Run("defaults of a picker ref", func(t *testing.T) {
		t.Parallel()
		files := defaultFiles(t)
		patch("inferencepool.yaml", "    failureMode: FailClose\n", "")(files)
		patch("inferencepool.yaml", "    name: vllm-pool-epp\n", "    group: \"\"\n    kind: Service\n    name: vllm-pool-epp\n")(files)
		s, err := loadAndCompile(files)
		require.NoError(t, err)
		assert.Equal(t, &PickerRef{Service: Ref{"default", "vllm-pool-epp"}, Port: 9002, FailureMode: FailClose}, s.Pools[Ref{"default", "vllm-pool"}].Picker)
	})
	t.Run("fail open, h2c, zero replicas, negative priority", func(t *testing.T) {
		t.Parallel()
		files := defaultFiles(t)
		patch("inferencepool.yaml", "failureMode: FailClose", "failureMode: FailOpen")(files)
		patch("inferencepool.yaml", "  targetPorts:", "  appProtocol: kubernetes.io/h2c\n  targetPorts:")(files)
		patch("inferencepool.yaml", "priority: 0", "priority: -2")(files)
		patch("models.yaml", "replicas: 3", "replicas: 0")(files)
		s, err := loadAndCompile(files)
		require.NoError(t, err)
		p := s.Pools[Ref{"default", "vllm-pool"}]
		assert.Equal(t, FailOpen, p.Picker.FailureMode)
		assert.Equal(t, "kubernetes.io/h2c", p.AppProtocol)
		assert.Equal(t, 0, p.Workloads[0].Replicas)
		assert.Equal(t, -2, s.Objectives["chat-default"].Priority)
	})
	t.Run("timeout 0s means none", func(t *testing.T) {
		t.Parallel()
		files := defaultFiles(t)
		patch("httproute.yaml", "request: 300s", "request: 0s")(files)
		s, err := loadAndCompile(files)
		require.NoError(t, err)
		for _, r := range s.Gateways[0].Rules {
			assert.Zero(t, r.Timeout, r.PathValue)
		}
	})
}
