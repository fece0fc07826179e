package model

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/ollama/ollama/api"
	ollamamodel "github.com/ollama/ollama/types/model"
)

// ollamaVersion is what GET /api/version reports: the Ollama release whose
// API types this server speaks.
const ollamaVersion = "0.17.4"

// resolveOllama finds a model as Ollama does, where "qwen" and
// "qwen:latest" are one name.
func (s *Server) resolveOllama(name string) (lora string, ok bool) {
	if lora, ok := s.resolve(name); ok {
		return lora, true
	}
	if base, found := strings.CutSuffix(name, ":latest"); found {
		return s.resolve(base)
	}
	if !strings.Contains(name, ":") {
		return s.resolve(name + ":latest")
	}
	return "", false
}

// ollamaOptions are the request options the server honours.
type ollamaOptions struct {
	numPredict int // <= 0: unbounded (Ollama's -1 and -2)
	stop       []string
	seed       *int64
}

func parseOllamaOptions(m map[string]any) (ollamaOptions, error) {
	var o ollamaOptions
	if v, ok := m["num_predict"]; ok && v != nil {
		n, err := optionInt("num_predict", v)
		if err != nil {
			return o, err
		}
		o.numPredict = int(max(min(n, math.MaxInt32), math.MinInt32))
	}
	if v, ok := m["seed"]; ok && v != nil {
		n, err := optionInt("seed", v)
		if err != nil {
			return o, err
		}
		o.seed = &n
	}
	switch v := m["stop"].(type) {
	case nil:
	case string:
		o.stop = []string{v}
	case []any:
		for _, e := range v {
			str, ok := e.(string)
			if !ok {
				return o, errors.New("option \"stop\" must be a string or an array of strings")
			}
			o.stop = append(o.stop, str)
		}
	default:
		return o, errors.New("option \"stop\" must be a string or an array of strings")
	}
	return o, nil
}

func optionInt(name string, v any) (int64, error) {
	f, ok := v.(float64)
	if !ok || f != math.Trunc(f) || math.IsInf(f, 0) || f >= math.MaxInt64 || f < math.MinInt64 {
		return 0, fmt.Errorf("option %q must be an integer", name)
	}
	return int64(f), nil
}

// ollamaJob checks what /api/chat and /api/generate share and builds the
// job; on failure it has answered.
func (s *Server) ollamaJob(w http.ResponseWriter, model string, options map[string]any, prompt, lastUser string, promptTokens int) (job, bool) {
	if model == "" {
		writeOllamaError(w, http.StatusBadRequest, "model is required")
		return job{}, false
	}
	lora, ok := s.resolveOllama(model)
	if !ok {
		writeOllamaError(w, http.StatusNotFound, fmt.Sprintf("model %q not found, try pulling it first", model))
		return job{}, false
	}
	opts, err := parseOllamaOptions(options)
	if err != nil {
		writeOllamaError(w, http.StatusBadRequest, err.Error())
		return job{}, false
	}
	if s.injectedFailure(w, model, writeOllamaError) {
		return job{}, false
	}
	if promptTokens >= s.cfg.MaxModelLen {
		writeOllamaError(w, http.StatusBadRequest, fmt.Sprintf(
			"prompt is %d tokens, more than the model's context length of %d", promptTokens, s.cfg.MaxModelLen))
		return job{}, false
	}
	return job{
		lora:         lora,
		promptTokens: promptTokens,
		gen: genInput{
			mode:     s.cfg.Mode,
			seed:     s.seedFor(opts.seed),
			model:    model,
			prompt:   prompt,
			lastUser: lastUser,
			// Ollama ends at the context instead of refusing.
			budget: s.budget(promptTokens, opts.numPredict),
			stop:   opts.stop,
		},
	}, true
}

func (s *Server) handleOllamaChat(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	if s.refuse(w, r, writeOllamaError) {
		return
	}
	var req api.ChatRequest
	if !decodeBody(w, r, &req, writeOllamaError) {
		return
	}
	var prompt strings.Builder
	var lastUser string
	promptTokens := 0
	for _, m := range req.Messages {
		fmt.Fprintf(&prompt, "%s: %s\n", m.Role, m.Content)
		promptTokens += CountTokens(m.Content)
		if m.Role == "user" {
			lastUser = m.Content
		}
	}
	j, ok := s.ollamaJob(w, req.Model, req.Options, prompt.String(), lastUser, promptTokens)
	if !ok {
		return
	}
	if len(req.Messages) == 0 {
		// Ollama answers an empty chat by loading the model.
		writeJSON(w, http.StatusOK, api.ChatResponse{Model: req.Model, CreatedAt: s.cfg.Clock.Now().UTC(),
			Message: api.Message{Role: "assistant"}, Done: true, DoneReason: "load"})
		return
	}
	s.ollamaRun(w, r, j, arrived, req.Stream == nil || *req.Stream,
		func(tok string) any {
			return api.ChatResponse{Model: req.Model, CreatedAt: s.cfg.Clock.Now().UTC(),
				Message: api.Message{Role: "assistant", Content: tok}}
		},
		func(text, reason string, m api.Metrics) any {
			return api.ChatResponse{Model: req.Model, CreatedAt: s.cfg.Clock.Now().UTC(),
				Message: api.Message{Role: "assistant", Content: text}, Done: true, DoneReason: reason, Metrics: m}
		})
}

func (s *Server) handleOllamaGenerate(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	if s.refuse(w, r, writeOllamaError) {
		return
	}
	var req api.GenerateRequest
	if !decodeBody(w, r, &req, writeOllamaError) {
		return
	}
	prompt := req.Prompt
	if req.System != "" {
		prompt = req.System + "\n" + req.Prompt
	}
	j, ok := s.ollamaJob(w, req.Model, req.Options, prompt, req.Prompt, CountTokens(prompt))
	if !ok {
		return
	}
	if req.Prompt == "" {
		writeJSON(w, http.StatusOK, api.GenerateResponse{Model: req.Model, CreatedAt: s.cfg.Clock.Now().UTC(),
			Done: true, DoneReason: "load"})
		return
	}
	s.ollamaRun(w, r, j, arrived, req.Stream == nil || *req.Stream,
		func(tok string) any {
			return api.GenerateResponse{Model: req.Model, CreatedAt: s.cfg.Clock.Now().UTC(), Response: tok}
		},
		func(text, reason string, m api.Metrics) any {
			return api.GenerateResponse{Model: req.Model, CreatedAt: s.cfg.Clock.Now().UTC(),
				Response: text, Done: true, DoneReason: reason, Metrics: m}
		})
}

// ollamaRun runs j and answers as Ollama does: NDJSON, one object per token
// and a final done object, or one done object when not streaming.
func (s *Server) ollamaRun(w http.ResponseWriter, r *http.Request, j job, arrived time.Time, stream bool,
	chunk func(tok string) any, final func(text, reason string, m api.Metrics) any) {
	ans, rng := s.plan(j)
	metricsOf := func(tm timing) api.Metrics {
		return api.Metrics{
			TotalDuration:      tm.total(),
			LoadDuration:       tm.queued(), // waiting for a slot stands in for loading
			PromptEvalCount:    j.promptTokens,
			PromptEvalDuration: tm.prefill(),
			EvalCount:          len(ans.tokens),
			EvalDuration:       tm.decode(),
		}
	}
	if !stream {
		var text strings.Builder
		tm, err := s.run(r.Context(), j, ans, rng, arrived, func(tok string) error {
			text.WriteString(tok)
			return nil
		})
		if err != nil {
			if status, msg, ok := runError(err); ok {
				writeOllamaError(w, status, msg)
			}
			return
		}
		writeJSON(w, http.StatusOK, final(text.String(), ans.finish, metricsOf(tm)))
		return
	}
	nd := &ndjsonWriter{w: w, rc: http.NewResponseController(w)}
	tm, err := s.run(r.Context(), j, ans, rng, arrived, func(tok string) error {
		return nd.line(chunk(tok))
	})
	if err != nil {
		status, msg, ok := runError(err)
		switch {
		case !ok:
		case !nd.started:
			writeOllamaError(w, status, msg)
		default:
			_ = nd.line(struct {
				Error string `json:"error"`
			}{msg})
		}
		return
	}
	_ = nd.line(final("", ans.finish, metricsOf(tm)))
}

// ndjsonWriter writes one JSON object a line, flushing each at once; the 200
// status goes out with the first line.
type ndjsonWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	started bool
}

func (n *ndjsonWriter) line(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode line: %w", err)
	}
	if !n.started {
		n.started = true
		n.w.Header().Set("Content-Type", "application/x-ndjson")
		n.w.WriteHeader(http.StatusOK)
	}
	if _, err := n.w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write line: %w", err)
	}
	if err := n.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return fmt.Errorf("flush line: %w", err)
	}
	return nil
}

// ollamaDetails describes a model (or adapter, with its parent) to Ollama
// clients.
func (s *Server) ollamaDetails(lora string) api.ModelDetails {
	d := api.ModelDetails{Format: "gguf", Family: "gatecheck", Families: []string{"gatecheck"},
		ParameterSize: "0B", QuantizationLevel: "F16"}
	if lora != "" {
		d.ParentModel = s.cfg.Model
	}
	return d
}

func (s *Server) handleOllamaTags(w http.ResponseWriter, _ *http.Request) {
	var list api.ListResponse
	seen := map[string]bool{}
	add := func(name, lora string) {
		if seen[name] {
			return
		}
		seen[name] = true
		sum := sha256.Sum256([]byte(name))
		list.Models = append(list.Models, api.ListModelResponse{
			Name: name, Model: name, ModifiedAt: s.started.UTC(), Size: 1 << 20,
			Digest: hex.EncodeToString(sum[:]), Details: s.ollamaDetails(lora),
		})
	}
	add(s.cfg.Model, "")
	for _, n := range s.cfg.ServedModelNames {
		add(n, "")
	}
	for _, n := range s.cfg.LoRAModules {
		add(n, n)
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) handleOllamaShow(w http.ResponseWriter, r *http.Request) {
	var req api.ShowRequest
	if !decodeBody(w, r, &req, writeOllamaError) {
		return
	}
	name := req.Model
	if name == "" {
		name = req.Name
	}
	if name == "" {
		writeOllamaError(w, http.StatusBadRequest, "model is required")
		return
	}
	lora, ok := s.resolveOllama(name)
	if !ok {
		writeOllamaError(w, http.StatusNotFound, fmt.Sprintf("model '%s' not found", name))
		return
	}
	writeJSON(w, http.StatusOK, api.ShowResponse{
		Modelfile:  fmt.Sprintf("FROM %s\n", s.cfg.Model),
		Parameters: fmt.Sprintf("num_ctx %d", s.cfg.MaxModelLen),
		Template:   "{{ .Prompt }}",
		Details:    s.ollamaDetails(lora),
		ModelInfo: map[string]any{
			"general.architecture":     "gatecheck",
			"general.basename":         s.cfg.Model,
			"gatecheck.context_length": s.cfg.MaxModelLen,
		},
		Capabilities: []ollamamodel.Capability{ollamamodel.CapabilityCompletion},
		ModifiedAt:   s.started.UTC(),
	})
}

func (s *Server) handleOllamaVersion(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"version": ollamaVersion})
}
