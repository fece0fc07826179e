package sim

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGraphQLThroughGateway: the default topology routes /graphql to the
// model servers' Service (not the InferencePool, whose picker needs a
// model), and the sandbox product grants it, so the sandbox key gets data.
func TestGraphQLThroughGateway(t *testing.T) {
	t.Parallel()
	env := start(t, nil)
	const query = `query Models($id: ID!) { model(id: $id) { id adapters { id parent } } server { pod } }`
	body := `{"query":` + jsonString(t, query) + `,"variables":{"id":"qwen2.5-0.5b-instruct"}}`

	client := &http.Client{Transport: withKey{env.APIKey()}}
	resp, err := client.Post(env.GatewayURL()+"/graphql", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var got struct {
		Data struct {
			Model struct {
				ID       string `json:"id"`
				Adapters []struct {
					ID     string `json:"id"`
					Parent string `json:"parent"`
				} `json:"adapters"`
			} `json:"model"`
			Server struct {
				Pod string `json:"pod"`
			} `json:"server"`
		} `json:"data"`
		Errors []any `json:"errors"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
	assert.Empty(t, got.Errors)
	assert.Equal(t, "qwen2.5-0.5b-instruct", got.Data.Model.ID)
	require.Len(t, got.Data.Model.Adapters, 1)
	assert.Equal(t, "support-bot", got.Data.Model.Adapters[0].ID)
	assert.Equal(t, "qwen2.5-0.5b-instruct", got.Data.Model.Adapters[0].Parent)
	assert.Regexp(t, `^vllm-sim-[0-2]$`, got.Data.Server.Pod)
	assert.Equal(t, got.Data.Server.Pod, resp.Header.Get("x-inference-pod"), "the replica that answered")

	// Without a key, Apigee's default security refuses it like any path.
	resp, err = http.Post(env.GatewayURL()+"/graphql", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

func jsonString(t testing.TB, s string) string {
	t.Helper()
	b, err := json.Marshal(s)
	require.NoError(t, err)
	return string(b)
}
