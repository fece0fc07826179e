package policy

import (
	"context"
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf8"

	"github.com/gatecheck/gatecheck/fakes/apigee/state"
)

// PromptTokenLimit limits the prompt tokens an identifier may send per
// second or minute: Rate "1000pm" admits prompts while the tokens of the
// last minute, this prompt's included, stay within 1000 (a sliding count in
// 10 sub-buckets, like SpikeArrest with UseEffectiveCount). The prompt is
// UserPromptSource's value (default
// {jsonPath('$.messages[-1].content',request.content,true)}), counted with
// CountTokens. A refusal is 429 policies.prompttokenlimit.PromptTokenLimitViolation.
type PromptTokenLimit struct {
	name       string
	rate       rate
	rateRef    string
	identifier *template
	source     template
	env        Env
}

const defaultPromptSource = "{jsonPath('$.messages[-1].content',request.content,true)}"

type xmlPromptTokenLimit struct {
	xmlCommon
	Identifier       *xmlRef `xml:"Identifier"`
	Rate             *xmlRef `xml:"Rate"`
	UserPromptSource *string `xml:"UserPromptSource"`
}

func parsePromptTokenLimit(data []byte, env Env) (Policy, error) {
	var x xmlPromptTokenLimit
	pe, err := decodePolicy("PromptTokenLimit", data, &x, &x.xmlCommon,
		[]string{"Identifier", "Rate", "UserPromptSource"}, nil)
	if err != nil {
		return nil, err
	}
	p := &PromptTokenLimit{name: x.Name, env: env}
	if p.rate, p.rateRef, err = parseRateElem(pe, x.Rate); err != nil {
		return nil, err
	}
	if p.identifier, err = optRefTemplate(pe, "Identifier", x.Identifier); err != nil {
		return nil, err
	}
	if p.source, err = sourceElem(pe, "UserPromptSource", x.UserPromptSource, defaultPromptSource); err != nil {
		return nil, err
	}
	return p, nil
}

// Name returns the policy's name.
func (p *PromptTokenLimit) Name() string { return p.name }

// Kind returns "PromptTokenLimit".
func (p *PromptTokenLimit) Kind() string { return "PromptTokenLimit" }

// Apply counts the prompt's tokens. It sets prompttokenlimit.{name}.tokens
// (this prompt), .used.count, .allowed.count and .failed.
func (p *PromptTokenLimit) Apply(ctx context.Context, m *Message) (*Fault, error) {
	r, bad, ok := resolveRate(p.rate, p.rateRef, m)
	if !ok {
		return faultSpikeArrestRate.fault(bad), nil
	}
	prompt, _ := p.source.eval(m)
	tokens := int64(CountTokens(prompt))
	v := m.vars()
	pre := "prompttokenlimit." + p.name + "."
	v.Set(pre+"tokens", strconv.FormatInt(tokens, 10))
	if p.env.Store == nil {
		return nil, fmt.Errorf("PromptTokenLimit %q: %w", p.name, errNoStore)
	}
	id := "_default"
	if p.identifier != nil {
		if s, ok := p.identifier.eval(m); ok && s != "" {
			id = s
		}
	}
	w := slidingPeriod(r.period(), 10, p.env.now(m))
	res, err := p.env.Store.Take(ctx, state.TakeRequest{
		Key: "prompttokenlimit:" + p.name + ":" + id, Bucket: w.bucket, Window: w.window,
		Weight: tokens, Limit: r.n, Enforce: true, Count: true, Expires: w.expires,
	})
	if err != nil {
		return nil, fmt.Errorf("PromptTokenLimit %q: %w", p.name, err)
	}
	v.Set(pre+"used.count", strconv.FormatInt(res.Used, 10))
	v.Set(pre+"allowed.count", strconv.FormatInt(r.n, 10))
	v.Set(pre+"failed", strconv.FormatBool(!res.Allowed))
	if res.Allowed {
		return nil, nil
	}
	return faultPromptTokenLimit.fault(r.String(), id), nil
}

// CountTokens estimates the tokens of a text the way a BPE tokenizer roughly
// does, deterministically and without a vocabulary:
//   - a run of letters and digits is ceil(len/4) tokens (len in bytes of
//     UTF-8, so non-Latin scripts count more, as they do in real tokenizers);
//   - every other non-space character (punctuation, symbols, emoji) is one
//     token;
//   - white space is free.
//
// "Hello, world!" is 2 + 1 + 2 + 1 = 6 tokens; "" is 0.
func CountTokens(s string) int {
	n := 0
	word := 0
	flush := func() {
		if word > 0 {
			n += (word + 3) / 4
			word = 0
		}
	}
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		s = s[size:]
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || unicode.Is(unicode.Mn, r):
			word += size
		case unicode.IsSpace(r):
			flush()
		default:
			flush()
			n++
		}
	}
	flush()
	return n
}
