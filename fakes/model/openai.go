package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"
)

// chatRequest is the part of an OpenAI chat completion request the server
// honours; temperature, n and the rest are accepted and ignored.
type chatRequest struct {
	Model               string         `json:"model"`
	Messages            []chatMessage  `json:"messages"`
	Stream              bool           `json:"stream"`
	StreamOptions       *streamOptions `json:"stream_options"`
	MaxTokens           *int           `json:"max_tokens"`
	MaxCompletionTokens *int           `json:"max_completion_tokens"`
	Stop                stringList     `json:"stop"`
	Seed                *int64         `json:"seed"`
}

type chatMessage struct {
	Role    string         `json:"role"`
	Content messageContent `json:"content"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// completionRequest is the part of an OpenAI (legacy) completion request the
// server honours.
type completionRequest struct {
	Model         string         `json:"model"`
	Prompt        stringList     `json:"prompt"`
	Stream        bool           `json:"stream"`
	StreamOptions *streamOptions `json:"stream_options"`
	MaxTokens     *int           `json:"max_tokens"`
	Stop          stringList     `json:"stop"`
	Seed          *int64         `json:"seed"`
}

// messageContent is a message's content: a string, or an array of parts of
// which the {"type":"text","text":...} ones count (joined by newlines).
type messageContent string

func (c *messageContent) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*c = ""
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*c = messageContent(s)
		return nil
	case len(b) > 0 && b[0] == '[':
		var parts []struct {
			Type string  `json:"type"`
			Text *string `json:"text"`
		}
		if err := json.Unmarshal(b, &parts); err != nil {
			return errors.New("message content parts must be objects like {\"type\":\"text\",\"text\":\"...\"}")
		}
		var texts []string
		for _, p := range parts {
			if (p.Type == "text" || p.Type == "") && p.Text != nil {
				texts = append(texts, *p.Text)
			}
		}
		*c = messageContent(strings.Join(texts, "\n"))
		return nil
	default:
		return errors.New("message content must be a string or an array of content parts")
	}
}

// stringList is a string or an array of strings (stop, prompt); a repeatable
// string flag too (see flags.go).
func (l *stringList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*l = nil
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*l = stringList{s}
		return nil
	default:
		var ss []string
		if err := json.Unmarshal(b, &ss); err != nil {
			return errors.New("stop and prompt must be a string or an array of strings")
		}
		*l = ss
		return nil
	}
}

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

func newUsage(prompt, completion int) *usage {
	return &usage{PromptTokens: prompt, CompletionTokens: completion, TotalTokens: prompt + completion}
}

type chatResponse struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []chatChoice `json:"choices"`
	Usage   *usage       `json:"usage"`
}

type chatChoice struct {
	Index        int            `json:"index"`
	Message      chatOutMessage `json:"message"`
	Logprobs     any            `json:"logprobs"`
	FinishReason string         `json:"finish_reason"`
}

type chatOutMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// chatChunk is one streamed chat event. Usage is omitted, or null on every
// chunk but the last when the client asked for usage, as OpenAI does.
type chatChunk struct {
	ID      string        `json:"id"`
	Object  string        `json:"object"`
	Created int64         `json:"created"`
	Model   string        `json:"model"`
	Choices []chunkChoice `json:"choices"`
	Usage   any           `json:"usage,omitempty"`
}

type chunkChoice struct {
	Index        int     `json:"index"`
	Delta        delta   `json:"delta"`
	Logprobs     any     `json:"logprobs"`
	FinishReason *string `json:"finish_reason"`
}

type delta struct {
	Role    string `json:"role,omitempty"`
	Content string `json:"content"`
}

// completionResponse is both the answer and the streamed chunk of
// /v1/completions (object "text_completion" in both).
type completionResponse struct {
	ID      string             `json:"id"`
	Object  string             `json:"object"`
	Created int64              `json:"created"`
	Model   string             `json:"model"`
	Choices []completionChoice `json:"choices"`
	Usage   any                `json:"usage,omitempty"`
}

type completionChoice struct {
	Index        int     `json:"index"`
	Text         string  `json:"text"`
	Logprobs     any     `json:"logprobs"`
	FinishReason *string `json:"finish_reason"`
}

// openAIJob checks what both OpenAI endpoints share and builds the job; on
// failure it has answered.
func (s *Server) openAIJob(w http.ResponseWriter, model string, maxTokens *int, seed *int64, stop []string,
	prompt, lastUser string, promptTokens int) (job, bool) {
	j, f := s.newOpenAIJob(model, maxTokens, seed, stop, prompt, lastUser, promptTokens)
	if f != nil {
		f.write(w, writeOpenAIError)
		return job{}, false
	}
	return j, true
}

// newOpenAIJob checks a completion request as vLLM's OpenAI server does
// (known model, max_tokens, injected failures, context length) and builds
// its job. The GraphQL chat mutation shares it.
func (s *Server) newOpenAIJob(model string, maxTokens *int, seed *int64, stop []string,
	prompt, lastUser string, promptTokens int) (job, *apiFailure) {
	if model == "" {
		model = s.cfg.ServedModelNames[0]
	}
	lora, ok := s.resolve(model)
	if !ok {
		return job{}, &apiFailure{status: http.StatusNotFound, msg: fmt.Sprintf("The model `%s` does not exist.", model)}
	}
	if maxTokens != nil && *maxTokens < 1 {
		return job{}, &apiFailure{status: http.StatusBadRequest, msg: fmt.Sprintf("max_tokens must be at least 1, got %d.", *maxTokens)}
	}
	if f := s.rollFailure(model); f != nil {
		return job{}, f
	}
	requested := 0
	if maxTokens != nil {
		requested = *maxTokens
	}
	if promptTokens+requested > s.cfg.MaxModelLen || promptTokens >= s.cfg.MaxModelLen {
		return job{}, &apiFailure{status: http.StatusBadRequest, msg: fmt.Sprintf(
			"This model's maximum context length is %d tokens. However, you requested %d tokens "+
				"(%d in the messages, %d in the completion). Please reduce the length of the messages or completion.",
			s.cfg.MaxModelLen, promptTokens+requested, promptTokens, requested)}
	}
	return job{
		lora:         lora,
		promptTokens: promptTokens,
		gen: genInput{
			mode:     s.cfg.Mode,
			seed:     s.seedFor(seed),
			model:    model,
			prompt:   prompt,
			lastUser: lastUser,
			budget:   s.budget(promptTokens, requested),
			stop:     stop,
		},
	}, nil
}

func (s *Server) handleChatCompletions(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	if s.refuse(w, r, writeOpenAIError) {
		return
	}
	var req chatRequest
	if !decodeBody(w, r, &req, writeOpenAIError) {
		return
	}
	if len(req.Messages) == 0 {
		writeOpenAIError(w, http.StatusBadRequest, "messages must be a non-empty array")
		return
	}
	var prompt strings.Builder
	var lastUser string
	promptTokens := 0
	for _, m := range req.Messages {
		content := string(m.Content)
		fmt.Fprintf(&prompt, "%s: %s\n", m.Role, content)
		promptTokens += CountTokens(content)
		if strings.EqualFold(m.Role, "user") {
			lastUser = content
		}
	}
	maxTokens := req.MaxTokens
	if req.MaxCompletionTokens != nil {
		maxTokens = req.MaxCompletionTokens
	}
	j, ok := s.openAIJob(w, req.Model, maxTokens, req.Seed, req.Stop, prompt.String(), lastUser, promptTokens)
	if !ok {
		return
	}
	id := "chatcmpl-" + newID()
	created := s.cfg.Clock.Now().Unix()
	model := j.gen.model
	s.openAIRun(w, r, j, arrived, req.Stream, req.StreamOptions != nil && req.StreamOptions.IncludeUsage, openAIShape{
		whole: func(text, finish string, u *usage) any {
			return chatResponse{
				ID: id, Object: "chat.completion", Created: created, Model: model,
				Choices: []chatChoice{{Message: chatOutMessage{Role: "assistant", Content: text}, FinishReason: finish}},
				Usage:   u,
			}
		},
		chunk: func(tok string, first bool, finish *string, u any) any {
			d := delta{Content: tok}
			if first {
				d.Role = "assistant"
			}
			return chatChunk{ID: id, Object: "chat.completion.chunk", Created: created, Model: model,
				Choices: []chunkChoice{{Delta: d, FinishReason: finish}}, Usage: u}
		},
		usage: func(u *usage) any {
			return chatChunk{ID: id, Object: "chat.completion.chunk", Created: created, Model: model, Choices: []chunkChoice{}, Usage: u}
		},
	})
}

func (s *Server) handleCompletions(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	if s.refuse(w, r, writeOpenAIError) {
		return
	}
	var req completionRequest
	if !decodeBody(w, r, &req, writeOpenAIError) {
		return
	}
	if len(req.Prompt) == 0 {
		writeOpenAIError(w, http.StatusBadRequest, "prompt must be a string or a non-empty array of strings")
		return
	}
	// Several prompts are read as one, joined by newlines (n is always 1).
	prompt := strings.Join(req.Prompt, "\n")
	j, ok := s.openAIJob(w, req.Model, req.MaxTokens, req.Seed, req.Stop, prompt, prompt, CountTokens(prompt))
	if !ok {
		return
	}
	id := "cmpl-" + newID()
	created := s.cfg.Clock.Now().Unix()
	model := j.gen.model
	s.openAIRun(w, r, j, arrived, req.Stream, req.StreamOptions != nil && req.StreamOptions.IncludeUsage, openAIShape{
		whole: func(text, finish string, u *usage) any {
			return completionResponse{ID: id, Object: "text_completion", Created: created, Model: model,
				Choices: []completionChoice{{Text: text, FinishReason: &finish}}, Usage: u}
		},
		chunk: func(tok string, _ bool, finish *string, u any) any {
			return completionResponse{ID: id, Object: "text_completion", Created: created, Model: model,
				Choices: []completionChoice{{Text: tok, FinishReason: finish}}, Usage: u}
		},
		usage: func(u *usage) any {
			return completionResponse{ID: id, Object: "text_completion", Created: created, Model: model,
				Choices: []completionChoice{}, Usage: u}
		},
	})
}

// openAIShape builds the objects of one OpenAI endpoint's answers.
type openAIShape struct {
	// whole is the non-streamed answer.
	whole func(text, finish string, u *usage) any
	// chunk is one SSE chunk: a token, whether it is the first, the finish
	// reason on the last, and the usage field (nil, or null when the
	// client asked for usage, as OpenAI sends it).
	chunk func(tok string, first bool, finish *string, u any) any
	// usage is the last chunk, with no choices, when the client asked for it.
	usage func(u *usage) any
}

// openAIRun runs j and answers as OpenAI does: one JSON object, or SSE
// chunks (one per token; an empty answer still sends one chunk with the
// finish reason), then the usage chunk when asked for, then [DONE].
func (s *Server) openAIRun(w http.ResponseWriter, r *http.Request, j job, arrived time.Time, stream, includeUsage bool, shape openAIShape) {
	ans, rng := s.plan(j)
	if !stream {
		var text strings.Builder
		_, err := s.run(r.Context(), j, ans, rng, arrived, func(tok string) error {
			text.WriteString(tok)
			return nil
		})
		if err != nil {
			if status, msg, ok := runError(err); ok {
				writeOpenAIError(w, status, msg)
			}
			return
		}
		writeJSON(w, http.StatusOK, shape.whole(text.String(), ans.finish, newUsage(j.promptTokens, len(ans.tokens))))
		return
	}
	var nullUsage any
	if includeUsage {
		nullUsage = json.RawMessage("null") // present but null, as OpenAI sends
	}
	sse := newSSEWriter(w)
	n := 0
	_, err := s.run(r.Context(), j, ans, rng, arrived, func(tok string) error {
		var finish *string
		if n++; n == len(ans.tokens) {
			finish = &ans.finish
		}
		return sse.event(shape.chunk(tok, n == 1, finish, nullUsage))
	})
	if err != nil {
		sse.fail(err)
		return
	}
	if len(ans.tokens) == 0 {
		if err := sse.event(shape.chunk("", true, &ans.finish, nullUsage)); err != nil {
			return
		}
	}
	if includeUsage {
		if err := sse.event(shape.usage(newUsage(j.promptTokens, len(ans.tokens)))); err != nil {
			return
		}
	}
	sse.done()
}

// modelCard is one entry of GET /v1/models, in vLLM's shape.
type modelCard struct {
	ID          string  `json:"id"`
	Object      string  `json:"object"`
	Created     int64   `json:"created"`
	OwnedBy     string  `json:"owned_by"`
	Root        string  `json:"root"`
	Parent      *string `json:"parent"`
	MaxModelLen int     `json:"max_model_len,omitempty"`
}

func (s *Server) handleModels(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, struct {
		Object string      `json:"object"`
		Data   []modelCard `json:"data"`
	}{"list", s.modelCards()})
}

// modelCards lists the models the server accepts, as GET /v1/models shows
// them: --model and the served names (each once), then the LoRA adapters,
// whose parent is --model.
func (s *Server) modelCards() []modelCard {
	created := s.started.Unix()
	var cards []modelCard
	seen := map[string]bool{}
	for _, name := range append([]string{s.cfg.Model}, s.cfg.ServedModelNames...) {
		if seen[name] {
			continue
		}
		seen[name] = true
		cards = append(cards, modelCard{ID: name, Object: "model", Created: created, OwnedBy: "vllm",
			Root: s.cfg.Model, MaxModelLen: s.cfg.MaxModelLen})
	}
	for _, name := range s.cfg.LoRAModules {
		parent := s.cfg.Model
		cards = append(cards, modelCard{ID: name, Object: "model", Created: created, OwnedBy: "vllm",
			Root: name, Parent: &parent})
	}
	return cards
}

// refuse answers requests the server will not take: after Close, and those
// whose X-Return-Error header asks for an error. It says whether it answered.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, fail errorWriter) bool {
	if s.isClosed() {
		fail(w, http.StatusServiceUnavailable, errClosed.Error())
		return true
	}
	return forcedError(w, r, fail)
}

// sseWriter writes server-sent events, flushing each at once. The 200 status
// goes out with the first event, so a request that fails while it waits for a
// slot still gets a proper error status.
type sseWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	started bool
}

func newSSEWriter(w http.ResponseWriter) *sseWriter {
	return &sseWriter{w: w, rc: http.NewResponseController(w)}
}

func (e *sseWriter) start() {
	if e.started {
		return
	}
	e.started = true
	h := e.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	e.w.WriteHeader(http.StatusOK)
}

func (e *sseWriter) event(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	return e.write("data: " + string(b) + "\n\n")
}

func (e *sseWriter) write(s string) error {
	e.start()
	if _, err := e.w.Write([]byte(s)); err != nil {
		return fmt.Errorf("write event: %w", err)
	}
	if err := e.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return fmt.Errorf("flush event: %w", err)
	}
	return nil
}

func (e *sseWriter) done() { _ = e.write("data: [DONE]\n\n") }

// fail ends the stream after a failed run: an error status when nothing was
// sent yet, else an error event and [DONE], as vLLM does. A gone client gets
// nothing.
func (e *sseWriter) fail(err error) {
	status, msg, ok := runError(err)
	if !ok {
		return
	}
	if !e.started {
		writeOpenAIError(e.w, status, msg)
		return
	}
	if e.event(openAIErrorBody{Error: openAIError{Message: msg, Type: openAIErrorType(status), Code: status}}) == nil {
		e.done()
	}
}

// newID returns a random response id suffix; ids need not be reproducible.
func newID() string {
	return fmt.Sprintf("%016x%016x", rand.Uint64(), rand.Uint64())
}
