package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gatecheck/gatecheck/fakes/apigee/threat"
)

// SanitizeModelResponse screens a model's answer with a Model Armor
// template (see model_armor.go), streamed answers included, and blocks it,
// masks what matched, or only records it.
//
// <Action> (a gatecheck extension):
//
//	block   a match refuses the answer. A buffered answer (application/json)
//	        is replaced by the fault: 500 steps.sanitizemodelresponse.MatchFound,
//	        or <FaultStatus>. A streamed one has sent its headers already: the
//	        text before the match is sent, then an error in the stream's own
//	        framing (see StreamErrorFrame), and the stream ends.
//	redact  (the default) every match is replaced by a token such as
//	        [REDACTED_CREDIT_CARD], chunk by chunk in a streamed answer, with
//	        matches split across chunks found (threat.ResponseRedactor). The
//	        answer goes on with the same framing, every chunk valid JSON.
//	flag    only the variables are set, once the answer has passed.
//
// What is screened: the text of a streamed answer (OpenAI server-sent
// events: choices[].delta.content or choices[].text; Ollama NDJSON:
// message.content or response), per choice; in a buffered JSON answer,
// every string in it (the choices' messages, Ollama's message or response,
// the GraphQL endpoint's data), or, when <LLMResponseSource> is set, the
// text that template resolves to (then each match is masked wherever it
// appears in the answer's strings). LLMResponseSource does not apply to
// streamed answers, whose text no template can address. <UserPromptSource>
// is accepted (Model Armor uses the prompt as context); the local detectors
// do not need it. <IgnoreUnresolvedVariables> as in SanitizeUserPrompt; an
// unresolved LLMResponseSource is steps.sanitizemodelresponse.UnresolvedVariable.
//
// Answers of other types (text/plain, no body) pass untouched. The policy
// is a ResponseFilter; its variables, those of SanitizeUserPrompt under
// sanitizemodelresponse.{name}., are set when the answer ends. Only matches
// are counted in a streamed answer (no reported findings).
type SanitizeModelResponse struct {
	name      string
	tmpl      *armorTemplate
	source    *template
	sourceSrc string
	ignore    bool
	mode      string // block, redact, flag
	status    int
}

type xmlSanitizeModelResponse struct {
	xmlCommon
	IgnoreUnresolvedVariables *string        `xml:"IgnoreUnresolvedVariables"`
	UserPromptSource          *string        `xml:"UserPromptSource"`
	LLMResponseSource         *string        `xml:"LLMResponseSource"`
	ModelArmor                *xmlModelArmor `xml:"ModelArmor"`
	Action                    *string        `xml:"Action"`
	FaultStatus               *string        `xml:"FaultStatus"`
}

func parseSanitizeModelResponse(data []byte, _ Env) (Policy, error) {
	var x xmlSanitizeModelResponse
	pe, err := decodePolicy("SanitizeModelResponse", data, &x, &x.xmlCommon,
		[]string{"IgnoreUnresolvedVariables", "UserPromptSource", "LLMResponseSource", "ModelArmor", "Action", "FaultStatus"}, nil)
	if err != nil {
		return nil, err
	}
	p := &SanitizeModelResponse{name: x.Name, mode: "redact"}
	if p.ignore, err = pe.optBool("IgnoreUnresolvedVariables", x.IgnoreUnresolvedVariables); err != nil {
		return nil, err
	}
	if _, _, err = optSourceTemplate(pe, "UserPromptSource", x.UserPromptSource); err != nil {
		return nil, err
	}
	if p.source, p.sourceSrc, err = optSourceTemplate(pe, "LLMResponseSource", x.LLMResponseSource); err != nil {
		return nil, err
	}
	if p.tmpl, err = parseArmorTemplate(pe, x.ModelArmor); err != nil {
		return nil, err
	}
	if x.Action != nil {
		p.mode = strings.TrimSpace(*x.Action)
		if p.mode != "block" && p.mode != "redact" && p.mode != "flag" {
			return nil, pe.elem("Action", "%q is not block, redact or flag", p.mode)
		}
	}
	if p.status, err = parseFaultStatus(pe, x.FaultStatus); err != nil {
		return nil, err
	}
	return p, nil
}

// Name returns the policy's name.
func (p *SanitizeModelResponse) Name() string { return p.name }

// Kind returns "SanitizeModelResponse".
func (p *SanitizeModelResponse) Kind() string { return "SanitizeModelResponse" }

func (p *SanitizeModelResponse) prefix() string { return "sanitizemodelresponse." + p.name + "." }

func (p *SanitizeModelResponse) matchFault(matches []threat.Finding) *Fault {
	return threatFault(faultResponseMatch, p.status, true,
		faultResponseMatch.fault(p.name, p.tmpl.id, describeFindings(matches)).FaultString)
}

// Apply screens a whole answer that was not filtered (flag mode, or a
// continueOnError policy) and records the result; a block-mode match is a
// fault, recorded by the runtime, since the answer is gone.
func (p *SanitizeModelResponse) Apply(_ context.Context, m *Message) (*Fault, error) {
	if m.Phase != Response {
		return nil, nil
	}
	ct := contentTypeOf(m.ResponseHeader)
	var r armorResult
	switch {
	case StreamingResponse(ct):
		texts, err := streamTexts(ct, m.ResponseBody)
		if err != nil {
			return nil, nil // not an answer the readers know: nothing to screen
		}
		r = p.tmpl.scan(texts)
	case isJSONMedia(ct):
		texts, f := p.jsonTexts(m, m.ResponseBody)
		if f != nil {
			return f, nil
		}
		r = p.tmpl.scan(texts)
	default:
		return nil, nil
	}
	action := "none"
	if len(r.matches) > 0 {
		action = "flagged"
	}
	r.setVars(m.vars(), p.prefix(), p.tmpl, action)
	if len(r.matches) > 0 && p.mode == "block" {
		return p.matchFault(r.matches), nil
	}
	return nil, nil
}

// NewResponseFilter blocks or redacts a streamed (server-sent events,
// NDJSON) or JSON answer; flag mode and other answers get no filter.
func (p *SanitizeModelResponse) NewResponseFilter(m *Message) (ChunkFilter, bool) {
	if p.mode == "flag" {
		return nil, false
	}
	ct := contentTypeOf(m.ResponseHeader)
	switch {
	case StreamingResponse(ct):
		if p.mode == "redact" {
			rr, err := threat.NewResponseRedactor(p.tmpl.match, ct)
			if err != nil {
				return nil, false
			}
			return &redactStream{p: p, m: m, rr: rr}, true
		}
		return newStreamGuard(p, m, ct), true
	case isJSONMedia(ct):
		return &jsonAnswerFilter{p: p, m: m}, true
	}
	return nil, false
}

// jsonTexts are the texts screened in a whole JSON answer: the
// LLMResponseSource's value, else every string in the document.
func (p *SanitizeModelResponse) jsonTexts(m *Message, body []byte) ([]string, *Fault) {
	if p.source != nil {
		view := *m
		view.ResponseBody = body
		s, ok := p.source.eval(&view)
		if !ok && !p.ignore {
			return nil, threatFault(faultResponseUnresolved, p.status, true, faultResponseUnresolved.fault(p.name, p.sourceSrc).FaultString)
		}
		return []string{s}, nil
	}
	doc, err := decodeJSONNumbers(body)
	if err != nil {
		return nil, nil
	}
	var texts []string
	walkJSONStrings(doc, func(s string) string { texts = append(texts, s); return s })
	return texts, nil
}

// jsonAnswerFilter screens a buffered JSON answer at its end.
type jsonAnswerFilter struct {
	p    *SanitizeModelResponse
	m    *Message
	body []byte
}

func (f *jsonAnswerFilter) Write(chunk []byte) ([]byte, *Fault, error) {
	f.body = append(f.body, chunk...)
	return nil, nil, nil
}

func (f *jsonAnswerFilter) Close() ([]byte, *Fault, error) {
	p := f.p
	texts, fault := p.jsonTexts(f.m, f.body)
	if fault != nil {
		return nil, fault, nil
	}
	r := p.tmpl.scan(texts)
	if len(r.matches) == 0 {
		r.setVars(f.m.vars(), p.prefix(), p.tmpl, "none")
		return f.body, nil, nil
	}
	if p.mode == "block" {
		r.setVars(f.m.vars(), p.prefix(), p.tmpl, "blocked")
		return nil, p.matchFault(r.matches), nil
	}
	out, err := p.redactJSON(f.body, texts, r.matches)
	if err != nil {
		return nil, nil, err
	}
	r.setVars(f.m.vars(), p.prefix(), p.tmpl, "redacted")
	return out, nil, nil
}

// redactJSON masks the matches in every string of a JSON answer: each
// string is scanned again when the texts were its strings (the findings'
// offsets are per string), or the matched substrings of the
// LLMResponseSource's text are replaced wherever they appear.
func (p *SanitizeModelResponse) redactJSON(body []byte, texts []string, matches []threat.Finding) ([]byte, error) {
	doc, err := decodeJSONNumbers(body)
	if err != nil {
		return nil, fmt.Errorf("SanitizeModelResponse %q: the answer is not JSON: %w", p.name, err)
	}
	var rewrite func(string) string
	if p.source == nil {
		rewrite = func(s string) string {
			if fs := p.tmpl.match.Scan(s); len(fs) > 0 {
				return threat.Redact(s, fs)
			}
			return s
		}
	} else {
		text := texts[0]
		var pairs []string
		for _, f := range matches {
			if f.Start >= 0 && f.End <= len(text) && f.Start < f.End {
				pairs = append(pairs, text[f.Start:f.End], threat.RedactionToken(f.Kind))
			}
		}
		r := strings.NewReplacer(pairs...)
		rewrite = r.Replace
	}
	doc = walkJSONStrings(doc, rewrite)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func decodeJSONNumbers(body []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var doc any
	if err := d.Decode(&doc); err != nil {
		return nil, err
	}
	return doc, nil
}

// walkJSONStrings replaces every string value of v (not object keys) with
// f's result, in document order for arrays and sorted key order for objects.
func walkJSONStrings(v any, f func(string) string) any {
	switch t := v.(type) {
	case string:
		return f(t)
	case []any:
		for i := range t {
			t[i] = walkJSONStrings(t[i], f)
		}
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			t[k] = walkJSONStrings(t[k], f)
		}
	}
	return v
}

// streamTexts reads the text of a whole streamed answer, per choice.
func streamTexts(ct string, body []byte) ([]string, error) {
	byChoice := map[int]*strings.Builder{}
	add := func(d threat.Delta) {
		b := byChoice[d.Choice]
		if b == nil {
			b = &strings.Builder{}
			byChoice[d.Choice] = b
		}
		b.WriteString(d.Text)
	}
	if mediaIs(ct, "text/event-stream", "") {
		events, rest := threat.SplitSSE(body)
		if len(bytes.TrimSpace(rest)) > 0 {
			events = append(events, rest)
		}
		for _, e := range events {
			data, ok := threat.SSEData(e)
			if !ok {
				continue
			}
			ds, err := threat.SSEDeltas(data)
			if err != nil {
				return nil, err
			}
			for _, d := range ds {
				add(d)
			}
		}
	} else {
		for _, line := range bytes.Split(body, []byte("\n")) {
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			d, err := threat.OllamaDelta(line)
			if err != nil {
				return nil, err
			}
			add(d)
		}
	}
	choices := make([]int, 0, len(byChoice))
	for c := range byChoice {
		choices = append(choices, c)
	}
	slices.Sort(choices)
	texts := make([]string, 0, len(choices))
	for _, c := range choices {
		texts = append(texts, byChoice[c].String())
	}
	return texts, nil
}

// redactStream redacts a streamed answer with threat.ResponseRedactor.
type redactStream struct {
	p        *SanitizeModelResponse
	m        *Message
	rr       *threat.ResponseRedactor
	findings []threat.Finding
}

func (r *redactStream) Write(chunk []byte) ([]byte, *Fault, error) {
	out, fs, err := r.rr.Write(chunk)
	r.findings = append(r.findings, fs...)
	return out, nil, err
}

func (r *redactStream) Close() ([]byte, *Fault, error) {
	out, fs, err := r.rr.Close()
	r.findings = append(r.findings, fs...)
	action := "none"
	if len(r.findings) > 0 {
		action = "redacted"
	}
	armorResult{matches: r.findings}.setVars(r.m.vars(), r.p.prefix(), r.p.tmpl, action)
	return out, nil, err
}

// StreamErrorFrame is what ends a streamed answer that a response policy
// refused after its headers went out, in the stream's framing:
//
//	text/event-stream     data: {"error":{"message":FAULTSTRING,"type":"apigee_fault","code":ERRORCODE,"status":STATUS}}
//	                      data: [DONE]
//	application/x-ndjson  {"error":"FAULTSTRING (ERRORCODE)"}
//
// The OpenAI event is the shape OpenAI's own streams use for errors, and
// the Ollama line the shape Ollama's clients read ("error" a string).
func StreamErrorFrame(contentType string, f *Fault) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if mediaIs(contentType, "text/event-stream", "") {
		b.WriteString("data: ")
		_ = enc.Encode(map[string]any{"error": map[string]any{
			"message": f.FaultString, "type": "apigee_fault", "code": f.Code, "status": f.Status,
		}})
		b.Truncate(b.Len() - 1) // Encode's newline
		b.WriteString("\n\ndata: [DONE]\n\n")
		return b.Bytes()
	}
	_ = enc.Encode(map[string]string{"error": f.FaultString + " (" + f.Code + ")"})
	return b.Bytes()
}

// streamGuard blocks a streamed answer at its first match: each choice's
// text goes through a threat.StreamScanner in block mode, chunks are
// re-framed carrying only the text that is certainly safe (text is held
// back while it could still start a match), and on a match the guard
// returns what precedes it and the fault.
type streamGuard struct {
	p        *SanitizeModelResponse
	m        *Message
	sse      bool
	buf      []byte
	scanners map[int]*threat.StreamScanner
	flushed  map[int]bool
	template []byte // the last JSON chunk, for the chunks the guard adds
	done     bool   // [DONE] seen
	tripped  bool
	matches  []threat.Finding
}

func newStreamGuard(p *SanitizeModelResponse, m *Message, ct string) *streamGuard {
	return &streamGuard{p: p, m: m, sse: mediaIs(ct, "text/event-stream", ""),
		scanners: map[int]*threat.StreamScanner{}, flushed: map[int]bool{}}
}

func (g *streamGuard) Write(chunk []byte) ([]byte, *Fault, error) {
	if g.tripped {
		return nil, nil, nil
	}
	g.buf = append(g.buf, chunk...)
	var frames [][]byte
	if g.sse {
		frames, g.buf = threat.SplitSSE(g.buf)
	} else {
		frames, g.buf = splitLines(g.buf)
	}
	return g.frames(frames)
}

func (g *streamGuard) Close() ([]byte, *Fault, error) {
	if g.tripped {
		return nil, nil, nil
	}
	var frames [][]byte
	if len(bytes.TrimSpace(g.buf)) > 0 {
		frame := g.buf
		if g.sse {
			frame = append(frame, '\n', '\n')
		}
		frames = append(frames, frame)
	}
	g.buf = nil
	out, f, err := g.frames(frames)
	if f != nil || err != nil {
		return out, f, err
	}
	tail, f, err := g.flushAll()
	out = append(out, tail...)
	if f == nil && err == nil {
		armorResult{}.setVars(g.m.vars(), g.p.prefix(), g.p.tmpl, "none")
	}
	return out, f, err
}

func splitLines(buf []byte) (lines [][]byte, rest []byte) {
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			return lines, buf
		}
		lines = append(lines, buf[:i+1])
		buf = buf[i+1:]
	}
}

func (g *streamGuard) frames(frames [][]byte) ([]byte, *Fault, error) {
	var out []byte
	for _, fr := range frames {
		o, f, err := g.frame(fr)
		out = append(out, o...)
		if f != nil || err != nil {
			return out, f, err
		}
	}
	return out, nil, nil
}

// trip records the first match and returns the fault.
func (g *streamGuard) trip(fs []threat.Finding) *Fault {
	g.tripped = true
	g.matches = fs
	armorResult{matches: fs}.setVars(g.m.vars(), g.p.prefix(), g.p.tmpl, "blocked")
	return g.p.matchFault(fs)
}

func (g *streamGuard) scanner(c int) *threat.StreamScanner {
	s, ok := g.scanners[c]
	if !ok {
		s = threat.NewStreamScanner(g.p.tmpl.match, false)
		g.scanners[c] = s
	}
	return s
}

// feed runs a delta through its choice's scanner.
func (g *streamGuard) feed(d threat.Delta) (string, []threat.Finding) {
	if g.flushed[d.Choice] {
		// Text after the end of a choice: screen it on its own.
		if fs := g.p.tmpl.match.Scan(d.Text); len(fs) > 0 {
			return "", fs
		}
		return d.Text, nil
	}
	s := g.scanner(d.Choice)
	out, fs := s.Write(d.Text)
	if d.Final && len(fs) == 0 {
		tail, more := s.Flush()
		out += tail
		fs = more
		g.flushed[d.Choice] = true
	}
	return out, fs
}

func (g *streamGuard) frame(frame []byte) ([]byte, *Fault, error) {
	if g.done {
		return frame, nil, nil
	}
	if !g.sse {
		line := bytes.TrimSpace(frame)
		if len(line) == 0 {
			return frame, nil, nil
		}
		d, err := threat.OllamaDelta(line)
		if err != nil {
			return nil, nil, err
		}
		g.template = slices.Clone(line)
		text, fs := g.feed(d)
		rewritten, err := threat.RewriteOllamaChunk(line, text)
		if err != nil {
			return nil, nil, err
		}
		rewritten = append(rewritten, '\n')
		if len(fs) > 0 {
			if text == "" {
				rewritten = nil
			} else {
				rewritten = append(unfinished(bytes.TrimSpace(rewritten), false), '\n')
			}
			return rewritten, g.trip(fs), nil
		}
		return rewritten, nil, nil
	}
	data, ok := threat.SSEData(frame)
	if !ok {
		return frame, nil, nil
	}
	if string(bytes.TrimSpace(data)) == "[DONE]" {
		tail, f, err := g.flushAll()
		if f != nil || err != nil {
			return tail, f, err
		}
		g.done = true
		return append(tail, frame...), nil, nil
	}
	deltas, err := threat.SSEDeltas(data)
	if err != nil {
		return nil, nil, err
	}
	g.template = slices.Clone(data)
	texts := map[int]string{}
	var found []threat.Finding
	for _, d := range deltas {
		text, fs := g.feed(d)
		texts[d.Choice] += text
		found = append(found, fs...)
	}
	rewritten, err := threat.RewriteSSEChunk(data, texts)
	if err != nil {
		return nil, nil, err
	}
	if len(found) > 0 {
		return threat.SetSSEData(frame, unfinished(rewritten, true)), g.trip(found), nil
	}
	return threat.SetSSEData(frame, rewritten), nil, nil
}

// unfinished rewrites the chunk that goes out just before a blocked
// stream's error so it does not also say the answer ended well: an OpenAI
// finish_reason becomes "content_filter" (OpenAI's own value for this), an
// Ollama final object becomes done:false with done_reason "content_filter".
// A client that stops at the finish then still sees the answer as cut.
func unfinished(chunk []byte, sse bool) []byte {
	var doc map[string]any
	if json.Unmarshal(chunk, &doc) != nil {
		return chunk
	}
	changed := false
	if sse {
		choices, _ := doc["choices"].([]any)
		for _, c := range choices {
			if ch, ok := c.(map[string]any); ok && ch["finish_reason"] != nil {
				ch["finish_reason"] = "content_filter"
				changed = true
			}
		}
	} else if done, _ := doc["done"].(bool); done {
		doc["done"], doc["done_reason"] = false, "content_filter"
		changed = true
	}
	if !changed {
		return chunk
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return chunk
	}
	return out
}

// flushAll ends every open choice, releasing its held text in a chunk of
// its own, or trips on a match in it.
func (g *streamGuard) flushAll() ([]byte, *Fault, error) {
	var out []byte
	choices := make([]int, 0, len(g.scanners))
	for c := range g.scanners {
		if !g.flushed[c] {
			choices = append(choices, c)
		}
	}
	slices.Sort(choices)
	for _, c := range choices {
		tail, fs := g.scanners[c].Flush()
		g.flushed[c] = true
		if tail != "" {
			chunk, err := g.tailChunk(c, tail)
			if err != nil {
				return out, nil, err
			}
			out = append(out, chunk...)
		}
		if len(fs) > 0 {
			return out, g.trip(fs), nil
		}
	}
	return out, nil, nil
}

// tailChunk builds a chunk carrying text for choice c, modelled on the
// last chunk of the stream.
func (g *streamGuard) tailChunk(c int, text string) ([]byte, error) {
	if g.template == nil {
		return nil, errors.New("stream guard: text to release but no chunk to put it in")
	}
	var tmpl map[string]json.RawMessage
	if err := json.Unmarshal(g.template, &tmpl); err != nil {
		return nil, err
	}
	if !g.sse {
		tmpl["done"] = json.RawMessage("false")
		line, err := threat.RewriteOllamaChunk(marshalNoEscape(tmpl), text)
		return append(line, '\n'), err
	}
	choice := map[string]any{"index": c, "finish_reason": nil, "delta": map[string]string{"content": text}}
	var old []map[string]json.RawMessage
	if json.Unmarshal(tmpl["choices"], &old) == nil && len(old) > 0 {
		if _, isCompletion := old[0]["text"]; isCompletion {
			delete(choice, "delta")
			choice["text"] = text
		}
	}
	tmpl["choices"] = marshalNoEscape([]any{choice})
	delete(tmpl, "usage")
	return threat.SetSSEData(nil, marshalNoEscape(tmpl)), nil
}

// marshalNoEscape encodes v as compact JSON without HTML escaping, so "<"
// stays "<" as the model wrote it.
func marshalNoEscape(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return []byte("null")
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}
