package threat

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// Delta is the text one streamed chunk adds to one choice of an answer.
type Delta struct {
	// Choice is the choice index (always 0 for Ollama).
	Choice int
	// Text is the text the chunk adds.
	Text string
	// Final is set on the chunk that ends the choice (a finish_reason in
	// OpenAI's stream, "done": true in Ollama's).
	Final bool
}

// SSEDeltas returns the deltas in the data of one event of an OpenAI
// streamed answer: choices[].delta.content for chat completions,
// choices[].text for completions. The "[DONE]" sentinel has none.
func SSEDeltas(data []byte) ([]Delta, error) {
	if isDone(data) {
		return nil, nil
	}
	var chunk struct {
		Choices []struct {
			Index int `json:"index"`
			Delta struct {
				Content *string `json:"content"`
			} `json:"delta"`
			Text         *string         `json:"text"`
			FinishReason json.RawMessage `json:"finish_reason"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(data, &chunk); err != nil {
		return nil, fmt.Errorf("sse chunk: %w", err)
	}
	var out []Delta
	for _, c := range chunk.Choices {
		d := Delta{Choice: c.Index, Final: len(c.FinishReason) > 0 && string(c.FinishReason) != "null"}
		switch {
		case c.Delta.Content != nil:
			d.Text = *c.Delta.Content
		case c.Text != nil:
			d.Text = *c.Text
		}
		out = append(out, d)
	}
	return out, nil
}

func isDone(data []byte) bool { return string(bytes.TrimSpace(data)) == "[DONE]" }

// RewriteSSEChunk returns the data of an OpenAI stream event with the text
// of each choice listed in texts replaced (delta.content, or text for a
// completions chunk; added if the chunk had none). Every other field is kept;
// the result is compact JSON with object keys sorted.
func RewriteSSEChunk(data []byte, texts map[int]string) ([]byte, error) {
	var chunk map[string]json.RawMessage
	if err := json.Unmarshal(data, &chunk); err != nil {
		return nil, fmt.Errorf("sse chunk: %w", err)
	}
	var choices []map[string]json.RawMessage
	if err := json.Unmarshal(chunk["choices"], &choices); err != nil {
		return nil, fmt.Errorf("sse chunk choices: %w", err)
	}
	for _, c := range choices {
		var idx int
		_ = json.Unmarshal(c["index"], &idx)
		text, ok := texts[idx]
		if !ok {
			continue
		}
		if _, isCompletion := c["text"]; isCompletion {
			c["text"] = jsonString(text)
			continue
		}
		delta := map[string]json.RawMessage{}
		if raw, has := c["delta"]; has {
			if err := json.Unmarshal(raw, &delta); err != nil || delta == nil {
				delta = map[string]json.RawMessage{}
			}
		}
		if _, had := delta["content"]; !had && text == "" {
			continue
		}
		delta["content"] = jsonString(text)
		c["delta"] = marshalRaw(delta)
	}
	chunk["choices"] = marshalRaw(choices)
	return marshalCompact(chunk), nil
}

// OllamaDelta returns the delta of one line of an Ollama stream:
// message.content for /api/chat, response for /api/generate.
func OllamaDelta(line []byte) (Delta, error) {
	var chunk struct {
		Message *struct {
			Content string `json:"content"`
		} `json:"message"`
		Response *string `json:"response"`
		Done     bool    `json:"done"`
	}
	if err := json.Unmarshal(line, &chunk); err != nil {
		return Delta{}, fmt.Errorf("ollama chunk: %w", err)
	}
	d := Delta{Final: chunk.Done}
	switch {
	case chunk.Message != nil:
		d.Text = chunk.Message.Content
	case chunk.Response != nil:
		d.Text = *chunk.Response
	}
	return d, nil
}

// RewriteOllamaChunk returns an Ollama stream line with its text replaced
// (message.content, or response for /api/generate).
func RewriteOllamaChunk(line []byte, text string) ([]byte, error) {
	var chunk map[string]json.RawMessage
	if err := json.Unmarshal(line, &chunk); err != nil {
		return nil, fmt.Errorf("ollama chunk: %w", err)
	}
	if _, isGenerate := chunk["response"]; isGenerate {
		chunk["response"] = jsonString(text)
		return marshalCompact(chunk), nil
	}
	msg := map[string]json.RawMessage{}
	if raw, ok := chunk["message"]; ok {
		if err := json.Unmarshal(raw, &msg); err != nil || msg == nil {
			msg = map[string]json.RawMessage{}
		}
	}
	if _, ok := msg["role"]; !ok {
		msg["role"] = jsonString("assistant")
	}
	msg["content"] = jsonString(text)
	chunk["message"] = marshalRaw(msg)
	return marshalCompact(chunk), nil
}

func jsonString(s string) json.RawMessage { return marshalRaw(s) }

func marshalRaw(v any) json.RawMessage { return json.RawMessage(marshalCompact(v)) }

// marshalCompact encodes v without HTML escaping, so "<" stays "<".
func marshalCompact(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return []byte("null")
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// SplitSSE splits buf into complete server-sent events, each with its
// terminating blank line, and returns the incomplete rest.
func SplitSSE(buf []byte) (events [][]byte, rest []byte) {
	for {
		end, n := eventEnd(buf)
		if end < 0 {
			return events, buf
		}
		events = append(events, buf[:end+n])
		buf = buf[end+n:]
	}
}

// eventEnd finds the blank line that ends an event: "\n\n", "\r\n\r\n" or
// "\r\r".
func eventEnd(buf []byte) (int, int) {
	best, size := -1, 0
	for _, sep := range []string{"\n\n", "\r\n\r\n", "\r\r"} {
		if i := bytes.Index(buf, []byte(sep)); i >= 0 && (best < 0 || i < best) {
			best, size = i, len(sep)
		}
	}
	return best, size
}

// SSEData returns the data of an event: its data: lines joined with "\n".
// ok is false for an event without data (a comment or keep-alive).
func SSEData(event []byte) (data []byte, ok bool) {
	var parts [][]byte
	for _, line := range splitLines(event) {
		if v, found := bytes.CutPrefix(line, []byte("data:")); found {
			parts = append(parts, bytes.TrimPrefix(v, []byte(" ")))
		}
	}
	if len(parts) == 0 {
		return nil, false
	}
	return bytes.Join(parts, []byte("\n")), true
}

// SetSSEData returns event with its data lines replaced by one data line
// holding data (which must not contain a newline; compact JSON does not).
// Other fields (event:, id:, retry:, comments) keep their place.
func SetSSEData(event, data []byte) []byte {
	var out bytes.Buffer
	written := false
	for _, line := range splitLines(event) {
		if bytes.HasPrefix(line, []byte("data:")) {
			if !written {
				out.WriteString("data: ")
				out.Write(data)
				out.WriteByte('\n')
				written = true
			}
			continue
		}
		if len(line) == 0 {
			continue
		}
		out.Write(line)
		out.WriteByte('\n')
	}
	if !written {
		out.WriteString("data: ")
		out.Write(data)
		out.WriteByte('\n')
	}
	out.WriteByte('\n')
	return out.Bytes()
}

func splitLines(b []byte) [][]byte {
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	b = bytes.ReplaceAll(b, []byte("\r"), []byte("\n"))
	return bytes.Split(b, []byte("\n"))
}

// ResponseRedactor redacts a streamed model answer chunk by chunk: it takes
// the raw body as it arrives (OpenAI server-sent events or Ollama NDJSON),
// runs each choice's text through a StreamScanner in redact mode, and
// returns the body re-framed with every chunk still valid JSON. The text a
// scanner holds back is released in later chunks; the rest is put in the
// chunk that ends the choice (OpenAI's finish_reason, Ollama's done), or,
// if the stream ends without one, in a chunk it adds before "data: [DONE]"
// or at Close. Events without data pass unchanged.
type ResponseRedactor struct {
	d        *Detectors
	sse      bool
	buf      []byte
	scanners map[int]*StreamScanner
	flushed  map[int]bool
	template []byte // the last JSON chunk, for chunks the redactor adds
	done     bool
}

// NewResponseRedactor returns a redactor for a response of contentType:
// text/event-stream (OpenAI) or application/x-ndjson / application/json
// lines (Ollama).
func NewResponseRedactor(d *Detectors, contentType string) (*ResponseRedactor, error) {
	r := &ResponseRedactor{d: d, scanners: map[int]*StreamScanner{}, flushed: map[int]bool{}}
	switch {
	case isMedia(contentType, "text/event-stream", ""):
		r.sse = true
	case isMedia(contentType, "application/x-ndjson", "") || isMedia(contentType, "application/json", "+json"):
	default:
		return nil, fmt.Errorf("response redactor: content type %q is not a stream this redactor knows", contentType)
	}
	return r, nil
}

// Write takes the next piece of the body and returns what can be sent on.
func (r *ResponseRedactor) Write(p []byte) (out []byte, findings []Finding, err error) {
	r.buf = append(r.buf, p...)
	var frames [][]byte
	if r.sse {
		frames, r.buf = SplitSSE(r.buf)
	} else {
		frames, r.buf = splitNDJSON(r.buf)
	}
	return r.frames(frames)
}

// Close ends the body: it processes an unterminated last frame and
// releases the text the scanners still hold.
func (r *ResponseRedactor) Close() (out []byte, findings []Finding, err error) {
	var frames [][]byte
	if len(bytes.TrimSpace(r.buf)) > 0 {
		frame := r.buf
		if r.sse {
			frame = append(frame, '\n', '\n')
		}
		frames = append(frames, frame)
	}
	r.buf = nil
	out, findings, err = r.frames(frames)
	if err != nil {
		return out, findings, err
	}
	tail, more, err := r.flushAll()
	return append(out, tail...), append(findings, more...), err
}

func splitNDJSON(buf []byte) (lines [][]byte, rest []byte) {
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			return lines, buf
		}
		lines = append(lines, buf[:i+1])
		buf = buf[i+1:]
	}
}

func (r *ResponseRedactor) scanner(choice int) *StreamScanner {
	s, ok := r.scanners[choice]
	if !ok {
		s = NewStreamScanner(r.d, true)
		r.scanners[choice] = s
	}
	return s
}

func (r *ResponseRedactor) frames(frames [][]byte) ([]byte, []Finding, error) {
	var out []byte
	var findings []Finding
	for _, f := range frames {
		o, fs, err := r.frame(f)
		out = append(out, o...)
		findings = append(findings, fs...)
		if err != nil {
			return out, findings, err
		}
	}
	return out, findings, nil
}

func (r *ResponseRedactor) frame(frame []byte) ([]byte, []Finding, error) {
	if r.done {
		return frame, nil, nil
	}
	if !r.sse {
		line := bytes.TrimSpace(frame)
		if len(line) == 0 {
			return frame, nil, nil
		}
		d, err := OllamaDelta(line)
		if err != nil {
			return nil, nil, err
		}
		r.template = slices.Clone(line)
		text, findings := r.feed(d)
		rewritten, err := RewriteOllamaChunk(line, text)
		if err != nil {
			return nil, nil, err
		}
		return append(rewritten, '\n'), findings, nil
	}
	data, ok := SSEData(frame)
	if !ok {
		return frame, nil, nil
	}
	if isDone(data) {
		tail, findings, err := r.flushAll()
		r.done = true
		return append(tail, frame...), findings, err
	}
	deltas, err := SSEDeltas(data)
	if err != nil {
		return nil, nil, err
	}
	r.template = slices.Clone(data)
	texts := map[int]string{}
	var findings []Finding
	for _, d := range deltas {
		text, fs := r.feed(d)
		texts[d.Choice] += text
		findings = append(findings, fs...)
	}
	rewritten, err := RewriteSSEChunk(data, texts)
	if err != nil {
		return nil, nil, err
	}
	return SetSSEData(frame, rewritten), findings, nil
}

// feed runs one delta through its choice's scanner.
func (r *ResponseRedactor) feed(d Delta) (string, []Finding) {
	if r.flushed[d.Choice] {
		return d.Text, nil // text after the end of a choice: nothing to hold
	}
	s := r.scanner(d.Choice)
	out, findings := s.Write(d.Text)
	if d.Final {
		tail, more := s.Flush()
		out += tail
		findings = append(findings, more...)
		r.flushed[d.Choice] = true
	}
	return out, findings
}

// flushAll releases every unfinished choice in chunks built from the last
// chunk seen.
func (r *ResponseRedactor) flushAll() ([]byte, []Finding, error) {
	var out []byte
	var findings []Finding
	choices := make([]int, 0, len(r.scanners))
	for c := range r.scanners {
		if !r.flushed[c] {
			choices = append(choices, c)
		}
	}
	slices.Sort(choices)
	for _, c := range choices {
		tail, fs := r.scanners[c].Flush()
		r.flushed[c] = true
		findings = append(findings, fs...)
		if tail == "" {
			continue
		}
		if r.template == nil {
			return out, findings, errors.New("response redactor: text to release but no chunk to put it in")
		}
		chunk, err := r.tailChunk(c, tail)
		if err != nil {
			return out, findings, err
		}
		out = append(out, chunk...)
	}
	return out, findings, nil
}

// tailChunk builds a chunk carrying tail for choice c, modelled on the last
// chunk of the stream.
func (r *ResponseRedactor) tailChunk(c int, tail string) ([]byte, error) {
	var tmpl map[string]json.RawMessage
	if err := json.Unmarshal(r.template, &tmpl); err != nil {
		return nil, err
	}
	if !r.sse {
		tmpl["done"] = json.RawMessage("false")
		line, err := RewriteOllamaChunk(marshalCompact(tmpl), tail)
		return append(line, '\n'), err
	}
	choice := map[string]any{"index": c, "finish_reason": nil}
	var old []map[string]json.RawMessage
	if json.Unmarshal(tmpl["choices"], &old) == nil && len(old) > 0 {
		if _, isCompletion := old[0]["text"]; isCompletion {
			choice["text"] = tail
		}
	}
	if _, set := choice["text"]; !set {
		choice["delta"] = map[string]string{"content": tail}
	}
	tmpl["choices"] = marshalRaw([]any{choice})
	delete(tmpl, "usage")
	return SetSSEData(nil, marshalCompact(tmpl)), nil
}
