package manifests

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatecheck/gatecheck/internal/apigeeapi"
)

const apimYAML = `apiVersion: apim.googleapis.com/v1
kind: APIMExtensionPolicy
metadata: {name: edge, namespace: default}
spec:
  location: global
  failOpen: true
  timeout: 250ms
  defaultSecurityEnabled: true
  targetRef: {name: inference-gateway, kind: Gateway, namespace: default}
---
apiVersion: apim.googleapis.com/v1
kind: APIProduct
metadata: {name: chat-basic}
spec:
  approvalType: manual
  displayName: Chat basic
  attributes: [{name: access, value: private}]
  enforcementRefs: [{name: edge, kind: APIMExtensionPolicy, group: apim.googleapis.com, namespace: default}]
---
apiVersion: apim.googleapis.com/v1
kind: APIOperationSet
metadata: {name: chat-basic-ops}
spec:
  apiProductRefs: [{name: chat-basic, kind: APIProduct, group: apim.googleapis.com, namespace: default}]
  quota: {limit: 100, interval: 1, timeUnit: minute}
  restOperations:
  - {name: chat, path: /v1/chat/completions, methods: [POST]}
  - {name: models, path: /v1/models}
`

func TestCompileAPIM(t *testing.T) {
	t.Parallel()
	files := defaultFiles(t)
	drop("apim.yaml")(files)
	add("apim.yaml", apimYAML)(files)
	files["policies/edge/request/10-spike.xml"] = `<SpikeArrest name="SA"><Rate>10ps</Rate></SpikeArrest>`
	files["policies/edge/request/02-ac.xml"] = `<AccessControl name="AC"/>`
	files["policies/edge/response/01-ltq.xml"] = `<LLMTokenQuota name="LTQ"/>`
	s, err := loadAndCompile(files)
	require.NoError(t, err)

	require.Len(t, s.Gateways[0].Extensions, 1)
	ext := s.Gateways[0].Extensions[0]
	assert.Equal(t, "edge", ext.Name)
	assert.Equal(t, Ref{Namespace: "default", Name: "apigee-runtime-edge"}, ext.Service)
	assert.Equal(t, int32(RuntimePort), ext.Port)
	assert.True(t, ext.FailOpen)
	assert.True(t, ext.DefaultSecurity)
	assert.Equal(t, 250*time.Millisecond, ext.Timeout)
	var req, resp []string
	for _, f := range ext.RequestPolicies {
		req = append(req, f.Path)
	}
	for _, f := range ext.ResponsePolicies {
		resp = append(resp, f.Path)
	}
	assert.Equal(t, []string{"policies/edge/request/02-ac.xml", "policies/edge/request/10-spike.xml"}, req, "file-name order")
	assert.Equal(t, []string{"policies/edge/response/01-ltq.xml"}, resp)

	require.Len(t, s.Products, 1)
	assert.Equal(t, apigeeapi.APIProduct{
		Name: "chat-basic", DisplayName: "Chat basic", ApprovalType: "manual",
		Attributes: []apigeeapi.Attribute{{Name: "access", Value: "private"}},
		OperationGroup: &apigeeapi.OperationGroup{OperationConfigType: "proxy", OperationConfigs: []apigeeapi.OperationConfig{{
			APISource: "edge",
			Operations: []apigeeapi.Operation{
				{Resource: "/v1/chat/completions", Methods: []string{"POST"}},
				{Resource: "/v1/models"},
			},
			Quota: &apigeeapi.Quota{Limit: "100", Interval: "1", TimeUnit: "minute"},
		}}},
	}, s.Products[0])
}

func TestCompileAPIMErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		edits []edit
		want  string
	}{
		{"unknown field", []edit{add("apim.yaml", apimYAML), patch("apim.yaml", "failOpen: true", "failopen: true")},
			"apim.yaml: APIMExtensionPolicy default/edge: spec.failopen: unknown field"},
		{"target gateway missing", []edit{add("apim.yaml", apimYAML), patch("apim.yaml", "{name: inference-gateway, kind: Gateway", "{name: public, kind: Gateway")},
			"apim.yaml: APIMExtensionPolicy default/edge: spec.targetRef.name: Gateway default/public not found"},
		{"target not a gateway", []edit{add("apim.yaml", apimYAML), patch("apim.yaml", "kind: Gateway,", "kind: HTTPRoute,")},
			`apim.yaml: APIMExtensionPolicy default/edge: spec.targetRef.kind: must be Gateway, got "HTTPRoute" (the operator attaches policies to Gateways only)`},
		{"bad timeout", []edit{add("apim.yaml", apimYAML), patch("apim.yaml", "timeout: 250ms", "timeout: soon")},
			`apim.yaml: APIMExtensionPolicy default/edge: spec.timeout: invalid duration "soon" (want for example 1000ms or 2s)`},
		{"enforcement missing", []edit{add("apim.yaml", apimYAML), patch("apim.yaml", "enforcementRefs: [{name: edge,", "enforcementRefs: [{name: other,")},
			"apim.yaml: APIProduct default/chat-basic: spec.enforcementRefs[0].name: APIMExtensionPolicy other not found"},
		{"product missing", []edit{add("apim.yaml", apimYAML), patch("apim.yaml", "apiProductRefs: [{name: chat-basic,", "apiProductRefs: [{name: chat-pro,")},
			"apim.yaml: APIOperationSet default/chat-basic-ops: spec.apiProductRefs[0].name: APIProduct default/chat-pro not found"},
		{"bad approval", []edit{add("apim.yaml", apimYAML), patch("apim.yaml", "approvalType: manual", "approvalType: sometimes")},
			`apim.yaml: APIProduct default/chat-basic: spec.approvalType: must be auto or manual, got "sometimes"`},
		{"bad quota unit", []edit{add("apim.yaml", apimYAML), patch("apim.yaml", "timeUnit: minute", "timeUnit: fortnight")},
			`apim.yaml: APIOperationSet default/chat-basic-ops: spec.quota.timeUnit: must be minute, hour, day or month, got "fortnight"`},
		{"zero quota", []edit{add("apim.yaml", apimYAML), patch("apim.yaml", "limit: 100", "limit: 0")},
			"apim.yaml: APIOperationSet default/chat-basic-ops: spec.quota.limit: must be a positive integer, got 0"},
		{"bad operation path", []edit{add("apim.yaml", apimYAML), patch("apim.yaml", "path: /v1/models", "path: v1/models")},
			`apim.yaml: APIOperationSet default/chat-basic-ops: spec.restOperations[1].path: must start with "/", got "v1/models"`},
		{"bad method", []edit{add("apim.yaml", apimYAML), patch("apim.yaml", "methods: [POST]", "methods: [post]")},
			`apim.yaml: APIOperationSet default/chat-basic-ops: spec.restOperations[0].methods[0]: invalid HTTP method "post"`},
		{"policy for unknown flow", []edit{add("apim.yaml", apimYAML), func(f map[string]string) { f["policies/other/request/a.xml"] = "<Quota/>" }},
			`policies/other/request/a.xml: no APIMExtensionPolicy named "other" to attach it to`},
		{"v1alpha1 refused", []edit{add("apim.yaml", "apiVersion: apim.googleapis.com/v1alpha1\nkind: APIProduct\nmetadata: {name: p}\n")},
			"apim.yaml: document 1: unsupported kind apim.googleapis.com/v1alpha1 APIProduct (APIProduct is supported as apim.googleapis.com/v1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			files := defaultFiles(t)
			drop("apim.yaml")(files)
			for _, e := range tt.edits {
				e(files)
			}
			_, err := loadAndCompile(files)
			require.Error(t, err)
			assert.Equal(t, tt.want, err.Error())
		})
	}
}
