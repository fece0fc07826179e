package policy

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gatecheck/gatecheck/fakes/apigee/threat"
)

// FuzzResponseFilter: a streamed answer (OpenAI server-sent events or
// Ollama NDJSON) whose text the model split into arbitrary deltas, and
// whose bytes arrive in arbitrary chunks, never makes the filters panic;
// in redact mode the text that goes out is exactly the one-shot redaction
// of the whole text, and in block mode it is a prefix of the text that
// holds no match.
func FuzzResponseFilter(f *testing.F) {
	f.Add("Your card is 4111 1111 1111 1111, thanks.", []byte{3, 1, 4, 1, 5, 9, 2, 6}, false)
	f.Add("IBAN DE89 3704 0044 0532 0130 00 and SSN 536-22-8214", []byte{1}, true)
	f.Add("key sk-live-0123456789abcdefghij0123456789 é ü", []byte{7, 200, 13}, false)
	f.Add("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----", []byte{2, 2, 2}, true)
	f.Add("", []byte{}, false)
	tmpl, err := armorTemplateNamed("pii-only")
	if err != nil {
		f.Fatal(err)
	}
	redact, err := Parse([]byte(`<SanitizeModelResponse name="R"><ModelArmor><TemplateName>pii-only</TemplateName></ModelArmor><Action>redact</Action></SanitizeModelResponse>`), Env{})
	if err != nil {
		f.Fatal(err)
	}
	block, err := Parse([]byte(`<SanitizeModelResponse name="B"><ModelArmor><TemplateName>pii-only</TemplateName></ModelArmor><Action>block</Action></SanitizeModelResponse>`), Env{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text string, cuts []byte, ndjson bool) {
		if !utf8.ValidString(text) {
			return // a model's text is UTF-8; JSON would change invalid bytes
		}
		// The first half of cuts cuts the text into deltas (at rune
		// boundaries), the second half the body into chunks.
		dcuts, bcuts := cuts[:len(cuts)/2], cuts[len(cuts)/2:]
		var deltas []string
		for i, rest := 0, text; len(rest) > 0; i++ {
			n := len(rest)
			if i < len(dcuts) {
				n = min(int(dcuts[i])%16+1, len(rest))
			}
			for n < len(rest) && !utf8.RuneStart(rest[n]) {
				n++
			}
			deltas = append(deltas, rest[:n])
			rest = rest[n:]
		}
		ct, body := "text/event-stream", sseAnswer(deltas)
		if ndjson {
			ct, body = "application/x-ndjson", ndjsonAnswer(deltas)
		}
		var chunks []string
		for i, b := 0, body; len(b) > 0; i++ {
			n := len(b)
			if i < len(bcuts) {
				n = min(int(bcuts[i])+1, len(b))
			}
			chunks = append(chunks, b[:n])
			b = b[n:]
		}
		run := func(p Policy) (string, *Fault) {
			m := &Message{Phase: Response, ResponseHeader: map[string][]string{"Content-Type": {ct}}}
			cf, ok := p.(ResponseFilter).NewResponseFilter(m)
			if !ok {
				t.Fatal("no filter")
			}
			var out strings.Builder
			for _, c := range chunks {
				o, fault, err := cf.Write([]byte(c))
				if err != nil {
					t.Fatalf("write: %v", err)
				}
				out.Write(o)
				if fault != nil {
					return out.String(), fault
				}
			}
			o, fault, err := cf.Close()
			if err != nil {
				t.Fatalf("close: %v", err)
			}
			out.Write(o)
			return out.String(), fault
		}
		textOf := func(out string) string {
			texts, err := streamTexts(ct, []byte(out))
			if err != nil {
				t.Fatalf("the filtered stream does not parse: %v\n%s", err, out)
			}
			return strings.Join(texts, "")
		}
		want := threat.Redact(text, tmpl.match.Scan(text))
		out, fault := run(redact)
		if fault != nil {
			t.Fatalf("redact mode faulted: %v", fault)
		}
		if got := textOf(out); got != want {
			t.Fatalf("redacted stream text\n got %q\nwant %q", got, want)
		}
		out, fault = run(block)
		got := textOf(out)
		if !strings.HasPrefix(text, got) {
			t.Fatalf("block mode sent %q, not a prefix of %q", got, text)
		}
		if fs := tmpl.match.Scan(text); (len(fs) > 0) != (fault != nil) {
			t.Fatalf("block mode: %d matches in the text, fault %v", len(fs), fault)
		}
		if fault != nil && len(tmpl.match.Scan(got)) > 0 {
			t.Fatalf("block mode sent a match: %q", got)
		}
	})
}
