package policy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"math"
	"mime"
	"strconv"
	"strings"
)

// LLMTokenQuota is a quota counted in model tokens, per identifier and per
// model. It runs as a pair: on the request it checks that the budget is not
// spent (EnforceOnly), on the response it counts the tokens the answer used
// (CountOnly). Without either element it does what its phase allows:
// enforce on the request, count on the response. Give the pair the same
// SharedName so they share a counter.
//
// The tokens are LLMTokenUsageSource's value (default
// {jsonPath('$.usage.total_tokens',response.content,true)}); when that is not
// an integer — Ollama answers, streamed answers — TokenUsage reads the
// answer instead. The model is LLMModelSource's value (default
// {jsonPath('$.model',request.content,true)}) and is part of the counter key.
type LLMTokenQuota struct {
	name        string
	core        quotaCore
	usageSource template
	modelSource template
}

const (
	defaultUsageSource = "{jsonPath('$.usage.total_tokens',response.content,true)}"
	defaultModelSource = "{jsonPath('$.model',request.content,true)}"
)

type xmlLLMTokenQuota struct {
	xmlQuotaCommon
	LLMTokenUsageSource *string `xml:"LLMTokenUsageSource"`
	LLMModelSource      *string `xml:"LLMModelSource"`
}

func parseLLMTokenQuota(data []byte, env Env) (Policy, error) {
	var x xmlLLMTokenQuota
	pe, err := decodePolicy("LLMTokenQuota", data, &x, &x.xmlCommon,
		append([]string{"LLMTokenUsageSource", "LLMModelSource"}, quotaCommonElements...), []string{"type"})
	if err != nil {
		return nil, err
	}
	core, err := parseQuotaCore(pe, &x.xmlQuotaCommon, env)
	if err != nil {
		return nil, err
	}
	p := &LLMTokenQuota{name: x.Name, core: core}
	if p.usageSource, err = sourceElem(pe, "LLMTokenUsageSource", x.LLMTokenUsageSource, defaultUsageSource); err != nil {
		return nil, err
	}
	if p.modelSource, err = sourceElem(pe, "LLMModelSource", x.LLMModelSource, defaultModelSource); err != nil {
		return nil, err
	}
	return p, nil
}

// sourceElem compiles an optional template element, with a default.
func sourceElem(pe perr, elem string, v *string, def string) (template, error) {
	src := def
	if v != nil {
		src = strings.TrimSpace(*v)
		if src == "" {
			return template{}, pe.elem(elem, "empty")
		}
	}
	return pe.compile(elem, src)
}

// Name returns the policy's name.
func (p *LLMTokenQuota) Name() string { return p.name }

// Kind returns "LLMTokenQuota".
func (p *LLMTokenQuota) Kind() string { return "LLMTokenQuota" }

// Apply enforces or counts (see LLMTokenQuota). It sets the same
// ratelimit.{name}.* variables as Quota, and on counting
// llmtokenquota.{name}.tokens (the tokens counted) and
// llmtokenquota.{name}.usage.found (false when the answer carried no usage;
// nothing is counted then).
func (p *LLMTokenQuota) Apply(ctx context.Context, m *Message) (*Fault, error) {
	l, skip, f := p.core.resolve(m)
	if f != nil || skip {
		return f, nil
	}
	enforce := p.core.enforceOnly || (!p.core.countOnly && m.Phase == Request)
	id := p.core.identify(m)
	model, _ := p.modelSource.eval(m)
	if model == "" {
		model = "_default"
	}
	extra := "model=" + model
	if enforce {
		ok, err := p.core.take(ctx, m, "llmtokenquota", id, extra, l, 0, true, false)
		if err != nil || ok {
			return nil, err
		}
		return faultLLMTokenQuota.fault(id), nil
	}
	tokens, found := p.tokens(m)
	v := m.vars()
	v.Set("llmtokenquota."+p.name+".tokens", strconv.FormatInt(tokens, 10))
	v.Set("llmtokenquota."+p.name+".usage.found", strconv.FormatBool(found))
	_, err := p.core.take(ctx, m, "llmtokenquota", id, extra, l, tokens, false, true)
	return nil, err
}

// tokens reads the tokens the answer used.
func (p *LLMTokenQuota) tokens(m *Message) (int64, bool) {
	if s, ok := p.usageSource.eval(m); ok {
		if n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil && n >= 0 {
			return n, true
		}
	}
	var ct string
	if m.ResponseHeader != nil {
		ct = m.ResponseHeader.Get("Content-Type")
	}
	_, _, total, ok := TokenUsage(m.ResponseBody, ct)
	return total, ok
}

// TokenUsage reads the token counts of a model server's answer: an OpenAI
// JSON answer (usage.prompt_tokens, completion_tokens, total_tokens; also
// input_tokens/output_tokens), an Ollama JSON answer (prompt_eval_count,
// eval_count), a streamed OpenAI answer as server-sent events (the last
// data: chunk that carries usage — sent when the client asked for
// stream_options.include_usage), or a streamed Ollama answer as NDJSON (the
// last object with counts, the done:true one). contentType may be empty; the
// body's shape decides then. ok is false when no counts were found. A total
// missing from the answer is prompt + completion.
func TokenUsage(body []byte, contentType string) (prompt, completion, total int64, ok bool) {
	mt, _, _ := mime.ParseMediaType(contentType)
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return 0, 0, 0, false
	}
	if mt == "text/event-stream" || (trimmed[0] != '{' && trimmed[0] != '[') {
		return sseUsage(body)
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	var u usageDoc
	if err := dec.Decode(&u); err == nil && !dec.More() && mt != "application/x-ndjson" {
		return u.tokens()
	}
	return ndjsonUsage(body)
}

// usageDoc is the part of an answer (or a chunk of one) that carries counts.
type usageDoc struct {
	Usage *struct {
		PromptTokens     *float64 `json:"prompt_tokens"`
		CompletionTokens *float64 `json:"completion_tokens"`
		TotalTokens      *float64 `json:"total_tokens"`
		InputTokens      *float64 `json:"input_tokens"`
		OutputTokens     *float64 `json:"output_tokens"`
	} `json:"usage"`
	PromptEvalCount *float64 `json:"prompt_eval_count"`
	EvalCount       *float64 `json:"eval_count"`
}

func (u usageDoc) tokens() (prompt, completion, total int64, ok bool) {
	if us := u.Usage; us != nil {
		p, pok := firstNum(us.PromptTokens, us.InputTokens)
		c, cok := firstNum(us.CompletionTokens, us.OutputTokens)
		t, tok := firstNum(us.TotalTokens)
		if pok || cok || tok {
			if !tok {
				t = p + c
			}
			return p, c, t, true
		}
	}
	p, pok := firstNum(u.PromptEvalCount)
	c, cok := firstNum(u.EvalCount)
	if pok || cok {
		return p, c, p + c, true
	}
	return 0, 0, 0, false
}

func firstNum(vals ...*float64) (int64, bool) {
	for _, v := range vals {
		if v != nil && *v >= 0 && !math.IsInf(*v, 0) && !math.IsNaN(*v) {
			return int64(math.Min(*v, math.MaxInt64/4)), true
		}
	}
	return 0, false
}

func sseUsage(body []byte) (prompt, completion, total int64, ok bool) {
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 64*1024), len(body)+1)
	for sc.Scan() {
		data, found := strings.CutPrefix(sc.Text(), "data:")
		if !found {
			continue
		}
		data = strings.TrimSpace(data)
		if data == "" || data == "[DONE]" {
			continue
		}
		var u usageDoc
		if json.Unmarshal([]byte(data), &u) != nil {
			continue
		}
		if p, c, t, found := u.tokens(); found {
			prompt, completion, total, ok = p, c, t, true
		}
	}
	return prompt, completion, total, ok
}

func ndjsonUsage(body []byte) (prompt, completion, total int64, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		var u usageDoc
		if err := dec.Decode(&u); err != nil {
			return prompt, completion, total, ok
		}
		if p, c, t, found := u.tokens(); found {
			prompt, completion, total, ok = p, c, t, true
		}
	}
}
