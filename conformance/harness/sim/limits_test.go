package sim

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGatewayLimitsOnTheWire: the simulation serves its Gateways with the
// gateway's own server and listener, so a Gateway's annotated limits and the
// request smuggling checks hold before net/http parses a request.
func TestGatewayLimitsOnTheWire(t *testing.T) {
	t.Parallel()
	env := start(t, topology(t, replace("gateway.yaml", "  name: inference-gateway\n",
		"  name: inference-gateway\n  annotations:\n    gatecheck.dev/max-url-length: \"100\"\n")))
	addr := strings.TrimPrefix(env.GatewayURL(), "http://")
	for _, tt := range []struct {
		name, raw string
		status    int
	}{
		{"CL.TE", "POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"URL over the annotated limit", "GET /v1/" + strings.Repeat("a", 100) + " HTTP/1.1\r\nHost: a\r\n\r\n", 414},
	} {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = io.WriteString(c, tt.raw)
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		require.NoError(t, err, tt.name)
		body, _ := io.ReadAll(resp.Body)
		assert.Equal(t, tt.status, resp.StatusCode, "%s: %s", tt.name, body)
		assert.True(t, resp.Close, "%s: Connection: close", tt.name)
		var e struct {
			Error struct{ Status int } `json:"error"`
		}
		require.NoError(t, json.Unmarshal(body, &e), "%s: %s", tt.name, body)
		assert.Equal(t, tt.status, e.Error.Status, "%s: the gateway's JSON error", tt.name)
		_ = c.Close()
	}
}
