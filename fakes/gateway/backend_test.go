package gateway_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/fakes/gateway"
	"github.com/gatecheck/gatecheck/manifests"
)

func TestWeightedSplit(t *testing.T) {
	t.Parallel()
	res := newResolver().service("a", startEcho(t, "a")).service("b", startEcho(t, "b"))
	snap := topology([]*manifests.RouteRule{prefixRule("/", svc("a", 70), svc("b", 30), svc("never", 0))}, nil)
	_, url := startGateway(t, snap, res, gateway.Options{Seed: 42})

	const n = 1000
	counts := map[string]int{}
	for range n {
		r := do(t, "GET", url+"/", nil, "")
		if r.status != http.StatusOK {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		counts[r.header.Get("X-Backend")]++
	}
	// 70/30 within ±5 points.
	if a := counts["a"]; a < 650 || a > 750 {
		t.Errorf("a answered %d of %d, want 700±50 (counts %v)", a, n, counts)
	}
	if counts["a"]+counts["b"] != n {
		t.Errorf("counts %v: a zero-weight backend was chosen", counts)
	}
}

func TestAllWeightsZeroIs500(t *testing.T) {
	t.Parallel()
	res := newResolver().service("a", startEcho(t, "a"))
	_, url := startGateway(t, topology([]*manifests.RouteRule{prefixRule("/", svc("a", 0))}, nil), res, gateway.Options{})
	r := do(t, "GET", url+"/", nil, "")
	if r.status != http.StatusInternalServerError || errorReason(t, r) != "NoValidBackend" {
		t.Fatalf("status %d body %s", r.status, r.body)
	}
}

func TestServiceRoundRobinSkipsRefusedAddress(t *testing.T) {
	t.Parallel()
	dead := refusedAddr(t)
	res := newResolver().service("a", dead, startEcho(t, "a1"), startEcho(t, "a2"))
	_, url := startGateway(t, topology([]*manifests.RouteRule{prefixRule("/", svc("a", 1))}, nil), res, gateway.Options{})
	seen := map[string]int{}
	for range 6 {
		r := do(t, "POST", url+"/", nil, `{"x":1}`)
		if r.status != http.StatusOK {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		if e := r.echo(t); e.Body != `{"x":1}` {
			t.Fatalf("retried request lost its body: %q", e.Body)
		}
		seen[r.header.Get("X-Backend")]++
	}
	if seen["a1"] == 0 || seen["a2"] == 0 {
		t.Errorf("round robin did not reach both live addresses: %v", seen)
	}
}

func TestUnreachableService(t *testing.T) {
	t.Parallel()
	res := newResolver().service("dead", refusedAddr(t), refusedAddr(t)).service("empty")
	rules := []*manifests.RouteRule{
		prefixRule("/dead", svc("dead", 1)),
		prefixRule("/empty", svc("empty", 1)),
		prefixRule("/unknown", svc("unknown", 1)),
	}
	_, url := startGateway(t, topology(rules, nil), res, gateway.Options{})
	for path, reason := range map[string]string{
		"/dead":    "UpstreamConnectFailure",
		"/empty":   "NoHealthyUpstream",
		"/unknown": "NoHealthyUpstream",
	} {
		r := do(t, "GET", url+path, nil, "")
		if r.status != http.StatusServiceUnavailable {
			t.Errorf("%s: status %d, want 503", path, r.status)
			continue
		}
		if got := errorReason(t, r); got != reason {
			t.Errorf("%s: reason %q, want %q", path, got, reason)
		}
	}
}

func TestRequestTimeoutIs504(t *testing.T) {
	t.Parallel()
	slow := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers on its own
	})
	res := newResolver().service("slow", slow)
	rule := prefixRule("/", svc("slow", 1))
	rule.Timeout = 200 * time.Millisecond
	_, url := startGateway(t, topology([]*manifests.RouteRule{rule}, nil), res, gateway.Options{})
	start := time.Now()
	r := do(t, "GET", url+"/", nil, "")
	if r.status != http.StatusGatewayTimeout || errorReason(t, r) != "RequestTimeout" {
		t.Fatalf("status %d body %s", r.status, r.body)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestSwapReplacesRoutes(t *testing.T) {
	t.Parallel()
	res := newResolver().service("old", startEcho(t, "old")).service("new", startEcho(t, "new"))
	g, url := startGateway(t, topology([]*manifests.RouteRule{prefixRule("/", svc("old", 1))}, nil), res, gateway.Options{})
	if got := do(t, "GET", url+"/x", nil, "").header.Get("X-Backend"); got != "old" {
		t.Fatalf("before swap: %q", got)
	}
	g.Swap(topology([]*manifests.RouteRule{prefixRule("/x", svc("new", 1))}, nil))
	if got := do(t, "GET", url+"/x", nil, "").header.Get("X-Backend"); got != "new" {
		t.Fatalf("after swap: %q", got)
	}
	if r := do(t, "GET", url+"/y", nil, ""); r.status != http.StatusNotFound {
		t.Fatalf("old rule survived the swap: %d", r.status)
	}
	// Requests racing with swaps always see one whole configuration.
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20 {
				if (i+j)%2 == 0 {
					g.Swap(topology([]*manifests.RouteRule{prefixRule("/", svc("old", 1))}, nil))
				} else {
					g.Swap(topology([]*manifests.RouteRule{prefixRule("/", svc("new", 1))}, nil))
				}
			}
		}()
	}
	for range 20 {
		if r := do(t, "GET", url+"/x", nil, ""); r.status != http.StatusOK {
			t.Errorf("during swaps: %d", r.status)
		}
	}
	wg.Wait()
}

func TestForwardedHeadersAndRouteModifiers(t *testing.T) {
	t.Parallel()
	res := newResolver().service("a", startEcho(t, "a"))
	rule := prefixRule("/", svc("a", 1))
	rule.SetRequestHeaders = map[string]string{"X-Set": "set"}
	rule.AddRequestHeaders = map[string]string{"X-Add": "added"}
	rule.RemoveRequestHeaders = []string{"X-Remove"}
	_, url := startGateway(t, topology([]*manifests.RouteRule{rule}, nil), res, gateway.Options{})
	r := do(t, "GET", url+"/p?q=1", map[string]string{
		"Host": "models.example.com", "X-Set": "client", "X-Add": "client", "X-Remove": "x",
		"Connection": "X-Hop", "X-Hop": "1", "X-Forwarded-For": "10.0.0.1",
	}, "")
	e := r.echo(t)
	if e.URI != "/p?q=1" || e.Host != "models.example.com" {
		t.Errorf("uri %q host %q", e.URI, e.Host)
	}
	h := e.Header
	if h.Get("X-Set") != "set" || strings.Join(h.Values("X-Add"), ",") != "client,added" || h.Get("X-Remove") != "" {
		t.Errorf("route modifiers: %v", h)
	}
	if h.Get("X-Hop") != "" {
		t.Errorf("hop-by-hop header named in Connection was forwarded")
	}
	if got := h.Get("X-Forwarded-For"); got != "10.0.0.1, 127.0.0.1" {
		t.Errorf("x-forwarded-for %q", got)
	}
	if h.Get("X-Forwarded-Proto") != "http" || h.Get("X-Request-Id") == "" {
		t.Errorf("forwarded proto / request id missing: %v", h)
	}
	if h.Get("User-Agent") != "Go-http-client/1.1" {
		t.Errorf("client user agent not kept: %q", h.Get("User-Agent"))
	}
}

func TestRequestBodyTooLarge(t *testing.T) {
	t.Parallel()
	res := newResolver().service("a", startEcho(t, "a"))
	_, url := startGateway(t, topology([]*manifests.RouteRule{prefixRule("/", svc("a", 1))}, nil), res, gateway.Options{})
	r := do(t, "POST", url+"/", nil, strings.Repeat("x", 32<<20+1))
	if r.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d", r.status)
	}
}

func TestLogsRedactSecrets(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	res := newResolver().service("a", startEcho(t, "a"))
	_, url := startGateway(t, topology([]*manifests.RouteRule{prefixRule("/", svc("a", 1))}, nil), res, gateway.Options{Logger: log})
	r := do(t, "GET", url+"/v1?apikey=sekret-q&model=m", map[string]string{
		"X-Api-Key": "sekret-h", "Authorization": "Bearer sekret-a",
	}, "")
	if r.status != http.StatusOK {
		t.Fatalf("status %d", r.status)
	}
	logs := buf.String()
	if strings.Contains(logs, "sekret") {
		t.Errorf("a secret reached the logs:\n%s", logs)
	}
	if !strings.Contains(logs, "[REDACTED]") || !strings.Contains(logs, "model=m") {
		t.Errorf("logs lack the redacted request:\n%s", logs)
	}
	for _, line := range bytes.Split(bytes.TrimSpace([]byte(logs)), []byte("\n")) {
		if !json.Valid(line) {
			t.Errorf("not a structured log line: %s", line)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
