package manifests

import (
	"io/fs"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadDefault(t *testing.T) {
	t.Parallel()
	s, err := LoadDefault()
	require.NoError(t, err)

	assert.Equal(t, map[string]string{"gatecheck": "gatecheck.dev/gateway-controller"}, s.GatewayClasses)
	assert.Len(t, s.Policies, 5, "the threat protection policy files")

	require.Len(t, s.Gateways, 1)
	gw := s.Gateways[0]
	assert.Equal(t, Ref{"default", "inference-gateway"}, gw.Ref)
	assert.Equal(t, "gatecheck", gw.ClassName)
	assert.Equal(t, []Listener{{Name: "http", Port: 80, Protocol: "HTTP"}}, gw.Listeners)
	require.Len(t, gw.Extensions, 1)
	ext := gw.Extensions[0]
	assert.Equal(t, "inference-gateway-apim", ext.Name)
	assert.Equal(t, Ref{"default", "apigee-runtime-inference-gateway-apim"}, ext.Service)
	assert.True(t, ext.DefaultSecurity)
	assert.False(t, ext.FailOpen)
	assert.Equal(t, time.Second, ext.Timeout)
	require.Len(t, s.Products, 1)
	assert.Equal(t, "gatecheck-sandbox", s.Products[0].Name)
	require.Len(t, s.Products[0].OperationGroup.OperationConfigs, 1)
	cfg := s.Products[0].OperationGroup.OperationConfigs[0]
	assert.Equal(t, "inference-gateway-apim", cfg.APISource)
	assert.Equal(t, "1000", cfg.Quota.Limit)

	// Longer prefixes first: "/graphql", then "/api/", one character longer
	// than "/v1/".
	route := Ref{"default", "llm-route"}
	pool := []Backend{{Kind: BackendInferencePool, Ref: Ref{"default", "vllm-pool"}, Weight: 1}}
	service := []Backend{{Kind: BackendService, Ref: Ref{"default", "vllm-sim"}, Port: 8000, Weight: 1}}
	want := []RouteRule{
		{Route: route, RuleIndex: 1, MatchIndex: 0, PathType: PathPrefix, PathValue: "/graphql", Backends: service},
		{Route: route, RuleIndex: 0, MatchIndex: 1, PathType: PathPrefix, PathValue: "/api/", Backends: pool, Timeout: 300 * time.Second},
		{Route: route, RuleIndex: 0, MatchIndex: 0, PathType: PathPrefix, PathValue: "/v1/", Backends: pool, Timeout: 300 * time.Second},
	}
	require.Len(t, gw.Rules, len(want))
	for i, r := range gw.Rules {
		assert.Equal(t, want[i], *r, "rule %d", i)
	}

	require.Len(t, s.Workloads, 2)
	epp, sim := s.Workloads[0], s.Workloads[1] // file order: epp.yaml before models.yaml
	assert.Equal(t, &Workload{
		Ref: Ref{"default", "vllm-sim"}, Replicas: 3,
		PodLabels: map[string]string{"app": "vllm-sim"},
		Image:     "gatecheck:dev",
		Command:   []string{"/gatecheck", "serve", "model"},
		Args: []string{
			"--port", "8000", "--model", "qwen2.5-0.5b-instruct",
			"--served-model-name", "qwen2.5-0.5b-instruct", "--served-model-name", "llama-3.2-1b-instruct",
			"--lora-modules", "support-bot", "--max-loras", "1", "--max-num-seqs", "5",
		},
		Ports: []int32{8000},
	}, sim)
	assert.Equal(t, &Workload{
		Ref: Ref{"default", "vllm-pool-epp"}, Replicas: 1,
		PodLabels: map[string]string{"app": "vllm-pool-epp"},
		Image:     "gatecheck:dev",
		Command:   []string{"/gatecheck", "serve", "epp"},
		Args:      []string{"--pool", "vllm-pool", "--grpc-port", "9002"},
		Ports:     []int32{9002, 9003},
	}, epp)

	require.Len(t, s.Pools, 1)
	p := s.Pools[Ref{"default", "vllm-pool"}]
	require.NotNil(t, p)
	assert.Equal(t, &Pool{
		Ref:         Ref{"default", "vllm-pool"},
		Selector:    map[string]string{"app": "vllm-sim"},
		TargetPorts: []int32{8000},
		AppProtocol: "http",
		Picker:      &PickerRef{Service: Ref{"default", "vllm-pool-epp"}, Port: 9002, FailureMode: FailClose},
		Workloads:   []*Workload{sim},
	}, p)
	assert.Same(t, sim, p.Workloads[0])

	assert.Equal(t, map[Ref]*Service{
		{"default", "vllm-sim"}: {
			Ref: Ref{"default", "vllm-sim"}, Selector: map[string]string{"app": "vllm-sim"},
			Ports:     []ServicePort{{Name: "http", Port: 8000, TargetPort: 8000}},
			Workloads: []*Workload{sim},
		},
		{"default", "vllm-pool-epp"}: {
			Ref: Ref{"default", "vllm-pool-epp"}, Selector: map[string]string{"app": "vllm-pool-epp"},
			Ports: []ServicePort{
				{Name: "grpc-ext-proc", Port: 9002, TargetPort: 9002},
				{Name: "grpc-health", Port: 9003, TargetPort: 9003},
			},
			Workloads: []*Workload{epp},
		},
	}, s.Services)

	assert.Equal(t, map[string]*Objective{
		"chat-default": {Ref: Ref{"default", "chat-default"}, Priority: 0, Pool: Ref{"default", "vllm-pool"}},
	}, s.Objectives)
}

func TestDefaultFiles(t *testing.T) {
	t.Parallel()
	names, err := fs.Glob(Default(), "*.yaml")
	require.NoError(t, err)
	assert.Equal(t, []string{"apim.yaml", "epp.yaml", "gateway.yaml", "httproute.yaml", "inferencepool.yaml", "models.yaml"}, names)

	objs, policies, err := Load(Default(), ".")
	require.NoError(t, err)
	var policyFiles []string
	for name := range policies {
		policyFiles = append(policyFiles, name)
	}
	assert.ElementsMatch(t, []string{
		"policies/inference-gateway-apim/request/10-json-threat.xml",
		"policies/inference-gateway-apim/request/20-regex-injection.xml",
		"policies/inference-gateway-apim/request/30-graphql.xml",
		"policies/inference-gateway-apim/request/40-prompt-guard.xml",
		"policies/inference-gateway-apim/response/10-redact-pii.xml",
	}, policyFiles)
	var got []string
	for _, o := range objs {
		got = append(got, o.File+" "+o.APIVersion+" "+o.String())
	}
	assert.Equal(t, []string{
		"apim.yaml apim.googleapis.com/v1 APIMExtensionPolicy default/inference-gateway-apim",
		"apim.yaml apim.googleapis.com/v1 APIProduct default/gatecheck-sandbox",
		"apim.yaml apim.googleapis.com/v1 APIOperationSet default/gatecheck-sandbox-ops",
		"epp.yaml apps/v1 Deployment default/vllm-pool-epp",
		"epp.yaml v1 Service default/vllm-pool-epp",
		"gateway.yaml gateway.networking.k8s.io/v1 GatewayClass gatecheck",
		"gateway.yaml gateway.networking.k8s.io/v1 Gateway default/inference-gateway",
		"httproute.yaml gateway.networking.k8s.io/v1 HTTPRoute default/llm-route",
		"inferencepool.yaml inference.networking.k8s.io/v1 InferencePool default/vllm-pool",
		"inferencepool.yaml inference.networking.x-k8s.io/v1alpha2 InferenceObjective default/chat-default",
		"models.yaml apps/v1 Deployment default/vllm-sim",
		"models.yaml v1 Service default/vllm-sim",
	}, got)
}

func BenchmarkCompileDefault(b *testing.B) {
	objs, policies, err := Load(Default(), ".")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(objs, policies); err != nil {
			b.Fatal(err)
		}
	}
}
