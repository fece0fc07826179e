package threat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// openAIStream frames text as an OpenAI chat completion stream, split into
// tokens of a few bytes (at character boundaries).
func openAIStream(text string, r *rand.Rand) []byte {
	var b bytes.Buffer
	b.WriteString(`data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}]}` + "\n\n")
	b.WriteString(": keep-alive\n\n")
	for _, tok := range tokens(text, r) {
		data, _ := json.Marshal(map[string]any{"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
			"choices": []any{map[string]any{"index": 0, "delta": map[string]any{"content": tok}, "finish_reason": nil}}})
		fmt.Fprintf(&b, "data: %s\n\n", data)
	}
	b.WriteString(`data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"total_tokens":9}}` + "\n\n")
	b.WriteString("data: [DONE]\n\n")
	return b.Bytes()
}

func tokens(text string, r *rand.Rand) []string {
	var out []string
	runes := []rune(text)
	for len(runes) > 0 {
		n := min(len(runes), 1+r.IntN(6))
		out = append(out, string(runes[:n]))
		runes = runes[n:]
	}
	return out
}

func ollamaStream(text string, r *rand.Rand) []byte {
	var b bytes.Buffer
	for _, tok := range tokens(text, r) {
		line, _ := json.Marshal(map[string]any{"model": "m", "created_at": "t", "message": map[string]any{"role": "assistant", "content": tok}, "done": false})
		b.Write(line)
		b.WriteByte('\n')
	}
	b.WriteString(`{"model":"m","created_at":"t","message":{"role":"assistant","content":""},"done":true,"eval_count":3}` + "\n")
	return b.Bytes()
}

// redactBody runs body through a ResponseRedactor in random pieces and
// returns the output and the text it carries.
func redactBody(t *testing.T, d *Detectors, contentType string, body []byte, r *rand.Rand) (string, string, []Finding) {
	t.Helper()
	rr, err := NewResponseRedactor(d, contentType)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	var findings []Finding
	for _, p := range randomSplit(r, string(body), 50) {
		o, f, err := rr.Write([]byte(p))
		if err != nil {
			t.Fatal(err)
		}
		out.Write(o)
		findings = append(findings, f...)
	}
	o, f, err := rr.Close()
	if err != nil {
		t.Fatal(err)
	}
	out.Write(o)
	findings = append(findings, f...)
	sortFindings(findings)
	return out.String(), streamText(t, contentType, out.Bytes()), findings
}

// streamText checks every frame is valid and returns the text they carry.
func streamText(t *testing.T, contentType string, body []byte) string {
	t.Helper()
	var text strings.Builder
	if contentType == "text/event-stream" {
		events, rest := SplitSSE(body)
		if len(bytes.TrimSpace(rest)) > 0 {
			t.Fatalf("unterminated event %q", rest)
		}
		for _, ev := range events {
			data, ok := SSEData(ev)
			if !ok || isDone(data) {
				continue
			}
			if !json.Valid(data) {
				t.Fatalf("event data is not JSON: %q", data)
			}
			ds, err := SSEDeltas(data)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range ds {
				text.WriteString(d.Text)
			}
		}
		return text.String()
	}
	for _, line := range bytes.Split(bytes.TrimSpace(body), []byte("\n")) {
		if !json.Valid(line) {
			t.Fatalf("line is not JSON: %q", line)
		}
		d, err := OllamaDelta(line)
		if err != nil {
			t.Fatal(err)
		}
		text.WriteString(d.Text)
	}
	return text.String()
}

func TestResponseRedactor(t *testing.T) {
	t.Parallel()
	d := mustDetectors(t, DetectorConfig{Filters: []string{FilterSDP, FilterMaliciousURIs}, Threshold: ConfidenceLowAndAbove})
	want := d.Scan(streamSample)
	wantText := Redact(streamSample, want)
	for _, tc := range []struct {
		ct   string
		make func(string, *rand.Rand) []byte
	}{{"text/event-stream", openAIStream}, {"application/x-ndjson", ollamaStream}} {
		for seed := range uint64(5) {
			r := rand.New(rand.NewPCG(seed, 9))
			out, text, findings := redactBody(t, d, tc.ct, tc.make(streamSample, r), r)
			if text != wantText {
				t.Fatalf("%s seed %d: text\n%q\nwant\n%q", tc.ct, seed, text, wantText)
			}
			if !reflect.DeepEqual(findings, want) {
				t.Fatalf("%s seed %d: findings %+v, want %+v", tc.ct, seed, findings, want)
			}
			if tc.ct == "text/event-stream" && (!strings.HasSuffix(out, "data: [DONE]\n\n") || !strings.Contains(out, ": keep-alive\n\n") || !strings.Contains(out, `"usage":{"total_tokens":9}`)) {
				t.Fatalf("stream framing lost: %q", out)
			}
		}
	}
}

func TestResponseRedactorWithoutFinishReason(t *testing.T) {
	t.Parallel()
	d := mustDetectors(t, DetectorConfig{Filters: []string{FilterSDP}})
	body := `data: {"id":"x","choices":[{"index":0,"delta":{"content":"card 4111 1111 "},"finish_reason":null}]}` + "\n\n" +
		`data: {"id":"x","choices":[{"index":0,"delta":{"content":"1111 1111 ok"},"finish_reason":null}]}` + "\n\n" +
		"data: [DONE]\n\n"
	_, text, findings := redactBody(t, d, "text/event-stream", []byte(body), rand.New(rand.NewPCG(1, 1)))
	if text != "card [REDACTED_CREDIT_CARD] ok" || len(findings) != 1 {
		t.Fatalf("text %q findings %+v", text, findings)
	}
	// Without [DONE] either: Close releases the tail.
	body = strings.TrimSuffix(body, "data: [DONE]\n\n")
	_, text, _ = redactBody(t, d, "text/event-stream", []byte(body), rand.New(rand.NewPCG(1, 1)))
	if text != "card [REDACTED_CREDIT_CARD] ok" {
		t.Fatalf("text without [DONE] %q", text)
	}
}

func TestRewriteChunks(t *testing.T) {
	t.Parallel()
	data := []byte(`{"id":"a","choices":[{"index":0,"delta":{"content":"x","role":"assistant"},"logprobs":null,"finish_reason":null},{"index":1,"delta":{"content":"y"}}]}`)
	got, err := RewriteSSEChunk(data, map[int]string{1: "<b>z</b>"})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"choices":[{"delta":{"content":"x","role":"assistant"},"finish_reason":null,"index":0,"logprobs":null},{"delta":{"content":"<b>z</b>"},"index":1}],"id":"a"}`
	if string(got) != want {
		t.Errorf("RewriteSSEChunk = %s, want %s", got, want)
	}
	comp, _ := RewriteSSEChunk([]byte(`{"choices":[{"index":0,"text":"a"}]}`), map[int]string{0: "b"})
	if string(comp) != `{"choices":[{"index":0,"text":"b"}]}` {
		t.Errorf("completions rewrite = %s", comp)
	}
	gen, _ := RewriteOllamaChunk([]byte(`{"response":"a","done":false}`), "b")
	if string(gen) != `{"done":false,"response":"b"}` {
		t.Errorf("generate rewrite = %s", gen)
	}
	ev := SetSSEData([]byte("event: message\nid: 7\ndata: {\"a\":\ndata: 1}\n\n"), []byte(`{"a":2}`))
	if string(ev) != "event: message\nid: 7\ndata: {\"a\":2}\n\n" {
		t.Errorf("SetSSEData = %q", ev)
	}
	if d, ok := SSEData([]byte("data: {\"a\":\r\ndata: 1}\r\n\r\n")); !ok || string(d) != "{\"a\":\n1}" {
		t.Errorf("SSEData = %q %v", d, ok)
	}
	if _, err := NewResponseRedactor(mustDetectors(t, DetectorConfig{}), "text/html"); err == nil {
		t.Error("NewResponseRedactor accepted text/html")
	}
}
