package manifests

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// routeBase is a Gateway and a Service for route tests to point at.
const routeBase = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: gatecheck
  listeners: [{name: http, protocol: HTTP, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: web:1}]
`

// route is an HTTPRoute named name on gw with the given rules (YAML, indented
// as items of spec.rules) and extra metadata lines.
func route(name, meta, rules string) string {
	return fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: %s
%s
spec:
  parentRefs: [{name: gw}]
  rules:
%s`, name, meta, rules)
}

func compileRoutes(t *testing.T, docs ...string) *Snapshot {
	t.Helper()
	files := map[string]string{"base.yaml": routeBase}
	for i, d := range docs {
		files[fmt.Sprintf("route%d.yaml", i)] = d
	}
	s, err := loadAndCompile(files)
	require.NoError(t, err)
	return s
}

func TestRulePrecedence(t *testing.T) {
	t.Parallel()
	const backend = "    backendRefs: [{name: web, port: 80}]\n"
	b := route("b-route", "", ""+
		"  - backendRefs: [{name: web, port: 80}]\n"+ // rule 0: no matches = PathPrefix /
		"  - matches: [{path: {type: Exact, value: /v1/models}}]\n"+backend+
		"  - matches: [{path: {value: /v1}}, {path: {value: /v1/chat}}]\n"+backend+
		"  - matches: [{path: {value: /v1/chat}, headers: [{name: a, value: x}]}]\n"+backend+
		"  - matches: [{path: {value: /v1/chat}, method: POST}]\n"+backend+
		"  - matches: [{path: {value: /v1/chat}, headers: [{name: a, value: x}, {name: b, value: z}]}]\n"+backend+
		"  - matches: [{path: {value: /v1/chat}, queryParams: [{name: q, value: x}]}]\n"+backend+
		"  - matches: [{path: {type: RegularExpression, value: /v1/.*/x}}]\n"+backend)
	a := route("a-route", "", "  - matches: [{path: {value: /v1/chat}}]\n"+backend)
	c := route("c-route", `  creationTimestamp: "2020-01-01T00:00:00Z"`, "  - matches: [{path: {value: /v1/chat}}]\n"+backend)
	s := compileRoutes(t, b, a, c)

	var got []string
	for _, r := range s.Gateways[0].Rules {
		got = append(got, fmt.Sprintf("%s rule %d match %d: %s %s", r.Route.Name, r.RuleIndex, r.MatchIndex, r.PathType, r.PathValue))
	}
	assert.Equal(t, []string{
		"b-route rule 1 match 0: Exact /v1/models",
		"b-route rule 7 match 0: RegularExpression /v1/.*/x",
		"b-route rule 4 match 0: PathPrefix /v1/chat", // a method match before header matches
		"b-route rule 5 match 0: PathPrefix /v1/chat", // two headers
		"b-route rule 3 match 0: PathPrefix /v1/chat", // one header
		"b-route rule 6 match 0: PathPrefix /v1/chat", // one query parameter
		"c-route rule 0 match 0: PathPrefix /v1/chat", // the oldest route
		"a-route rule 0 match 0: PathPrefix /v1/chat", // then by name
		"b-route rule 2 match 1: PathPrefix /v1/chat",
		"b-route rule 2 match 0: PathPrefix /v1",
		"b-route rule 0 match 0: PathPrefix /",
	}, got)
}

func TestCompileRouteDetails(t *testing.T) {
	t.Parallel()
	r := route("r", "  namespace: default", `  - matches:
    - path: {type: RegularExpression, value: "/v[0-9]+/chat"}
      headers:
      - {name: X-Tenant, value: acme}
      - {name: X-Tier, type: RegularExpression, value: "gold|silver"}
      queryParams:
      - {name: Debug, value: "1"}
      method: POST
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: X-Set, value: s}]
        add: [{name: X-Add, value: a}]
        remove: [X-Remove]
    backendRefs:
    - {name: web, port: 80}
    - {name: web, port: 80, weight: 0}
    timeouts: {request: 1m30s, backendRequest: 500ms}
`)
	r = replaceOnce(t, r, "spec:\n", "spec:\n  hostnames: [llm.example.com]\n")
	s := compileRoutes(t, r)

	rules := s.Gateways[0].Rules
	require.Len(t, rules, 1)
	rr := rules[0]
	assert.Equal(t, Ref{"default", "r"}, rr.Route)
	assert.Equal(t, []string{"llm.example.com"}, rr.Hostnames)
	assert.Equal(t, PathRegularExpression, rr.PathType)
	require.NotNil(t, rr.PathRegexp)
	assert.True(t, rr.PathRegexp.MatchString("/v1/chat"))
	assert.False(t, rr.PathRegexp.MatchString("/v1/chat/completions"), "anchored at the end")
	assert.False(t, rr.PathRegexp.MatchString("/api/v1/chat"), "anchored at the start")

	require.Len(t, rr.Headers, 2)
	assert.Equal(t, "x-tenant", rr.Headers[0].Name)
	assert.True(t, rr.Headers[0].Matches("acme"))
	assert.False(t, rr.Headers[0].Matches("acme2"))
	assert.Equal(t, "x-tier", rr.Headers[1].Name)
	assert.True(t, rr.Headers[1].Matches("gold"))
	assert.False(t, rr.Headers[1].Matches("golden"))
	require.Len(t, rr.Query, 1)
	assert.Equal(t, "Debug", rr.Query[0].Name, "query parameter names keep their case")
	assert.Equal(t, "POST", rr.Method)

	assert.Equal(t, map[string]string{"x-set": "s"}, rr.SetRequestHeaders)
	assert.Equal(t, map[string]string{"x-add": "a"}, rr.AddRequestHeaders)
	assert.Equal(t, []string{"x-remove"}, rr.RemoveRequestHeaders)

	assert.Equal(t, []Backend{
		{Kind: BackendService, Ref: Ref{"default", "web"}, Port: 80, Weight: 1},
		{Kind: BackendService, Ref: Ref{"default", "web"}, Port: 80, Weight: 0},
	}, rr.Backends)
	assert.Equal(t, 90*time.Second, rr.Timeout)
	assert.Equal(t, 500*time.Millisecond, rr.BackendTimeout)

	assert.Equal(t, []ServicePort{{Name: "http", Port: 80, TargetPort: 8080}}, s.Services[Ref{"default", "web"}].Ports)
}

func TestRouteOnTwoGateways(t *testing.T) {
	t.Parallel()
	second := `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw2}
spec:
  gatewayClassName: other
  listeners:
  - {name: a, protocol: HTTP, port: 8080}
  - {name: b, protocol: HTTP, port: 8081, hostname: "*.example.com"}
`
	r := route("r", "", "  - backendRefs: [{name: web, port: 80}]\n")
	r = replaceOnce(t, r, "parentRefs: [{name: gw}]", "parentRefs: [{name: gw}, {name: gw2, sectionName: a}, {name: gw2, port: 8081}]")
	s := compileRoutes(t, second, r)
	require.Len(t, s.Gateways, 2)
	assert.Equal(t, "gw", s.Gateways[0].Ref.Name) // base.yaml sorts before route0.yaml
	assert.Equal(t, []Listener{{Name: "a", Port: 8080, Protocol: "HTTP"}, {Name: "b", Port: 8081, Protocol: "HTTP", Hostname: "*.example.com"}}, s.Gateways[1].Listeners)
	require.Len(t, s.Gateways[0].Rules, 1)
	require.Len(t, s.Gateways[1].Rules, 1, "attached once although named twice")
	assert.Same(t, s.Gateways[0].Rules[0], s.Gateways[1].Rules[0])
}

func TestAllowedRoutes(t *testing.T) {
	t.Parallel()
	r := route("r", "  namespace: team", "  - backendRefs: [{name: web, port: 80}]\n")
	r = replaceOnce(t, r, "parentRefs: [{name: gw}]", "parentRefs: [{name: gw, namespace: default}]")
	_, err := loadAndCompile(map[string]string{"base.yaml": routeBase, "route.yaml": r})
	require.Error(t, err)
	assert.Equal(t, "route.yaml: HTTPRoute team/r: spec.parentRefs[0]: no listener of Gateway default/gw allows HTTPRoutes from namespace team\n"+
		"route.yaml: HTTPRoute team/r: spec.rules[0].backendRefs[0].name: Service team/web not found", err.Error())

	base := replaceOnce(t, routeBase, "port: 80}]\n---", "port: 80, allowedRoutes: {namespaces: {from: All}}}]\n---")
	r = replaceOnce(t, r, "  - backendRefs: [{name: web, port: 80}]", "  - backendRefs: []")
	s, err := loadAndCompile(map[string]string{"base.yaml": base, "route.yaml": r})
	require.NoError(t, err)
	require.Len(t, s.Gateways[0].Rules, 1)
	assert.Empty(t, s.Gateways[0].Rules[0].Backends)
}

func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	require.Equal(t, 1, strings.Count(s, old), "%q must occur once in %q", old, s)
	return strings.Replace(s, old, new, 1)
}
