package gateway_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/gatecheck/gatecheck/fakes/gateway"
	"github.com/gatecheck/gatecheck/internal/extproc"
	"github.com/gatecheck/gatecheck/manifests"
)

// FuzzHandler sends arbitrary methods, targets, headers and bodies through a
// gateway with an extension, Service routes and a picked pool: it must never
// panic and must always answer with a valid HTTP status.
func FuzzHandler(f *testing.F) {
	a := startEcho(f, "a")
	// The extension copies x-in into x-echo and :path from x-path, so
	// arbitrary input reaches the mutation code.
	e := &ext{requestHeaders: func(h map[string][]string) *extprocv3.ProcessingResponse {
		set := map[string]string{}
		if v := h["x-in"]; len(v) > 0 {
			set["x-echo"] = v[0]
		}
		if v := h["x-path"]; len(v) > 0 {
			set[":path"] = v[0]
		}
		if v := h["x-deny"]; len(v) > 0 {
			return extproc.ImmediateResponse(len(v[0])*37, nil, []byte(v[0]))
		}
		return extproc.ContinueRequestHeaders(extproc.SetHeaders(set))
	}}
	pk := &picker{dest: a, viaMetadata: true, outChunk: 7}
	res := newResolver().service("a", a).service("apigee", e.start(f)).service("epp", pk.start(f)).pool("p", a)
	rules := []*manifests.RouteRule{
		{Route: ref("r"), PathType: manifests.PathExact, PathValue: "/exact", Backends: []manifests.Backend{svc("a", 1)}},
		{Route: ref("r"), PathType: manifests.PathPrefix, PathValue: "/pool", Backends: []manifests.Backend{poolBackend("p")}},
		{Route: ref("r"), PathType: manifests.PathPrefix, PathValue: "/v1", Headers: []manifests.StringMatch{{Name: "x-tier", Exact: "gold"}},
			Query: []manifests.StringMatch{{Name: "q", Regexp: regexp.MustCompile(`^a`)}}, Method: "POST",
			Hostnames: []string{"*.example.com"}, Backends: []manifests.Backend{svc("a", 1)}, Timeout: 5 * time.Second},
		{Route: ref("r"), PathType: manifests.PathRegularExpression, PathValue: "/r/.*", PathRegexp: regexp.MustCompile(`^/r/.*$`),
			Backends: []manifests.Backend{svc("a", 1)}},
	}
	snap := topology(rules, []*manifests.Extension{extension("apigee", false, 0)}, pool("p", "epp", manifests.FailClose))
	g, err := gateway.New(snap, gateway.Options{Resolver: res})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(g.Close)
	h := g.Handler(gwRef)

	f.Add("GET", "/exact", "host: a.example.com", []byte(nil))
	f.Add("POST", "/v1/chat?q=abc&apikey=s", "x-tier: gold\nhost: x.example.com\ncontent-type: application/json", []byte(`{"model":"m"}`))
	f.Add("POST", "/pool/v1/completions", "x-in: v", []byte(`{"model":"m","prompt":"hi"}`))
	f.Add("GET", "/nowhere", "x-path: /exact", []byte(nil))
	f.Add("PUT", "/r/x/../y", "x-deny: no", []byte("body"))
	f.Add("BAD METHOD", "//..//%2F?%zz", "x-in: \r\n\ninvalid header: x", []byte{0, 1, 2})
	f.Add("HEAD", "*", "connection: x-in\nx-path: relative", []byte(nil))

	f.Fuzz(func(t *testing.T, method, target, headers string, body []byte) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			u = &url.URL{Path: target}
		}
		r := &http.Request{
			Method: method, URL: u, RequestURI: target, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{}, Host: "gw.example.com", RemoteAddr: "192.0.2.1:1234",
			Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)),
		}
		for _, line := range strings.Split(headers, "\n") {
			k, v, _ := strings.Cut(line, ":")
			if strings.EqualFold(strings.TrimSpace(k), "host") {
				r.Host = strings.TrimSpace(v)
				continue
			}
			r.Header.Add(k, strings.TrimSpace(v))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r.WithContext(ctx))
		if rec.Code < 100 || rec.Code > 599 {
			t.Fatalf("status %d", rec.Code)
		}
	})
}
