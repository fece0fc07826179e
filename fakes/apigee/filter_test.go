package apigee

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	extprocfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatecheck/gatecheck/fakes/apigee/policy"
	"github.com/gatecheck/gatecheck/internal/apigeeapi"
	"github.com/gatecheck/gatecheck/internal/extproc"
)

// recorder is a response policy that keeps the answer the response flow
// saw (the token count reads it the same way).
type recorder struct {
	mu   sync.Mutex
	body string
}

func (r *recorder) Name() string { return "REC" }
func (r *recorder) Kind() string { return "Recorder" }
func (r *recorder) Apply(_ context.Context, m *policy.Message) (*policy.Fault, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.body = string(m.ResponseBody)
	return nil, nil
}

func (r *recorder) seen() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.body
}

// sanitizeFlow is a flow with no request policies and one
// SanitizeModelResponse of this action, then the recorder.
func sanitizeFlow(t *testing.T, action string) (*Flow, *recorder) {
	t.Helper()
	p, err := policy.Parse([]byte(`<SanitizeModelResponse name="SMR"><ModelArmor><TemplateName>pii-only</TemplateName></ModelArmor><Action>`+action+`</Action></SanitizeModelResponse>`), policy.Env{})
	require.NoError(t, err)
	rec := &recorder{}
	return &Flow{Name: "threat", Response: []policy.Policy{p, rec}}, rec
}

func responseHeadersOf(ct string) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{
		ResponseHeaders: &extprocv3.HttpHeaders{Headers: extproc.HeaderMap(map[string][]string{
			":status": {"200"}, "content-type": {ct}, "content-length": {"999"}})}}}
}

func responseBody(chunk string, eos bool) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{
		ResponseBody: &extprocv3.HttpBody{Body: []byte(chunk), EndOfStream: eos}}}
}

// sseEvents is an OpenAI stream of these deltas, one event each.
func sseEvents(deltas ...string) []string {
	var out []string
	for _, d := range deltas {
		c, _ := json.Marshal(d)
		out = append(out, `data: {"id":"c","choices":[{"index":0,"delta":{"content":`+string(c)+`},"finish_reason":null}]}`+"\n\n")
	}
	out = append(out, `data: {"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n",
		`data: {"id":"c","choices":[],"usage":{"prompt_tokens":2,"completion_tokens":8,"total_tokens":10}}`+"\n\n",
		"data: [DONE]\n\n")
	return out
}

// streamText is the text of an OpenAI stream, and its error event's code.
func streamText(t *testing.T, body string) (string, string) {
	t.Helper()
	var text strings.Builder
	code := ""
	for _, ev := range strings.Split(body, "\n\n") {
		data, ok := strings.CutPrefix(strings.TrimSpace(ev), "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var c struct {
			Choices []struct {
				Delta struct{ Content string } `json:"delta"`
			} `json:"choices"`
			Error struct{ Code string } `json:"error"`
		}
		require.NoError(t, json.Unmarshal([]byte(data), &c), data)
		for _, ch := range c.Choices {
			text.WriteString(ch.Delta.Content)
		}
		if c.Error.Code != "" {
			code = c.Error.Code
		}
	}
	return text.String(), code
}

// bodyOut is what the gateway sends on for a body answer: the replaced
// chunk, or the original when the answer changes nothing.
func bodyOut(t *testing.T, resp *extprocv3.ProcessingResponse, orig string) string {
	t.Helper()
	br := resp.GetResponseBody()
	require.NotNil(t, br, "a body answer: %v", resp)
	if bm := br.GetResponse().GetBodyMutation(); bm != nil {
		return string(bm.GetBody())
	}
	return orig
}

// TestRuntimeRedactsStreamedAnswer: each chunk of a streamed answer is
// answered with its redacted replacement; a card number split across
// chunks is masked; the response flow still sees the original answer.
func TestRuntimeRedactsStreamedAnswer(t *testing.T) {
	t.Parallel()
	flow, rec := sanitizeFlow(t, "redact")
	client, traces := serveRuntime(t, flow)
	events := sseEvents("Card ", "4111 ", "1111 ", "11", "11 1111", " ok")
	msgs := []*extprocv3.ProcessingRequest{
		requestHeaders(map[string][]string{":method": {"POST"}, ":path": {"/v1/chat/completions"}}, true),
		responseHeadersOf("text/event-stream"),
	}
	for _, ev := range events {
		msgs = append(msgs, responseBody(ev, false))
	}
	msgs = append(msgs, responseBody("", true))
	resps := exchange(t, client, msgs...)
	require.Len(t, resps, len(msgs))

	rh := resps[1].GetResponseHeaders()
	require.NotNil(t, rh)
	assert.Contains(t, rh.GetResponse().GetHeaderMutation().GetRemoveHeaders(), "content-length", "the length changes")
	assert.Nil(t, resps[1].GetModeOverride(), "a stream stays STREAMED")

	var out strings.Builder
	for i, ev := range events {
		out.WriteString(bodyOut(t, resps[2+i], ev))
	}
	out.WriteString(bodyOut(t, resps[len(resps)-1], ""))
	text, code := streamText(t, out.String())
	assert.Equal(t, "Card [REDACTED_CREDIT_CARD] ok", text)
	assert.Empty(t, code)
	assert.True(t, strings.HasSuffix(out.String(), "data: [DONE]\n\n"))
	assert.Equal(t, strings.Join(events, ""), rec.seen(), "the response flow reads the answer as the backend sent it")

	id := apply(nil, rh.GetResponse().GetHeaderMutation())[TraceHeader]
	tr, ok := traces.Get(id)
	require.True(t, ok)
	require.Len(t, tr.Steps, 2)
	assert.Equal(t, "SMR", tr.Steps[0].Policy)
	assert.Equal(t, "ok", tr.Steps[0].Outcome)
	assert.Equal(t, "redacted", tr.Steps[0].Vars["sanitizemodelresponse.SMR.action"])
	assert.Equal(t, "REC", tr.Steps[1].Policy, "the filter is not applied again")
}

// TestRuntimeBlocksStreamedAnswer: a streamed answer is cut at the match,
// ended with an error event and [DONE]; the rest of the upstream body is
// dropped; the trace records the fault.
func TestRuntimeBlocksStreamedAnswer(t *testing.T) {
	t.Parallel()
	flow, rec := sanitizeFlow(t, "block")
	client, traces := serveRuntime(t, flow)
	events := sseEvents("Card ", "4111 1111 ", "1111 1111", " ok")
	msgs := []*extprocv3.ProcessingRequest{
		requestHeaders(map[string][]string{":method": {"POST"}, ":path": {"/v1/chat/completions"}}, true),
		responseHeadersOf("text/event-stream; charset=utf-8"),
	}
	for _, ev := range events {
		msgs = append(msgs, responseBody(ev, false))
	}
	msgs = append(msgs, responseBody("", true))
	resps := exchange(t, client, msgs...)
	require.Len(t, resps, len(msgs))
	var out strings.Builder
	for i, ev := range events {
		out.WriteString(bodyOut(t, resps[2+i], ev))
	}
	out.WriteString(bodyOut(t, resps[len(resps)-1], ""))
	text, code := streamText(t, out.String())
	assert.True(t, strings.HasPrefix("Card ", text), "%q", text)
	assert.Equal(t, "steps.sanitizemodelresponse.MatchFound", code)
	assert.NotContains(t, out.String(), "4111")
	assert.True(t, strings.HasSuffix(out.String(), "data: [DONE]\n\n"))
	assert.Equal(t, 1, strings.Count(out.String(), "[DONE]"), "the upstream's [DONE] is dropped with the rest")
	assert.Equal(t, strings.Join(events, ""), rec.seen())

	tr, ok := traces.Get(apply(nil, resps[1].GetResponseHeaders().GetResponse().GetHeaderMutation())[TraceHeader])
	require.True(t, ok)
	assert.Equal(t, "steps.sanitizemodelresponse.MatchFound", tr.Fault)
	assert.Equal(t, "allowed", tr.Outcome, "the client had its 200 already")
	assert.Equal(t, "fault steps.sanitizemodelresponse.MatchFound", tr.Steps[0].Outcome)
}

// TestRuntimeBuffersWholeAnswer: a JSON answer is asked for BUFFERED and
// answered whole: redacted, or replaced by the fault.
func TestRuntimeBuffersWholeAnswer(t *testing.T) {
	t.Parallel()
	answer := `{"choices":[{"index":0,"message":{"role":"assistant","content":"Card 4111 1111 1111 1111."}}],"usage":{"total_tokens":10}}`
	req := requestHeaders(map[string][]string{":method": {"POST"}, ":path": {"/v1/chat/completions"}}, true)

	flow, rec := sanitizeFlow(t, "redact")
	client, _ := serveRuntime(t, flow)
	resps := exchange(t, client, req, responseHeadersOf("application/json"), responseBody(answer, true))
	require.Len(t, resps, 3)
	mo := resps[1].GetModeOverride()
	require.NotNil(t, mo, "a whole answer is asked for BUFFERED")
	assert.Equal(t, extprocfilter.ProcessingMode_BUFFERED, mo.GetResponseBodyMode())
	assert.Contains(t, resps[1].GetResponseHeaders().GetResponse().GetHeaderMutation().GetRemoveHeaders(), "content-length")
	out := bodyOut(t, resps[2], answer)
	assert.Contains(t, out, `"content":"Card [REDACTED_CREDIT_CARD]."`)
	assert.Contains(t, out, `"usage":{"total_tokens":10}`)
	assert.Equal(t, answer, rec.seen())

	flow, _ = sanitizeFlow(t, "block")
	client, traces := serveRuntime(t, flow)
	resps = exchange(t, client, req, responseHeadersOf("application/json"), responseBody(answer, true))
	require.Len(t, resps, 3)
	ir := resps[2].GetImmediateResponse()
	require.NotNil(t, ir, "the fault replaces the answer: %v", resps[2])
	assert.Equal(t, http.StatusInternalServerError, extproc.ImmediateStatus(ir))
	var f apigeeapi.Fault
	require.NoError(t, json.Unmarshal(ir.GetBody(), &f))
	assert.Equal(t, "steps.sanitizemodelresponse.MatchFound", f.Fault.Detail.ErrorCode)
	tr, ok := traces.Get(apply(nil, ir.GetHeaders())[TraceHeader])
	require.True(t, ok)
	assert.Equal(t, "denied", tr.Outcome)
	assert.Equal(t, http.StatusInternalServerError, tr.Status)

	// Nothing to do: the answer goes on without a mutation.
	resps = exchange(t, client, req, responseHeadersOf("application/json"), responseBody(`{"data":[{"id":"m"}]}`, true))
	require.Len(t, resps, 3)
	assert.Nil(t, resps[2].GetResponseBody().GetResponse().GetBodyMutation())
}

// TestRuntimeWithoutFilters: answers pass as before when no policy filters
// them (no mode override, no mutation).
func TestRuntimeWithoutFilters(t *testing.T) {
	t.Parallel()
	client, _ := serveRuntime(t, &Flow{Name: "open"})
	resps := exchange(t, client,
		requestHeaders(map[string][]string{":method": {"GET"}, ":path": {"/v1/models"}}, true),
		responseHeadersOf("application/json"), responseBody(`{"a":1}`, true))
	require.Len(t, resps, 3)
	assert.Nil(t, resps[1].GetModeOverride())
	assert.NotContains(t, resps[1].GetResponseHeaders().GetResponse().GetHeaderMutation().GetRemoveHeaders(), "content-length")
	assert.Nil(t, resps[2].GetResponseBody().GetResponse().GetBodyMutation())
}
