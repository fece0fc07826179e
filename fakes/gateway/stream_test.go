package gateway_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/gatecheck/gatecheck/fakes/gateway"
	"github.com/gatecheck/gatecheck/internal/extproc"
	"github.com/gatecheck/gatecheck/manifests"
)

// heldStream is an upstream that writes its first event, then waits for the
// test to release it before writing the rest.
func heldStream(t *testing.T, contentType string, events ...string) (addr string, release chan struct{}) {
	t.Helper()
	release = make(chan struct{})
	addr = startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(http.StatusOK)
		for i, ev := range events {
			if i == 1 {
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
			}
			fmt.Fprint(w, ev)
			w.(http.Flusher).Flush()
		}
	})
	return addr, release
}

// expectStreamed reads url and proves the first event reached the client
// before the upstream was released to write the rest.
func expectStreamed(t *testing.T, url string, release chan struct{}, wantFirst, wantAll, wantType string) {
	t.Helper()
	type got struct {
		s   string
		err error
	}
	first, all := make(chan got, 1), make(chan got, 1)
	go func() {
		resp, err := client.Get(url)
		if err != nil {
			first <- got{err: err}
			return
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != wantType {
			first <- got{err: fmt.Errorf("status %d content-type %q", resp.StatusCode, ct)}
			return
		}
		var buf []byte
		chunk := make([]byte, 1024)
		for !bytes.HasPrefix(buf, []byte(wantFirst)) {
			n, err := resp.Body.Read(chunk)
			buf = append(buf, chunk[:n]...)
			if err != nil {
				first <- got{s: string(buf), err: err}
				return
			}
			if len(buf) >= len(wantFirst) && !bytes.HasPrefix(buf, []byte(wantFirst)) {
				first <- got{err: fmt.Errorf("first bytes %q, want %q", buf, wantFirst)}
				return
			}
		}
		first <- got{s: string(buf)}
		rest, err := io.ReadAll(resp.Body)
		all <- got{s: string(buf) + string(rest), err: err}
	}()
	select {
	case g := <-first:
		if g.err != nil {
			close(release)
			t.Fatalf("reading the first event: %v (read %q)", g.err, g.s)
		}
	case <-time.After(5 * time.Second):
		close(release)
		t.Fatal("the first event did not reach the client while the upstream held the rest: the gateway buffers")
	}
	close(release)
	select {
	case g := <-all:
		if g.err != nil || g.s != wantAll {
			t.Fatalf("whole body %q (err %v), want %q", g.s, g.err, wantAll)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the rest of the stream did not arrive")
	}
}

func upperChunks() *ext {
	return &ext{responseBody: func(chunk []byte, eos bool) *extprocv3.ProcessingResponse {
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{
			ResponseBody: &extprocv3.BodyResponse{Response: &extprocv3.CommonResponse{
				BodyMutation: extproc.ReplaceBody(bytes.ToUpper(chunk))}}}}
	}}
}

func TestStreamingIsNotBuffered(t *testing.T) {
	t.Parallel()
	sse := []string{"data: one\n\n", "data: two\n\n", "data: [DONE]\n\n"}
	ndjson := []string{`{"n":1}` + "\n", `{"n":2,"done":true}` + "\n"}
	tests := []struct {
		name      string
		ctype     string
		events    []string
		picker    bool
		extension bool
		wantFirst string
		wantAll   string
	}{
		{"service SSE", "text/event-stream", sse, false, false, sse[0], strings.Join(sse, "")},
		{"service NDJSON", "application/x-ndjson", ndjson, false, false, ndjson[0], strings.Join(ndjson, "")},
		{"picker full duplex SSE", "text/event-stream", sse, true, false, sse[0], strings.Join(sse, "")},
		{"picker full duplex NDJSON", "application/x-ndjson", ndjson, true, false, ndjson[0], strings.Join(ndjson, "")},
		{"extension streamed redacts SSE", "text/event-stream", sse, false, true, "DATA: ONE\n\n", strings.ToUpper(strings.Join(sse, ""))},
		{"picker then extension SSE", "text/event-stream", sse, true, true, "DATA: ONE\n\n", strings.ToUpper(strings.Join(sse, ""))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up, release := heldStream(t, tc.ctype, tc.events...)
			res := newResolver().service("up", up)
			backend := svc("up", 1)
			var pools []*manifests.Pool
			if tc.picker {
				pk := &picker{dest: up, viaMetadata: true}
				res.pool("p", up).service("epp", pk.start(t))
				backend = poolBackend("p")
				pools = append(pools, pool("p", "epp", manifests.FailClose))
			}
			var exts []*manifests.Extension
			if tc.extension {
				res.service("apigee", upperChunks().start(t))
				exts = append(exts, extension("apigee", false, 0))
			}
			snap := topology([]*manifests.RouteRule{prefixRule("/", backend)}, exts, pools...)
			_, url := startGateway(t, snap, res, gateway.Options{})
			expectStreamed(t, url+"/v1/chat/completions", release, tc.wantFirst, tc.wantAll, tc.ctype)
		})
	}
}

// An upstream that breaks mid-stream must not look like a complete answer.
func TestUpstreamFailureMidStreamCutsTheConnection(t *testing.T) {
	t.Parallel()
	up := startHandler(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	})
	res := newResolver().service("up", up)
	_, url := startGateway(t, topology([]*manifests.RouteRule{prefixRule("/", svc("up", 1))}, nil), res, gateway.Options{})
	resp, err := client.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, err := readAll(resp)
	if err == nil {
		t.Fatalf("read %q and a clean end; want an error", body)
	}
	if string(body) != "data: one\n\n" {
		t.Errorf("before the cut: %q", body)
	}
}
