package httpserver

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

func TestRunServesUntilCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	wrapped := false
	errc := make(chan error, 1)
	go func() {
		errc <- Run(ctx, "127.0.0.1:0", &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "ok")
		})}, func(l net.Listener) net.Listener { wrapped = true; return l }, func(a string) { addrc <- a })
	}()
	addr := <-addrc
	if !wrapped {
		t.Error("the listener was not wrapped")
	}
	resp, err := http.Get("http://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "ok" {
		t.Errorf("body %q", b)
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("Run after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestRunListenError(t *testing.T) {
	t.Parallel()
	if err := Run(context.Background(), "256.0.0.1:0", &http.Server{}, nil, nil); err == nil {
		t.Error("listening on a bad address succeeded")
	}
}
