package conformance

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/gatecheck/gatecheck/internal/apigeeapi"
)

// exchange is one request and its answer, as the assertions see it.
type exchange struct {
	status  int
	header  http.Header
	body    []byte // as received (an SSE or NDJSON stream for streamed answers)
	text    string // the answer's text: content joined across chunks
	usage   *usage
	traceID string
	err     error // a transport error: the request got no answer
}

type usage struct{ prompt, completion, total int64 }

// credentials are the flags every traffic command shares.
type credentials struct {
	key, bearer, keyQuery string
	noKey                 bool
	headers               headerList
}

type headerList []string

func (h *headerList) String() string     { return strings.Join(*h, ",") }
func (h *headerList) Set(v string) error { *h = append(*h, v); return nil }

func (c *credentials) register(fs *flag.FlagSet) {
	fs.StringVar(&c.key, "key", "", "API key to send in x-api-key (default $KEY, else the target's default key)")
	fs.BoolVar(&c.noKey, "no-key", false, "send no API key")
	fs.StringVar(&c.bearer, "bearer", "", "send Authorization: Bearer TOKEN instead of a key")
	fs.StringVar(&c.keyQuery, "key-query", "", "send the key in this query parameter instead of x-api-key")
	fs.Var(&c.headers, "header", "extra header NAME:VALUE (repeatable)")
}

// apply adds the credential and extra headers to a request.
func (c *credentials) apply(ts *testscript.TestScript, req *http.Request) error {
	for _, h := range c.headers {
		k, v, ok := strings.Cut(h, ":")
		if !ok {
			return usagef("--header %q: want NAME:VALUE", h)
		}
		req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
		return nil
	}
	if c.noKey {
		return nil
	}
	key := c.key
	if key == "" {
		key = ts.Getenv("KEY")
	}
	if key == "" {
		key = ts.Getenv("DEFAULT_KEY")
	}
	if key == "" {
		return nil
	}
	if c.keyQuery != "" {
		q := req.URL.Query()
		q.Set(c.keyQuery, key)
		req.URL.RawQuery = q.Encode()
		return nil
	}
	req.Header.Set("x-api-key", key)
	return nil
}

func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// send makes a request through the gateway and reads the whole answer,
// understanding OpenAI SSE and Ollama NDJSON streams.
func (s *scenario) send(ts *testscript.TestScript, method, path string, body []byte, contentType string, c *credentials) *exchange {
	target := s.target.GatewayURL() + path
	req, err := http.NewRequestWithContext(s.ctx, method, target, bytes.NewReader(body))
	if err != nil {
		return &exchange{err: err}
	}
	if body != nil && contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if err := c.apply(ts, req); err != nil {
		return &exchange{err: err}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return &exchange{err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	x := &exchange{status: resp.StatusCode, header: resp.Header, body: raw, traceID: resp.Header.Get("x-gatecheck-trace-id"), err: err}
	x.parse(resp.Header.Get("Content-Type"))
	return x
}

// parse fills text and usage from an OpenAI or Ollama answer, streamed or not.
func (x *exchange) parse(contentType string) {
	switch {
	case strings.HasPrefix(contentType, "text/event-stream"):
		var text strings.Builder
		sc := bufio.NewScanner(bytes.NewReader(x.body))
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok || data == "[DONE]" {
				continue
			}
			var chunk openAIAnswer
			if json.Unmarshal([]byte(data), &chunk) != nil {
				continue
			}
			for _, c := range chunk.Choices {
				text.WriteString(c.Delta.Content)
				text.WriteString(c.Text)
			}
			if chunk.Usage != nil {
				x.usage = chunk.Usage.usage()
			}
		}
		x.text = text.String()
	case strings.HasPrefix(contentType, "application/x-ndjson"):
		var text strings.Builder
		for _, line := range bytes.Split(x.body, []byte("\n")) {
			var chunk ollamaAnswer
			if len(bytes.TrimSpace(line)) == 0 || json.Unmarshal(line, &chunk) != nil {
				continue
			}
			text.WriteString(chunk.Message.Content)
			text.WriteString(chunk.Response)
			if chunk.Done {
				x.usage = &usage{prompt: chunk.PromptEvalCount, completion: chunk.EvalCount, total: chunk.PromptEvalCount + chunk.EvalCount}
			}
		}
		x.text = text.String()
	default:
		var oa openAIAnswer
		if json.Unmarshal(x.body, &oa) == nil && (len(oa.Choices) > 0 || oa.Usage != nil) {
			for _, c := range oa.Choices {
				x.text += c.Message.Content + c.Text
			}
			if oa.Usage != nil {
				x.usage = oa.Usage.usage()
			}
			return
		}
		var ol ollamaAnswer
		if json.Unmarshal(x.body, &ol) == nil && ol.Done {
			x.text = ol.Message.Content + ol.Response
			x.usage = &usage{prompt: ol.PromptEvalCount, completion: ol.EvalCount, total: ol.PromptEvalCount + ol.EvalCount}
			return
		}
		x.text = string(x.body)
	}
}

type openAIAnswer struct {
	Choices []struct {
		Message struct {
			Content string `json:"content"`
		} `json:"message"`
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"`
		Text string `json:"text"`
	} `json:"choices"`
	Usage *openAIUsage `json:"usage"`
}

type openAIUsage struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	TotalTokens      int64 `json:"total_tokens"`
}

func (u *openAIUsage) usage() *usage {
	return &usage{prompt: u.PromptTokens, completion: u.CompletionTokens, total: u.TotalTokens}
}

type ollamaAnswer struct {
	Message struct {
		Content string `json:"content"`
	} `json:"message"`
	Response        string `json:"response"`
	Done            bool   `json:"done"`
	PromptEvalCount int64  `json:"prompt_eval_count"`
	EvalCount       int64  `json:"eval_count"`
}

// fault reads Apigee's fault JSON from an answer.
func (x *exchange) fault() (apigeeapi.Fault, bool) {
	var f apigeeapi.Fault
	if json.Unmarshal(x.body, &f) != nil || f.Fault.Detail.ErrorCode == "" {
		return f, false
	}
	return f, true
}

// describe is a short account of an answer for failure messages.
func (x *exchange) describe() string {
	if x == nil {
		return "no request has been made"
	}
	if x.err != nil {
		return "the request failed: " + x.err.Error()
	}
	body := string(x.body)
	if len(body) > 300 {
		body = body[:300] + "…"
	}
	return fmt.Sprintf("answer %d: %s", x.status, strings.TrimSpace(body))
}

// trafficFunc sends one request built from a command's arguments.
type trafficFunc func(ts *testscript.TestScript, s *scenario, args []string) (*exchange, error)

// chatRequest builds and sends an OpenAI chat or completion request.
func chatRequest(kind string) trafficFunc {
	return func(ts *testscript.TestScript, s *scenario, args []string) (*exchange, error) {
		fs := newFlags(kind)
		var c credentials
		c.register(fs)
		model := fs.String("model", "", "model (default $MODEL; - for none)")
		stream := fs.Bool("stream", false, "stream the answer (SSE), with usage in the last chunk")
		maxTokens := fs.Int("max-tokens", 0, "max_tokens")
		system := fs.String("system", "", "a system message before the prompt")
		path := fs.String("path", "", "request path (default /v1/chat/completions or /v1/completions)")
		if err := fs.Parse(args); err != nil {
			return nil, usagef("%v", err)
		}
		prompt := strings.Join(fs.Args(), " ")
		if *model == "" {
			*model = ts.Getenv("MODEL")
		}
		body := map[string]any{"model": *model}
		p := "/v1/chat/completions"
		if kind == "complete" {
			p = "/v1/completions"
			body["prompt"] = prompt
		} else {
			var msgs []map[string]string
			if *system != "" {
				msgs = append(msgs, map[string]string{"role": "system", "content": *system})
			}
			body["messages"] = append(msgs, map[string]string{"role": "user", "content": prompt})
		}
		if *model == "-" {
			delete(body, "model")
		}
		if *stream {
			body["stream"] = true
			body["stream_options"] = map[string]bool{"include_usage": true}
		}
		if *maxTokens > 0 {
			body["max_tokens"] = *maxTokens
		}
		if *path != "" {
			p = *path
		}
		b, _ := json.Marshal(body)
		return s.send(ts, http.MethodPost, p, b, "application/json", &c), nil
	}
}

// ollamaRequest sends an Ollama /api/chat or /api/generate request, the
// shape github.com/ollama/ollama/api sends.
func ollamaRequest(kind string) trafficFunc {
	return func(ts *testscript.TestScript, s *scenario, args []string) (*exchange, error) {
		fs := newFlags(kind)
		var c credentials
		c.register(fs)
		model := fs.String("model", "", "model (default $MODEL; - for none)")
		stream := fs.Bool("stream", false, "stream the answer (NDJSON); without it the request says stream:false")
		numPredict := fs.Int("num-predict", 0, "options.num_predict")
		if err := fs.Parse(args); err != nil {
			return nil, usagef("%v", err)
		}
		if *model == "" {
			*model = ts.Getenv("MODEL")
		}
		prompt := strings.Join(fs.Args(), " ")
		body := map[string]any{"model": *model, "stream": *stream}
		if *model == "-" {
			delete(body, "model")
		}
		path := "/api/chat"
		if kind == "ollama-generate" {
			path = "/api/generate"
			body["prompt"] = prompt
		} else {
			body["messages"] = []map[string]string{{"role": "user", "content": prompt}}
		}
		if *numPredict > 0 {
			body["options"] = map[string]int{"num_predict": *numPredict}
		}
		b, _ := json.Marshal(body)
		return s.send(ts, http.MethodPost, path, b, "application/json", &c), nil
	}
}

// rawRequest sends any request: request METHOD PATH [--body FILE].
func rawRequest(ts *testscript.TestScript, s *scenario, args []string) (*exchange, error) {
	fs := newFlags("request")
	var c credentials
	c.register(fs)
	bodyFile := fs.String("body", "", "file (in the scenario) whose contents are the body")
	contentType := fs.String("content-type", "application/json", "Content-Type of the body")
	if err := fs.Parse(args); err != nil {
		return nil, usagef("%v", err)
	}
	if fs.NArg() != 2 {
		return nil, usagef("want METHOD PATH")
	}
	method, path := strings.ToUpper(fs.Arg(0)), fs.Arg(1)
	if !strings.HasPrefix(path, "/") {
		return nil, usagef("PATH %q must start with /", path)
	}
	if _, err := url.ParseRequestURI(path); err != nil {
		return nil, usagef("PATH %q: %v", path, err)
	}
	var body []byte
	if *bodyFile != "" {
		body = []byte(ts.ReadFile(*bodyFile))
	}
	return s.send(ts, method, path, body, *contentType, &c), nil
}
