package policy

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatecheck/gatecheck/fakes/apigee/threat"
)

// tokens splits text into small pieces, as a model streams it.
func tokens(text string, size int) []string {
	var out []string
	for len(text) > 0 {
		n := min(size, len(text))
		out = append(out, text[:n])
		text = text[n:]
	}
	return out
}

// sseAnswer is an OpenAI chat completion stream of these deltas, with a
// finish chunk, a usage chunk and [DONE].
func sseAnswer(deltas []string) string {
	var b strings.Builder
	for _, d := range deltas {
		c, _ := json.Marshal(d)
		b.WriteString(`data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"content":` + string(c) + `},"finish_reason":null}]}` + "\n\n")
	}
	b.WriteString(`data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n")
	b.WriteString(`data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":9,"total_tokens":12}}` + "\n\n")
	b.WriteString("data: [DONE]\n\n")
	return b.String()
}

// ndjsonAnswer is an Ollama /api/chat stream of these deltas.
func ndjsonAnswer(deltas []string) string {
	var b strings.Builder
	for _, d := range deltas {
		c, _ := json.Marshal(d)
		b.WriteString(`{"model":"m","message":{"role":"assistant","content":` + string(c) + `},"done":false}` + "\n")
	}
	b.WriteString(`{"model":"m","message":{"role":"assistant","content":""},"done":true,"prompt_eval_count":3,"eval_count":9}` + "\n")
	return b.String()
}

// runFilter feeds body to a new filter of p in pieces of size n (0: whole)
// and returns what it sent on, and the fault if any.
func runFilter(t testing.TB, p Policy, m *Message, body string, n int) (string, *Fault) {
	t.Helper()
	cf, ok := p.(ResponseFilter).NewResponseFilter(m)
	require.True(t, ok)
	var out bytes.Buffer
	pieces := []string{body}
	if n > 0 {
		pieces = tokens(body, n)
	}
	for _, piece := range pieces {
		o, f, err := cf.Write([]byte(piece))
		require.NoError(t, err)
		out.Write(o)
		if f != nil {
			return out.String(), f
		}
	}
	o, f, err := cf.Close()
	require.NoError(t, err)
	out.Write(o)
	return out.String(), f
}

const leak = "Sure. The card on file is 4111 1111 1111 1111 and the backup is 5500-0000-0000-0004; SSN 536-22-8214 is not needed."

func TestSanitizeModelResponseRedactsStreams(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := f.parse(t, `<SanitizeModelResponse name="SMR"><ModelArmor><TemplateName>pii-only</TemplateName></ModelArmor><Action>redact</Action></SanitizeModelResponse>`)
	tmpl, err := armorTemplateNamed("pii-only")
	require.NoError(t, err)
	want := threat.Redact(leak, tmpl.match.Scan(leak))
	require.Equal(t, "Sure. The card on file is [REDACTED_CREDIT_CARD] and the backup is [REDACTED_CREDIT_CARD]; SSN [REDACTED_US_SSN] is not needed.", want)

	for _, tc := range []struct{ ct, body string }{
		{"text/event-stream", sseAnswer(tokens(leak, 3))},
		{"application/x-ndjson", ndjsonAnswer(tokens(leak, 2))},
	} {
		for _, n := range []int{0, 1, 7, 64} {
			m := respMsg(jsonMsg(f, "/v1/chat/completions", `{}`), tc.ct, "")
			out, fault := runFilter(t, p, m, tc.body, n)
			require.Nil(t, fault)
			texts, err := streamTexts(tc.ct, []byte(out))
			require.NoError(t, err, out)
			assert.Equal(t, []string{want}, texts, "%s in pieces of %d", tc.ct, n)
			assert.NotContains(t, out, "4111")
			assert.Equal(t, "redacted", varOf(m, "sanitizemodelresponse.SMR.action"))
			assert.Equal(t, "MATCH_FOUND", varOf(m, "sanitizemodelresponse.SMR.filterMatchState"))
			assert.Equal(t, "MATCH_FOUND", varOf(m, "sanitizemodelresponse.SMR.filterResults.sdp.matchState"))
			if tc.ct == "text/event-stream" {
				assert.True(t, strings.HasSuffix(out, "data: [DONE]\n\n"))
				assert.Contains(t, out, `"usage":{"prompt_tokens":3,"completion_tokens":9,"total_tokens":12}`, "the usage chunk goes on")
			}
		}
	}
}

func TestSanitizeModelResponseBlocksStreams(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := f.parse(t, `<SanitizeModelResponse name="SMR"><ModelArmor><TemplateName>pii-only</TemplateName></ModelArmor><Action>block</Action></SanitizeModelResponse>`)
	const fs = "SanitizeModelResponse[SMR]: Model Armor template pii-only found a match in the model response: sdp (credit_card)"
	for _, tc := range []struct{ ct, body string }{
		{"text/event-stream", sseAnswer(tokens(leak, 3))},
		{"application/x-ndjson", ndjsonAnswer(tokens(leak, 2))},
	} {
		for _, n := range []int{0, 1, 13} {
			m := respMsg(jsonMsg(f, "/v1/chat/completions", `{}`), tc.ct, "")
			out, fault := runFilter(t, p, m, tc.body, n)
			require.NotNil(t, fault)
			assert.Equal(t, 500, fault.Status)
			assert.Equal(t, "steps.sanitizemodelresponse.MatchFound", fault.Code)
			assert.True(t, strings.HasPrefix(fault.FaultString, fs), "%s: the first match is named first", fault.FaultString)
			texts, err := streamTexts(tc.ct, []byte(out))
			require.NoError(t, err, out)
			text := strings.Join(texts, "")
			assert.True(t, strings.HasPrefix(leak, text), "only text before the match goes out: %q", text)
			assert.NotContains(t, out, "4111")
			// What goes out before the error never says the answer ended well.
			assert.NotContains(t, out, `"finish_reason":"stop"`)
			assert.NotContains(t, out, `"done":true`)
			assert.Equal(t, "blocked", varOf(m, "sanitizemodelresponse.SMR.action"))
		}
	}
	// A clean stream passes whole, text and framing.
	m := respMsg(jsonMsg(f, "/v1/chat/completions", `{}`), "text/event-stream", "")
	clean := "Nothing sensitive here, only a long enough answer to be held back and released in several batches. " + strings.Repeat("More words. ", 100)
	out, fault := runFilter(t, p, m, sseAnswer(tokens(clean, 5)), 17)
	require.Nil(t, fault)
	texts, err := streamTexts("text/event-stream", []byte(out))
	require.NoError(t, err)
	assert.Equal(t, []string{clean}, texts)
	assert.True(t, strings.HasSuffix(out, "data: [DONE]\n\n"))
	assert.Equal(t, "none", varOf(m, "sanitizemodelresponse.SMR.action"))
}

func TestSanitizeModelResponseJSON(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	answer := `{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"card 4111 1111 1111 1111 <b>ok</b>"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":9,"total_tokens":12}}`
	redact := f.parse(t, `<SanitizeModelResponse name="SMR"><ModelArmor><TemplateName>pii-only</TemplateName></ModelArmor></SanitizeModelResponse>`)
	m := respMsg(jsonMsg(f, "/v1/chat/completions", `{}`), "application/json", "")
	out, fault := runFilter(t, redact, m, answer, 10)
	require.Nil(t, fault)
	var got struct {
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
		Usage struct {
			TotalTokens json.Number `json:"total_tokens"`
		} `json:"usage"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	assert.Equal(t, "card [REDACTED_CREDIT_CARD] <b>ok</b>", got.Choices[0].Message.Content)
	assert.Equal(t, json.Number("12"), got.Usage.TotalTokens)
	assert.Equal(t, "redacted", varOf(m, "sanitizemodelresponse.SMR.action"))

	// Nothing to redact: the answer goes on byte for byte.
	clean := `{"models":[{"id":"qwen"}],  "note":"spacing kept"}`
	out, fault = runFilter(t, redact, respMsg(jsonMsg(f, "/v1/models", `{}`), "application/json", ""), clean, 0)
	require.Nil(t, fault)
	assert.Equal(t, clean, out)

	// Ollama's whole answer, and the e-mail the pii-only template only reports.
	ollama := `{"model":"m","message":{"role":"assistant","content":"IBAN DE89 3704 0044 0532 0130 00, mail bob@example.com"},"done":true}`
	m = respMsg(jsonMsg(f, "/api/chat", `{}`), "application/json; charset=utf-8", "")
	out, _ = runFilter(t, redact, m, ollama, 0)
	assert.Contains(t, out, `"content":"IBAN [REDACTED_IBAN], mail bob@example.com"`)

	block := f.parse(t, `<SanitizeModelResponse name="SMR"><Action>block</Action><FaultStatus>502</FaultStatus></SanitizeModelResponse>`)
	m = respMsg(jsonMsg(f, "/v1/chat/completions", `{}`), "application/json", "")
	_, fault = runFilter(t, block, m, answer, 0)
	requireFault(t, fault, 502, "steps.sanitizemodelresponse.MatchFound",
		"SanitizeModelResponse[SMR]: Model Armor template default found a match in the model response: sdp (credit_card)")
	assert.Equal(t, "blocked", varOf(m, "sanitizemodelresponse.SMR.action"))

	// An LLMResponseSource: its text is screened, and each match masked
	// wherever it appears.
	src := f.parse(t, `<SanitizeModelResponse name="SMR"><LLMResponseSource>{jsonPath('$.choices[0].message.content',response.content,true)}</LLMResponseSource></SanitizeModelResponse>`)
	doubled := strings.Replace(answer, `"model":"m"`, `"model":"m","echo":"4111 1111 1111 1111"`, 1)
	out, fault = runFilter(t, src, respMsg(jsonMsg(f, "/v1/chat/completions", `{}`), "application/json", ""), doubled, 0)
	require.Nil(t, fault)
	assert.NotContains(t, out, "4111")
	assert.Equal(t, 2, strings.Count(out, "[REDACTED_CREDIT_CARD]"))
	_, fault = runFilter(t, src, respMsg(jsonMsg(f, "/v1/models", `{}`), "application/json", ""), `{"data":[]}`, 0)
	requireFault(t, fault, 500, "steps.sanitizemodelresponse.UnresolvedVariable",
		"SanitizeModelResponse[SMR]: LLMResponseSource {jsonPath('$.choices[0].message.content',response.content,true)} did not resolve")

	// Other answers get no filter.
	_, ok := redact.(ResponseFilter).NewResponseFilter(respMsg(jsonMsg(f, "/x", `{}`), "text/plain", ""))
	assert.False(t, ok)
}

func TestSanitizeModelResponseFlag(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	p := f.parse(t, `<SanitizeModelResponse name="SMR"><ModelArmor><TemplateName>pii-only</TemplateName></ModelArmor><Action>flag</Action></SanitizeModelResponse>`)
	m := respMsg(jsonMsg(f, "/v1/chat/completions", `{}`), "text/event-stream", sseAnswer(tokens(leak, 4)))
	_, ok := p.(ResponseFilter).NewResponseFilter(m)
	require.False(t, ok, "flag mode does not touch the answer")
	require.Nil(t, apply(t, p, m))
	assert.Equal(t, "flagged", varOf(m, "sanitizemodelresponse.SMR.action"))
	assert.Equal(t, "sdp:credit_card,sdp:us_ssn", varOf(m, "sanitizemodelresponse.SMR.matches"))
	assert.Equal(t, "3", varOf(m, "sanitizemodelresponse.SMR.matchCount"))

	// A continueOnError block policy is applied at the end too; its fault
	// is recorded.
	coe := f.parse(t, `<SanitizeModelResponse name="SMR" continueOnError="true"><Action>block</Action></SanitizeModelResponse>`)
	_, ok = coe.(ResponseFilter).NewResponseFilter(m)
	require.False(t, ok)
	require.Nil(t, apply(t, coe, m))
	assert.Equal(t, "steps.sanitizemodelresponse.MatchFound", varOf(m, "gatecheck.fault.SMR"))
}

func TestStreamErrorFrame(t *testing.T) {
	t.Parallel()
	f := &Fault{Status: 500, Code: "steps.sanitizemodelresponse.MatchFound", FaultString: `a "quoted" <b>`}
	assert.Equal(t, `data: {"error":{"code":"steps.sanitizemodelresponse.MatchFound","message":"a \"quoted\" <b>","status":500,"type":"apigee_fault"}}`+"\n\ndata: [DONE]\n\n",
		string(StreamErrorFrame("text/event-stream; charset=utf-8", f)))
	assert.Equal(t, `{"error":"a \"quoted\" <b> (steps.sanitizemodelresponse.MatchFound)"}`+"\n",
		string(StreamErrorFrame("application/x-ndjson", f)))
}
