package gateway_test

import (
	"net/http"
	"regexp"
	"testing"

	"github.com/gatecheck/gatecheck/fakes/gateway"
	"github.com/gatecheck/gatecheck/manifests"
)

func TestRouteMatching(t *testing.T) {
	t.Parallel()
	names := []string{"exact", "v1", "slash", "regex", "gold", "query", "post", "wild", "apihost", "longwild", "default"}
	res := newResolver()
	for _, n := range names {
		res.service(n, startEcho(t, n))
	}
	rule := func(r manifests.RouteRule, backend string) *manifests.RouteRule {
		r.Route = ref("r-" + backend)
		r.Backends = []manifests.Backend{svc(backend, 1)}
		if r.PathType == "" {
			r.PathType, r.PathValue = manifests.PathPrefix, "/"
		}
		return &r
	}
	// In the order the compiler sorts them: exact, longer prefixes, more
	// header matches, more query matches, method, then the catch-all.
	rules := []*manifests.RouteRule{
		rule(manifests.RouteRule{PathType: manifests.PathExact, PathValue: "/exact"}, "exact"),
		rule(manifests.RouteRule{PathType: manifests.PathPrefix, PathValue: "/slash/"}, "slash"),
		rule(manifests.RouteRule{PathType: manifests.PathPrefix, PathValue: "/v1",
			Headers: []manifests.StringMatch{{Name: "x-tier", Exact: "gold"}}}, "gold"),
		rule(manifests.RouteRule{PathType: manifests.PathPrefix, PathValue: "/v1",
			Query: []manifests.StringMatch{{Name: "debug", Regexp: regexp.MustCompile(`^(1|true)$`)}}}, "query"),
		rule(manifests.RouteRule{PathType: manifests.PathPrefix, PathValue: "/v1", Method: http.MethodPost}, "post"),
		rule(manifests.RouteRule{PathType: manifests.PathPrefix, PathValue: "/v1"}, "v1"),
		rule(manifests.RouteRule{PathType: manifests.PathRegularExpression, PathValue: "/r/[0-9]+",
			PathRegexp: regexp.MustCompile(`^/r/[0-9]+$`)}, "regex"),
		rule(manifests.RouteRule{Hostnames: []string{"*.example.com"}, PathType: manifests.PathPrefix, PathValue: "/h"}, "wild"),
		rule(manifests.RouteRule{Hostnames: []string{"*.api.example.com"}, PathType: manifests.PathPrefix, PathValue: "/h"}, "longwild"),
		rule(manifests.RouteRule{Hostnames: []string{"api.example.com"}, PathType: manifests.PathPrefix, PathValue: "/h"}, "apihost"),
		rule(manifests.RouteRule{}, "default"),
	}
	_, url := startGateway(t, topology(rules, nil), res, gateway.Options{})

	tests := []struct {
		name   string
		method string
		path   string
		header map[string]string
		want   string
	}{
		{"exact", "GET", "/exact", nil, "exact"},
		{"exact is not a prefix", "GET", "/exact/more", nil, "default"},
		{"exact ignores query", "GET", "/exact?x=1", nil, "exact"},
		{"prefix itself", "GET", "/v1", nil, "v1"},
		{"prefix with slash", "GET", "/v1/", nil, "v1"},
		{"prefix segment", "GET", "/v1/chat/completions", nil, "v1"},
		{"prefix is segment-bound", "GET", "/v1x", nil, "default"},
		{"trailing slash prefix without slash", "GET", "/slash", nil, "slash"},
		{"trailing slash prefix below", "GET", "/slash/x", nil, "slash"},
		{"trailing slash prefix not a string prefix", "GET", "/slashes", nil, "default"},
		{"regex", "GET", "/r/123", nil, "regex"},
		{"regex anchored", "GET", "/r/123/x", nil, "default"},
		{"regex no match", "GET", "/r/abc", nil, "default"},
		{"header", "GET", "/v1/x", map[string]string{"X-Tier": "gold"}, "gold"},
		{"header name case-insensitive", "GET", "/v1/x", map[string]string{"x-TIER": "gold"}, "gold"},
		{"header value exact", "GET", "/v1/x", map[string]string{"X-Tier": "Gold"}, "v1"},
		{"query regexp", "GET", "/v1/x?debug=true", nil, "query"},
		{"query first value", "GET", "/v1/x?debug=1&debug=0", nil, "query"},
		{"query no match", "GET", "/v1/x?debug=2", nil, "v1"},
		{"header before query", "GET", "/v1/x?debug=1", map[string]string{"X-Tier": "gold"}, "gold"},
		{"method", "POST", "/v1/x", nil, "post"},
		{"method other", "PUT", "/v1/x", nil, "v1"},
		{"exact hostname beats wildcards listed first", "GET", "/h", map[string]string{"Host": "api.example.com"}, "apihost"},
		{"hostname ignores port and case", "GET", "/h", map[string]string{"Host": "API.example.com:8080"}, "apihost"},
		{"longer wildcard wins", "GET", "/h", map[string]string{"Host": "x.api.example.com"}, "longwild"},
		{"wildcard", "GET", "/h/x", map[string]string{"Host": "foo.example.com"}, "wild"},
		{"wildcard many labels", "GET", "/h", map[string]string{"Host": "a.b.example.com"}, "wild"},
		{"wildcard needs a label", "GET", "/h", map[string]string{"Host": "example.com"}, "default"},
		{"hostnames only for their routes", "GET", "/h", map[string]string{"Host": "other.org"}, "default"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := do(t, tc.method, url+tc.path, tc.header, "")
			if r.status != http.StatusOK {
				t.Fatalf("status %d, body %s", r.status, r.body)
			}
			if got := r.header.Get("X-Backend"); got != tc.want {
				t.Errorf("%s %s answered by %q, want %q", tc.method, tc.path, got, tc.want)
			}
		})
	}
}

func TestNoRouteIs404(t *testing.T) {
	t.Parallel()
	res := newResolver().service("a", startEcho(t, "a"))
	snap := topology([]*manifests.RouteRule{prefixRule("/v1", svc("a", 1))}, nil)
	snap.Gateways[0].Listeners = []manifests.Listener{{Name: "http", Port: 80, Protocol: "HTTP", Hostname: "*.example.com"}}
	_, url := startGateway(t, snap, res, gateway.Options{})

	for _, tc := range []struct {
		name, path, host string
	}{
		{"no path matches", "/v2", "api.example.com"},
		{"listener hostname", "/v1", "other.org"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, "GET", url+tc.path, map[string]string{"Host": tc.host}, "")
			if r.status != http.StatusNotFound {
				t.Fatalf("status %d, want 404", r.status)
			}
			if got := errorReason(t, r); got != "NoRoute" {
				t.Errorf("reason %q", got)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("content-type %q", ct)
			}
		})
	}
	if r := do(t, "GET", url+"/v1", map[string]string{"Host": "api.example.com"}, ""); r.status != http.StatusOK {
		t.Errorf("matching listener: status %d", r.status)
	}
}

func TestUnknownGatewayIs404(t *testing.T) {
	t.Parallel()
	g, err := gateway.New(topology(nil, nil), gateway.Options{Resolver: newResolver()})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	rec := newRecorder()
	g.Handler(ref("nope")).ServeHTTP(rec, mustRequest(t, "GET", "/"))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("status %d", rec.Code)
	}
}
