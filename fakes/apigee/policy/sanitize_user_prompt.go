package policy

import (
	"context"
	"strings"

	"github.com/gatecheck/gatecheck/fakes/apigee/threat"
)

// SanitizeUserPrompt screens the prompt of a request with a Model Armor
// template, here the local detectors of model_armor.go (prompt injection
// and jailbreaks, malicious URIs, sensitive data, responsible AI).
//
// <UserPromptSource> is a template for the prompt; without it every piece
// of text a client controls in an OpenAI or Ollama request is screened, in
// every message role (threat.UserPrompts: messages[].content as a string or
// parts, tool call arguments, prompt, system, suffix, template, input,
// instructions), when the body is JSON. A source that does not resolve is
// steps.sanitizeuserprompt.UnresolvedVariable unless
// <IgnoreUnresolvedVariables>true</IgnoreUnresolvedVariables> (then there is
// nothing to screen). <ModelArmor><TemplateName> chooses the template.
//
// <Action> (a gatecheck extension; Apigee's policy raises a fault on a
// match, and a proxy that only wants to know sets continueOnError):
// block (the default) refuses a match with 400
// steps.sanitizeuserprompt.MatchFound (or <FaultStatus>); flag only sets
// the variables. The faultstring names the filters and kinds that matched,
// never the text.
//
// Sets sanitizeuserprompt.{name}.filterMatchState, .invocationResult,
// .filterResults.{filter}.matchState, .matchCount, .matches,
// .reportedCount, .reported, .templateName and .action (see setVars).
type SanitizeUserPrompt struct {
	name      string
	tmpl      *armorTemplate
	source    *template
	sourceSrc string
	ignore    bool
	flag      bool
	status    int
}

type xmlSanitizeUserPrompt struct {
	xmlCommon
	IgnoreUnresolvedVariables *string        `xml:"IgnoreUnresolvedVariables"`
	UserPromptSource          *string        `xml:"UserPromptSource"`
	ModelArmor                *xmlModelArmor `xml:"ModelArmor"`
	Action                    *string        `xml:"Action"`
	FaultStatus               *string        `xml:"FaultStatus"`
}

func parseSanitizeUserPrompt(data []byte, _ Env) (Policy, error) {
	var x xmlSanitizeUserPrompt
	pe, err := decodePolicy("SanitizeUserPrompt", data, &x, &x.xmlCommon,
		[]string{"IgnoreUnresolvedVariables", "UserPromptSource", "ModelArmor", "Action", "FaultStatus"}, nil)
	if err != nil {
		return nil, err
	}
	p := &SanitizeUserPrompt{name: x.Name}
	if p.ignore, err = pe.optBool("IgnoreUnresolvedVariables", x.IgnoreUnresolvedVariables); err != nil {
		return nil, err
	}
	if p.source, p.sourceSrc, err = optSourceTemplate(pe, "UserPromptSource", x.UserPromptSource); err != nil {
		return nil, err
	}
	if p.tmpl, err = parseArmorTemplate(pe, x.ModelArmor); err != nil {
		return nil, err
	}
	if x.Action != nil {
		switch strings.TrimSpace(*x.Action) {
		case "block":
		case "flag":
			p.flag = true
		default:
			return nil, pe.elem("Action", "%q is not block or flag", strings.TrimSpace(*x.Action))
		}
	}
	if p.status, err = parseFaultStatus(pe, x.FaultStatus); err != nil {
		return nil, err
	}
	return p, nil
}

// optSourceTemplate compiles an optional source template element.
func optSourceTemplate(pe perr, elem string, x *string) (*template, string, error) {
	if x == nil {
		return nil, "", nil
	}
	src := strings.TrimSpace(*x)
	if src == "" {
		return nil, "", pe.elem(elem, "empty")
	}
	t, err := pe.compile(elem, src)
	if err != nil {
		return nil, "", err
	}
	return &t, src, nil
}

// Name returns the policy's name.
func (p *SanitizeUserPrompt) Name() string { return p.name }

// Kind returns "SanitizeUserPrompt".
func (p *SanitizeUserPrompt) Kind() string { return "SanitizeUserPrompt" }

// Apply screens the request's prompt.
func (p *SanitizeUserPrompt) Apply(_ context.Context, m *Message) (*Fault, error) {
	var texts []string
	if p.source != nil {
		s, ok := p.source.eval(m)
		if !ok && !p.ignore {
			return threatFault(faultPromptUnresolved, p.status, false, faultPromptUnresolved.fault(p.name, p.sourceSrc).FaultString), nil
		}
		texts = []string{s}
	} else if ct := contentTypeOf(m.Header); threat.IsJSONBody(ct, m.Body) {
		// A body that is not JSON, or JSON of no known shape, has no prompt
		// to screen (JSONThreatProtection is the policy that refuses
		// invalid JSON).
		texts, _ = threat.UserPrompts(ct, m.Body)
	}
	r := p.tmpl.scan(texts)
	action := "none"
	switch {
	case len(r.matches) > 0 && p.flag:
		action = "flagged"
	case len(r.matches) > 0:
		action = "blocked"
	}
	r.setVars(m.vars(), "sanitizeuserprompt."+p.name+".", p.tmpl, action)
	if action != "blocked" {
		return nil, nil
	}
	return threatFault(faultPromptMatch, p.status, false,
		faultPromptMatch.fault(p.name, p.tmpl.id, describeFindings(r.matches)).FaultString), nil
}
