package gateway

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/gatecheck/gatecheck/internal/clock"
	"github.com/gatecheck/gatecheck/manifests"
)

// Resolver says where Services and pool endpoints are. The simulation fills
// it with loopback ports; in a cluster it is DNS and pod IPs.
type Resolver interface {
	// ServiceAddrs returns the "host:port" addresses behind port of a Service.
	ServiceAddrs(svc manifests.Ref, port int32) ([]string, error)
	// PoolEndpoints returns the "ip:port" endpoints of an InferencePool that
	// are ready. The gateway uses them for pools without an endpoint picker and
	// when a picker fails open.
	PoolEndpoints(pool manifests.Ref) ([]string, error)
}

// Defaults for Options and for extensions.
const (
	// DefaultPickerTimeout bounds each answer an endpoint picker owes when
	// Options.PickerTimeout is zero. GIE's reference Envoy configurations give
	// the picker a generous message timeout, since it holds its first answer
	// until it has the whole request body and may queue the request before
	// scheduling it; ten seconds is generous for a picker on loopback and still
	// lets a test or a scenario see a wedged picker fail within seconds.
	DefaultPickerTimeout = 10 * time.Second
	// DefaultExtensionTimeout is an extension's message timeout when
	// manifests.Extension.Timeout is zero: the APIMExtensionPolicy default,
	// 1000ms.
	DefaultExtensionTimeout = time.Second
)

// Options configure a Gateway. Every field is optional except Resolver.
type Options struct {
	// Resolver says where Services and pool endpoints are. Required.
	Resolver Resolver
	// Logger receives structured debug logs of every request, with API keys
	// and credentials redacted. Nil discards them.
	Logger *slog.Logger
	// Clock stamps requests. Nil means clock.Real{}. Timeouts always run on
	// the wall clock: advancing a simulated clock does not expire requests.
	Clock clock.Clock
	// Transport sends requests upstream, for Services and for pools of either
	// appProtocol. Nil means a tuned http.Transport (keep-alives, no proxy
	// from the environment, no transparent compression) and, for pools with
	// appProtocol kubernetes.io/h2c, a copy of it speaking HTTP/2 in clear text.
	Transport http.RoundTripper
	// DialGRPC makes the client connection to an ext_proc server (an extension
	// or an endpoint picker). Connections are made once per address and cached
	// until Close. Nil means grpc.NewClient without transport security, with a
	// short reconnect backoff so a restarted processor is found again quickly.
	DialGRPC func(ctx context.Context, addr string) (*grpc.ClientConn, error)
	// PickerTimeout bounds each answer an endpoint picker owes (Envoy's
	// message_timeout). Zero means DefaultPickerTimeout.
	PickerTimeout time.Duration
	// Seed seeds the random choices (weighted backends, pool endpoints when
	// there is no picker or it fails open), so a run can be reproduced.
	Seed int64
}

// Gateway is the Gateway API data plane: it serves the Gateway objects of a
// Snapshot, one http.Handler each. It is safe for concurrent use; Swap
// replaces the configuration while requests are in flight.
type Gateway struct {
	cfg           atomic.Pointer[config]
	res           Resolver
	log           *slog.Logger
	clock         clock.Clock
	transport     http.RoundTripper
	h2c           http.RoundTripper
	ownTransports []*http.Transport
	dial          func(ctx context.Context, addr string) (*grpc.ClientConn, error)
	pickerTimeout time.Duration
	// wireSecret authenticates the stand-in requests of the wire check
	// (limits.go, wire.go).
	wireSecret string

	rngMu sync.Mutex
	rng   *rand.Rand

	rrMu sync.Mutex
	rr   map[string]*atomic.Uint64

	connMu sync.Mutex
	conns  map[string]*grpc.ClientConn
	closed bool
}

// config is one Snapshot with its Gateways indexed.
type config struct {
	snap     *manifests.Snapshot
	gateways map[manifests.Ref]*manifests.Gateway
	// limits of each Gateway, defaults filled in (a hand-built Snapshot may
	// leave them zero).
	limits map[manifests.Ref]manifests.Limits
}

func newConfig(snap *manifests.Snapshot) *config {
	if snap == nil {
		snap = &manifests.Snapshot{}
	}
	c := &config{
		snap:     snap,
		gateways: make(map[manifests.Ref]*manifests.Gateway, len(snap.Gateways)),
		limits:   make(map[manifests.Ref]manifests.Limits, len(snap.Gateways)),
	}
	for _, gw := range snap.Gateways {
		if _, dup := c.gateways[gw.Ref]; !dup {
			c.gateways[gw.Ref] = gw
			c.limits[gw.Ref] = gw.Limits.OrDefaults()
		}
	}
	return c
}

// New returns a Gateway serving snap.
func New(snap *manifests.Snapshot, opts Options) (*Gateway, error) {
	if snap == nil {
		return nil, errors.New("gateway: nil snapshot")
	}
	if opts.Resolver == nil {
		return nil, errors.New("gateway: Options.Resolver is required")
	}
	g := &Gateway{
		res:           opts.Resolver,
		log:           opts.Logger,
		clock:         opts.Clock,
		transport:     opts.Transport,
		h2c:           opts.Transport,
		dial:          opts.DialGRPC,
		pickerTimeout: opts.PickerTimeout,
		rng:           rand.New(rand.NewPCG(uint64(opts.Seed), uint64(opts.Seed)^0x9e3779b97f4a7c15)),
		rr:            map[string]*atomic.Uint64{},
		conns:         map[string]*grpc.ClientConn{},
		wireSecret:    crand.Text(),
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.clock == nil {
		g.clock = clock.Real{}
	}
	if g.transport == nil {
		t := defaultTransport()
		h2c := t.Clone()
		h2c.Protocols = new(http.Protocols)
		h2c.Protocols.SetUnencryptedHTTP2(true)
		g.transport, g.h2c = t, h2c
		g.ownTransports = []*http.Transport{t, h2c}
	}
	if g.dial == nil {
		g.dial = dialGRPC
	}
	if g.pickerTimeout <= 0 {
		g.pickerTimeout = DefaultPickerTimeout
	}
	g.cfg.Store(newConfig(snap))
	return g, nil
}

func defaultTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil, // never a proxy from the environment: upstreams are local
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   128,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		// A proxy passes encodings through; it must not ask for gzip and
		// decompress behind the client's back.
		DisableCompression: true,
	}
}

// maxProcessorMessage is the largest ext_proc message either way: a buffered
// body at the cap plus headers.
const maxProcessorMessage = maxRequestBody + 1<<20

func dialGRPC(_ context.Context, addr string) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: 2 * time.Second,
		}),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(maxProcessorMessage),
			grpc.MaxCallSendMsgSize(maxProcessorMessage),
		),
	)
}

// Swap replaces the configuration atomically: requests that have started
// finish on the old Snapshot, later ones use the new. A nil snap serves
// nothing (every request is answered 404).
func (g *Gateway) Swap(snap *manifests.Snapshot) {
	g.cfg.Store(newConfig(snap))
}

// Handler returns the data plane of one Gateway object: every route attached
// to any of its listeners, matched against the request's Host as described
// in the package documentation. The Gateway is looked up in the current
// Snapshot on each request, so the handler follows Swap; a Gateway the
// Snapshot does not hold is answered 404.
func (g *Gateway) Handler(gw manifests.Ref) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.serve(gw, w, r)
	})
}

// Close closes the cached gRPC connections and the idle upstream connections
// of the default transport. Requests in flight on a processor fail; the
// Gateway must not be used afterwards.
func (g *Gateway) Close() {
	g.connMu.Lock()
	conns := g.conns
	g.conns, g.closed = map[string]*grpc.ClientConn{}, true
	g.connMu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	for _, t := range g.ownTransports {
		t.CloseIdleConnections()
	}
}

// ResetBackoff makes every cached processor connection that is waiting to
// reconnect try again at once, as after a processor restarts; the next request
// then waits for the connection instead of failing on the old backoff.
func (g *Gateway) ResetBackoff() {
	g.connMu.Lock()
	defer g.connMu.Unlock()
	for _, c := range g.conns {
		c.ResetConnectBackoff()
	}
}

// conn returns the cached client connection to addr, dialling it once.
func (g *Gateway) conn(ctx context.Context, addr string) (*grpc.ClientConn, error) {
	g.connMu.Lock()
	defer g.connMu.Unlock()
	if g.closed {
		return nil, errors.New("gateway closed")
	}
	if c := g.conns[addr]; c != nil {
		return c, nil
	}
	c, err := g.dial(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	g.conns[addr] = c
	return c, nil
}

// pickBackend chooses a backend by weight; nil when every weight is zero,
// which Gateway API answers with 500.
func (g *Gateway) pickBackend(bs []manifests.Backend) *manifests.Backend {
	var total int64
	for _, b := range bs {
		if b.Weight > 0 {
			total += int64(b.Weight)
		}
	}
	if total == 0 {
		return nil
	}
	g.rngMu.Lock()
	n := g.rng.Int64N(total)
	g.rngMu.Unlock()
	for i := range bs {
		w := int64(bs[i].Weight)
		if w <= 0 {
			continue
		}
		if n < w {
			return &bs[i]
		}
		n -= w
	}
	return nil // unreachable
}

// shuffled returns addrs in a random order.
func (g *Gateway) shuffled(addrs []string) []string {
	out := slices.Clone(addrs)
	g.rngMu.Lock()
	g.rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	g.rngMu.Unlock()
	return out
}

// rotated returns addrs starting at the next round-robin position for key.
func (g *Gateway) rotated(key string, addrs []string) []string {
	g.rrMu.Lock()
	c := g.rr[key]
	if c == nil {
		c = new(atomic.Uint64)
		g.rr[key] = c
	}
	g.rrMu.Unlock()
	start := int((c.Add(1) - 1) % uint64(len(addrs)))
	out := make([]string, 0, len(addrs))
	return append(append(out, addrs[start:]...), addrs[:start]...)
}

// serviceAddrs returns a Service port's addresses in round-robin order.
func (g *Gateway) serviceAddrs(svc manifests.Ref, port int32) ([]string, error) {
	addrs, err := g.res.ServiceAddrs(svc, port)
	if err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("service %s port %d has no endpoints", svc, port)
	}
	return g.rotated(fmt.Sprintf("%s:%d", svc, port), addrs), nil
}

func (g *Gateway) extensionProcessor(ext *manifests.Extension) *processor {
	p := &processor{
		name:     "extension " + ext.Name,
		reason:   "ExtensionUnavailable",
		mode:     extensionMode(),
		timeout:  ext.Timeout,
		failOpen: ext.FailOpen,
		// Envoy's failure_mode_allow=false answers 500, or 504 when the
		// message timeout fired.
		closedStatus: func(timedOut bool) int {
			if timedOut {
				return http.StatusGatewayTimeout
			}
			return http.StatusInternalServerError
		},
	}
	if p.timeout <= 0 {
		p.timeout = DefaultExtensionTimeout
	}
	if addrs, err := g.serviceAddrs(ext.Service, ext.Port); err != nil {
		p.resolveErr = err
	} else {
		p.addr = addrs[0]
	}
	return p
}

func (g *Gateway) pickerProcessor(pool *manifests.Pool) *processor {
	pk := pool.Picker
	p := &processor{
		name:     "picker " + pk.Service.String(),
		reason:   "PickerUnavailable",
		mode:     pickerMode(),
		timeout:  g.pickerTimeout,
		failOpen: pk.FailureMode == manifests.FailOpen,
		// GIE's behaviour for an unavailable picker under FailClose is 503
		// Service Unavailable: the pool cannot be served right now, which is
		// what a client should retry on. Envoy's generic ext_proc failure
		// would be 500; the Inference Gateway's conformance and its users
		// expect 503.
		closedStatus: func(bool) int { return http.StatusServiceUnavailable },
	}
	if addrs, err := g.serviceAddrs(pk.Service, pk.Port); err != nil {
		p.resolveErr = err
	} else {
		p.addr = addrs[0]
	}
	return p
}
