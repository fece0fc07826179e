// Package httpserver runs an http.Server until its context ends, the one way
// every gatecheck process serves HTTP: listen, optionally wrap the listener
// (the gateway's raw-connection checks), say where it listens, serve, and
// shut down gracefully when the context is cancelled.
package httpserver

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// ShutdownGrace bounds the graceful shutdown once the context ends.
const ShutdownGrace = 5 * time.Second

// Run listens on addr, wraps the listener with wrap when it is set, calls
// ready with the address it listens on (when set), and serves srv until ctx
// ends or serving fails. A shutdown after ctx ends is not an error.
func Run(ctx context.Context, addr string, srv *http.Server, wrap func(net.Listener) net.Listener, ready func(addr string)) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if wrap != nil {
		lis = wrap(lis)
	}
	if ready != nil {
		ready(lis.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
