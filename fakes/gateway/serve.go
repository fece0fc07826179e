package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/gatecheck/gatecheck/internal/extproc"
	"github.com/gatecheck/gatecheck/manifests"
)

// request is one request on its way through the gateway.
type request struct {
	g     *Gateway
	in    *http.Request
	cw    *clientWriter
	log   *slog.Logger
	start time.Time // wall clock, for timeouts
	cfg   *config   // the one configuration this request uses throughout
	m     *message

	exts   []*exchange // the extensions the request went through, in order
	picker *exchange
	all    []*exchange // every stream opened, closed when the request ends

	rule     *manifests.RouteRule
	backend  string
	endpoint string
}

// serve is the top of the request path: everything below it reports failures
// as errors that become answers in one place (errorAnswer); a panic is
// recovered here, logged and answered 500 when the headers have not gone out.
func (g *Gateway) serve(ref manifests.Ref, w http.ResponseWriter, r *http.Request) {
	rq := &request{
		g: g, in: r, start: time.Now(),
		cw:  &clientWriter{w: w, rc: http.NewResponseController(w)},
		log: g.log.With("gateway", ref.String()),
	}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v) // a deliberate abort: net/http cuts the connection
			}
			rq.log.Error("gateway: panic while serving a request", "panic", v, "stack", string(debug.Stack()))
			if !rq.cw.committed {
				status, body := errorAnswer(nil)
				rq.cw.commit(jsonAnswer(status, body))
				_ = rq.cw.write(body)
			}
		}
	}()
	defer rq.closeAll()
	rq.serve(ref)
	rq.logDone()
}

func (rq *request) closeAll() {
	for _, x := range rq.all {
		x.close()
	}
}

func (rq *request) serve(ref manifests.Ref) {
	g, ctx := rq.g, rq.in.Context()
	rq.cfg = g.cfg.Load()
	lim := rq.cfg.limitsOf(ref)
	if f := g.wireFault(rq.in); f != faultNone {
		rq.refuse(f, lim)
		return
	}
	// Size limits come first, as they do in Envoy's codec: no processor
	// sees a request that breaks them.
	if f := checkLimits(rq.in, lim); f != faultNone {
		rq.respondError(ctx, f.err(lim), nil)
		return
	}
	gw := rq.cfg.gateways[ref]
	if gw == nil {
		rq.respondError(ctx, newHTTPError(http.StatusNotFound, "GatewayNotFound",
			"gateway "+ref.String()+" is not configured", nil), nil)
		return
	}
	m, err := newMessage(rq.in, lim.MaxRequestBodyBytes)
	if err != nil {
		rq.respondError(ctx, err, nil)
		return
	}
	rq.m = m
	rq.log = rq.log.With("request_id", m.header.Get("X-Request-Id"))
	if rq.log.Enabled(ctx, slog.LevelDebug) {
		rq.log.Debug("gateway: request", "at", g.clock.Now(), "method", m.method, "host", m.host,
			"path", redactURI(m.path), "headers", redactHeaders(m.header), "body_bytes", len(m.body))
	}

	// Extensions run before routing, like Envoy's ext_proc filters before its
	// router: they see every request, including those no route matches, and
	// their mutations decide the route.
	for _, ext := range gw.Extensions {
		chain := rq.extChain()
		x, err := g.start(ctx, g.extensionProcessor(ext), rq.log)
		if err != nil {
			rq.respondError(ctx, err, chain)
			return
		}
		rq.all = append(rq.all, x)
		ir, err := x.request(ctx, m)
		if err != nil {
			rq.respondError(ctx, err, chain)
			return
		}
		rq.exts = append(rq.exts, x)
		if ir != nil {
			rq.respondImmediate(ctx, ir, chain)
			return
		}
	}

	u, err := m.url()
	if err != nil {
		rq.respondError(ctx, err, rq.extChain())
		return
	}
	rule := route(gw, m, u)
	if rule == nil {
		rq.respondError(ctx, newHTTPError(http.StatusNotFound, "NoRoute",
			fmt.Sprintf("no route for %s %s", m.method, u.EscapedPath()), nil), rq.extChain())
		return
	}
	rq.rule = rule
	rq.log.Debug("gateway: route matched", "route", rule.Route.String(), "rule", rule.RuleIndex, "match", rule.MatchIndex)
	if rule.Timeout > 0 {
		// timeouts.request bounds the whole request, from its arrival.
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, rq.start.Add(rule.Timeout))
		defer cancel()
	}
	rq.forward(ctx, rule)
}

// extChain is the extensions in response order: last first.
func (rq *request) extChain() []*exchange {
	out := make([]*exchange, 0, len(rq.exts))
	for i := len(rq.exts) - 1; i >= 0; i-- {
		out = append(out, rq.exts[i])
	}
	return out
}

// forward sends the request to one of the rule's backends and streams the
// answer back.
func (rq *request) forward(ctx context.Context, rule *manifests.RouteRule) {
	g, base := rq.g, rq.in.Context()
	be := g.pickBackend(rule.Backends)
	if be == nil {
		rq.respondError(base, newHTTPError(http.StatusInternalServerError, "NoValidBackend",
			"the route has no backend with a non-zero weight", nil), rq.extChain())
		return
	}
	rq.backend = string(be.Kind) + " " + be.Ref.String()
	var (
		eps       []string
		transport = g.transport
		stages    []*exchange
		isPool    bool
	)
	switch be.Kind {
	case manifests.BackendService:
		addrs, err := g.serviceAddrs(be.Ref, be.Port)
		if err != nil {
			rq.respondError(base, newHTTPError(http.StatusServiceUnavailable, "NoHealthyUpstream",
				"no healthy upstream for "+rq.backend, err), rq.extChain())
			return
		}
		eps, stages = addrs, rq.extChain()
	case manifests.BackendInferencePool:
		pool := rq.cfg.snap.Pools[be.Ref]
		if pool == nil {
			rq.respondError(base, newHTTPError(http.StatusInternalServerError, "NoValidBackend",
				"InferencePool "+be.Ref.String()+" is not configured", nil), rq.extChain())
			return
		}
		isPool = true
		if pool.AppProtocol == "kubernetes.io/h2c" {
			transport = g.h2c
		}
		var err error
		eps, err = rq.poolEndpoints(ctx, pool)
		stages = append([]*exchange{}, rq.extChain()...)
		if rq.picker != nil {
			stages = append([]*exchange{rq.picker}, stages...)
		}
		if err != nil {
			var ia *immediateAnswer
			if errors.As(err, &ia) {
				rq.respondImmediate(base, ia.ir, stages[1:])
				return
			}
			rq.respondError(base, err, rq.extChain())
			return
		}
	default:
		rq.respondError(base, newHTTPError(http.StatusInternalServerError, "NoValidBackend",
			"unsupported backend kind "+string(be.Kind), nil), rq.extChain())
		return
	}

	applyRouteHeaders(rq.m, rule)
	resp, ep, err := rq.dialWalk(ctx, transport, eps)
	if err != nil {
		rq.respondError(base, err, stages)
		return
	}
	rq.endpoint = ep
	removeHopHeaders(resp.Header)
	if isPool {
		resp.Header.Set(servedHeader, ep)
		if rq.picker != nil {
			rq.picker.served = ep
		}
	}
	a := &answer{
		status:  resp.StatusCode,
		header:  resp.Header,
		noBody:  rq.m.method == http.MethodHead || resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified || resp.ContentLength == 0,
		trailer: func() http.Header { return resp.Trailer },
	}
	rq.respond(ctx, a, &readerSource{r: resp.Body}, func() { _ = resp.Body.Close() }, stages)
}

// poolEndpoints asks the pool's picker for endpoints, or picks at random when
// the pool has none or the picker fails open. An immediate response from the
// picker comes back as an *immediateAnswer error.
func (rq *request) poolEndpoints(ctx context.Context, pool *manifests.Pool) ([]string, error) {
	g := rq.g
	random := func() ([]string, error) {
		eps, err := g.res.PoolEndpoints(pool.Ref)
		if err == nil && len(eps) == 0 {
			err = errors.New("no ready endpoints")
		}
		if err != nil {
			return nil, newHTTPError(http.StatusServiceUnavailable, "NoHealthyUpstream",
				"InferencePool "+pool.Ref.String()+" has no ready endpoint", err)
		}
		return g.shuffled(eps), nil
	}
	if pool.Picker == nil {
		return random()
	}
	// Only the picker may name the destination.
	rq.m.header.Del(destinationHeader)
	p := g.pickerProcessor(pool)
	x, err := g.start(ctx, p, rq.log)
	if err != nil {
		return nil, err
	}
	rq.all = append(rq.all, x)
	rq.picker = x
	ir, err := x.request(ctx, rq.m)
	if err != nil {
		return nil, err
	}
	if ir != nil {
		return nil, &immediateAnswer{p: p, ir: ir}
	}
	if !x.dead {
		if eps := destinations(x, rq.m); len(eps) > 0 {
			rq.log.Debug("gateway: picker chose", "endpoints", eps)
			return eps, nil
		}
	}
	if p.failOpen {
		rq.log.Debug("gateway: picker gave no endpoint; failing open to a random one")
		return random()
	}
	return nil, newHTTPError(http.StatusServiceUnavailable, "PickerUnavailable",
		p.name+" named no endpoint", nil)
}

// destinations reads the picker's choice: dynamic metadata envoy.lb /
// x-gateway-destination-endpoint first, the request header as a fallback;
// a comma-separated list of ip:port, tried in order.
//
// The x-gateway-destination-endpoint header stays on the request as Envoy
// leaves it: it is harmless upstream, and a conformance echo server may show it.
func destinations(x *exchange, m *message) []string {
	v, ok := extproc.MetadataString(x.meta, "envoy.lb", destinationHeader)
	if !ok || strings.TrimSpace(v) == "" {
		v = m.header.Get(destinationHeader)
	}
	var out []string
	for _, ep := range strings.Split(v, ",") {
		ep = strings.TrimSpace(ep)
		host, port, err := net.SplitHostPort(ep)
		if err != nil || host == "" {
			continue
		}
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			continue
		}
		out = append(out, ep)
	}
	return out
}

// applyRouteHeaders applies the rule's RequestHeaderModifier just before the
// request goes upstream, after every processor, as Envoy's router applies
// route-level header changes: remove, then set, then add.
func applyRouteHeaders(m *message, r *manifests.RouteRule) {
	for _, name := range r.RemoveRequestHeaders {
		m.header.Del(name)
	}
	for k, v := range r.SetRequestHeaders {
		m.header.Set(k, v)
	}
	for k, v := range r.AddRequestHeaders {
		m.header.Add(k, v)
	}
}

// dialWalk sends the request to the endpoints in order, moving on only when
// one refuses the connection, that is before any byte of the request left.
func (rq *request) dialWalk(ctx context.Context, rt http.RoundTripper, eps []string) (*http.Response, string, error) {
	u, err := rq.m.url() // a picker may have changed :path
	if err != nil {
		return nil, "", err
	}
	var lastErr error
	for _, ep := range eps {
		resp, err := rq.roundTrip(ctx, rt, ep, u)
		if err == nil {
			return resp, ep, nil
		}
		if ctx.Err() != nil {
			return nil, ep, ctx.Err()
		}
		if !isDialError(err) {
			return nil, ep, newHTTPError(http.StatusBadGateway, "UpstreamError", "upstream "+ep+" failed", err)
		}
		rq.log.Debug("gateway: endpoint refused the connection; trying the next", "endpoint", ep, "err", err)
		lastErr = err
	}
	return nil, "", newHTTPError(http.StatusServiceUnavailable, "UpstreamConnectFailure",
		"upstream connect error: no endpoint accepted the connection", lastErr)
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func (rq *request) roundTrip(ctx context.Context, rt http.RoundTripper, ep string, u *url.URL) (*http.Response, error) {
	m := rq.m
	out := &http.Request{
		Method:     m.method,
		URL:        &url.URL{Scheme: "http", Host: ep, Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery},
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     m.header.Clone(),
		Host:       m.host, // Envoy keeps the client's authority
	}
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header.Set("User-Agent", "") // no Go default, as httputil does
	}
	if body := m.body; len(body) > 0 {
		out.ContentLength = int64(len(body))
		out.Body = io.NopCloser(bytes.NewReader(body))
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	rq.log.Debug("gateway: upstream request", "endpoint", ep, "backend", rq.backend)
	return rt.RoundTrip(out.WithContext(ctx))
}

func (rq *request) logDone() {
	if !rq.log.Enabled(rq.in.Context(), slog.LevelDebug) {
		return
	}
	route := ""
	if rq.rule != nil {
		route = fmt.Sprintf("%s#%d.%d", rq.rule.Route, rq.rule.RuleIndex, rq.rule.MatchIndex)
	}
	rq.log.Debug("gateway: done", "status", rq.cw.status, "bytes", rq.cw.bytes,
		"duration", time.Since(rq.start), "route", route, "backend", rq.backend, "endpoint", rq.endpoint)
}
