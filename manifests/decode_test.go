package manifests

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

func TestDecodeDocuments(t *testing.T) {
	t.Parallel()
	data := `# leading comment, not a document
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: gc}
spec: {controllerName: example.com/gc}
---
# an empty document still counts
---
--- # a separator with a comment
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra}
spec:
  gatewayClassName: gc
  listeners: [{name: http, protocol: HTTP, port: 80}]
...
`
	objs, err := Decode("a.yaml", []byte(data))
	require.NoError(t, err)
	require.Len(t, objs, 2)
	assert.Equal(t, Object{File: "a.yaml", Doc: 0, APIVersion: "gateway.networking.k8s.io/v1", Kind: "GatewayClass", Name: "gc", Value: objs[0].Value}, objs[0])
	assert.Equal(t, Object{File: "a.yaml", Doc: 3, APIVersion: "gateway.networking.k8s.io/v1", Kind: "Gateway", Namespace: "infra", Name: "gw", Value: objs[1].Value}, objs[1])
	gw, ok := objs[1].Value.(*gatewayv1.Gateway)
	require.True(t, ok)
	assert.Equal(t, gatewayv1.PortNumber(80), gw.Spec.Listeners[0].Port)

	objs, err = Decode("empty.yaml", []byte("# nothing\n---\n---\n"))
	require.NoError(t, err)
	assert.Empty(t, objs)
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	svc := "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n"
	tests := []struct {
		name, data, want string
	}{
		{
			name: "scanner error in the third document counts lines from the top of the file",
			data: svc + "---\n" + svc + "---\napiVersion: v1\nkind: Service\n  metadata: {}\n",
			want: "f.yaml: document 3: invalid YAML: line 11: mapping values are not allowed in this context",
		},
		{
			name: "parser error in the second document",
			data: svc + "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: s\n labels: {}\n",
			want: "f.yaml: document 2: invalid YAML: line 9: did not find expected key",
		},
		{
			name: "duplicate key, nested",
			data: "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n  name: t\n",
			want: `f.yaml: document 1: invalid YAML: line 5: duplicate field "name"`,
		},
		{
			name: "every unknown field of a document",
			data: "apiVersion: v1\nkind: Service\nmetadata: {name: s, nme: t}\nspec: {prts: []}\n",
			want: "f.yaml: Service default/s: metadata.nme: unknown field\nf.yaml: Service default/s: spec.prts: unknown field",
		},
		{
			name: "errors of every document, valid ones decoded",
			data: "kind: Service\n---\n" + svc + "---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\n",
			want: "f.yaml: document 1: apiVersion: must be set\nf.yaml: document 3: unsupported kind v1 Pod",
		},
		{
			name: "a scalar",
			data: "hello\n",
			want: "f.yaml: document 1: document is not a mapping (a Kubernetes object)",
		},
		{
			name: "metadata.name of the wrong type",
			data: "apiVersion: v1\nkind: Service\nmetadata: {name: 5}\n",
			want: "f.yaml: document 1: metadata.name: must be set",
		},
		{
			name: "wrong type inside a known name",
			data: "apiVersion: v1\nkind: Service\nmetadata: {name: s, labels: [a]}\n",
			want: "f.yaml: Service default/s: metadata.labels: expected a mapping, got array",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Decode("f.yaml", []byte(tt.data))
			require.Error(t, err)
			assert.Equal(t, tt.want, err.Error())
			for _, e := range unjoin(err) {
				assert.IsType(t, &FieldError{}, e)
			}
		})
	}
}
