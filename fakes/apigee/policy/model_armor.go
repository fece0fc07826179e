package policy

import (
	"encoding/xml"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/gatecheck/gatecheck/fakes/apigee/threat"
)

// The local stand-in for Model Armor that SanitizeUserPrompt and
// SanitizeModelResponse call: named templates, each a detector profile
// (threat.Detectors), and the flow variables a sanitisation sets.
//
// A template's match detectors find what Model Armor would report as a
// filter match (filterMatchState MATCH_FOUND): that is what blocks, or what
// a SanitizeModelResponse in redact mode masks. Its report detectors find
// what is only worth recording (an e-mail address, a low-confidence
// number): reported in the variables, never blocking.
//
// The templates (<ModelArmor><TemplateName> names one, alone or as the last
// segment of a Model Armor resource name
// projects/P/locations/L/templates/NAME; absent means default):
//
//	default         prompt injection and jailbreaks, malicious URIs, dangerous
//	                and harassing requests (rai), and the sensitive data a
//	                client should not send to a model or a model leak: card
//	                numbers (Luhn and issuer checked), IBANs, US SSNs, API keys,
//	                private keys; at MEDIUM_AND_ABOVE. Other sensitive data at
//	                LOW_AND_ABOVE (e-mail addresses, JWTs, a Luhn-valid number
//	                of no known issuer) is reported. This is the prompt guard of
//	                threat.DefaultProtection, which the corpus measures.
//	strict          every filter and kind at LOW_AND_ABOVE matches (e-mail
//	                addresses too).
//	pii-only        the sdp filter only: the sensitive-data kinds of default
//	                match, the rest is reported. What the default topology
//	                redacts from answers.
//	prompt-attacks  pi_and_jailbreak and malicious_uris only, at MEDIUM_AND_ABOVE.
type armorTemplate struct {
	id      string
	filters []string // the filters the template runs, for filterResults
	match   *threat.Detectors
	report  *threat.Detectors // nil: nothing is only reported
}

type armorSpec struct {
	filters []string
	match   threat.DetectorConfig
	report  *threat.DetectorConfig
}

// armorBlockKinds are what the default template matches.
var armorBlockKinds = []string{
	"prompt_injection", "jailbreak", "malicious_uri",
	"credit_card", "iban", "us_ssn", "api_key", "private_key",
	"dangerous", "harassment",
}

var armorSDPKinds = []string{"credit_card", "iban", "us_ssn", "api_key", "private_key"}

var allArmorFilters = []string{threat.FilterPIAndJailbreak, threat.FilterMaliciousURIs, threat.FilterSDP, threat.FilterRAI}

var armorSpecs = map[string]armorSpec{
	"default": {
		filters: allArmorFilters,
		match:   threat.DetectorConfig{Kinds: armorBlockKinds, Threshold: threat.ConfidenceMediumAndAbove},
		report:  &threat.DetectorConfig{Filters: []string{threat.FilterSDP}, Threshold: threat.ConfidenceLowAndAbove},
	},
	"strict": {
		filters: allArmorFilters,
		match:   threat.DetectorConfig{Threshold: threat.ConfidenceLowAndAbove},
	},
	"pii-only": {
		filters: []string{threat.FilterSDP},
		match:   threat.DetectorConfig{Filters: []string{threat.FilterSDP}, Kinds: armorSDPKinds, Threshold: threat.ConfidenceMediumAndAbove},
		report:  &threat.DetectorConfig{Filters: []string{threat.FilterSDP}, Threshold: threat.ConfidenceLowAndAbove},
	},
	"prompt-attacks": {
		filters: []string{threat.FilterPIAndJailbreak, threat.FilterMaliciousURIs},
		match:   threat.DetectorConfig{Filters: []string{threat.FilterPIAndJailbreak, threat.FilterMaliciousURIs}, Threshold: threat.ConfidenceMediumAndAbove},
	},
}

// ArmorTemplates lists the Model Armor template names the sanitising
// policies accept, sorted.
func ArmorTemplates() []string {
	names := make([]string, 0, len(armorSpecs))
	for n := range armorSpecs {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

var armorCache sync.Map // name → func() (*armorTemplate, error)

// armorTemplateNamed builds (once) the template of that name.
func armorTemplateNamed(name string) (*armorTemplate, error) {
	spec, ok := armorSpecs[name]
	if !ok {
		return nil, fmt.Errorf("no Model Armor template %q (known: %s)", name, strings.Join(ArmorTemplates(), ", "))
	}
	build, _ := armorCache.LoadOrStore(name, sync.OnceValues(func() (*armorTemplate, error) {
		t := &armorTemplate{id: name, filters: spec.filters}
		var err error
		if t.match, err = threat.NewDetectors(spec.match); err != nil {
			return nil, err
		}
		if spec.report != nil {
			if t.report, err = threat.NewDetectors(*spec.report); err != nil {
				return nil, err
			}
		}
		return t, nil
	}))
	return build.(func() (*armorTemplate, error))()
}

type xmlModelArmor struct {
	TemplateName *string    `xml:"TemplateName"`
	Unknown      []xmlAny   `xml:",any"`
	UnknownAttrs []xml.Attr `xml:",any,attr"`
}

// parseArmorTemplate reads <ModelArmor><TemplateName>.
func parseArmorTemplate(pe perr, x *xmlModelArmor) (*armorTemplate, error) {
	name := "default"
	if x != nil {
		if len(x.Unknown) > 0 {
			return nil, pe.elem("ModelArmor", "unknown element <%s> (supported: TemplateName)", x.Unknown[0].XMLName.Local)
		}
		if len(x.UnknownAttrs) > 0 {
			return nil, pe.elem("ModelArmor", "unknown attribute %s", x.UnknownAttrs[0].Name.Local)
		}
		if x.TemplateName == nil || strings.TrimSpace(*x.TemplateName) == "" {
			return nil, pe.elem("ModelArmor><TemplateName", "required")
		}
		name = strings.TrimSpace(*x.TemplateName)
		if i := strings.LastIndex(name, "/templates/"); i >= 0 {
			name = name[i+len("/templates/"):]
		}
	}
	t, err := armorTemplateNamed(name)
	if err != nil {
		return nil, pe.elem("ModelArmor><TemplateName", "%v", err)
	}
	return t, nil
}

// armorResult is one sanitisation: the findings that match, and those only
// reported.
type armorResult struct {
	matches, reported []threat.Finding
}

// scan runs the template over texts.
func (t *armorTemplate) scan(texts []string) armorResult {
	var r armorResult
	for _, s := range texts {
		if s == "" {
			continue
		}
		matches := t.match.Scan(s)
		r.matches = append(r.matches, matches...)
		if t.report == nil {
			continue
		}
		for _, f := range t.report.Scan(s) {
			if !slices.ContainsFunc(matches, func(m threat.Finding) bool {
				return m.Kind == f.Kind && m.Start == f.Start && m.End == f.End
			}) {
				r.reported = append(r.reported, f)
			}
		}
	}
	return r
}

// describeFindings lists the distinct filter (kind) pairs, in order of
// first appearance: "sdp (credit_card), pi_and_jailbreak (jailbreak)".
func describeFindings(fs []threat.Finding) string {
	var out []string
	for _, f := range fs {
		s := f.Filter + " (" + f.Kind + ")"
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return strings.Join(out, ", ")
}

// findingKinds lists the distinct filter:kind pairs, comma separated.
func findingKinds(fs []threat.Finding) string {
	var out []string
	for _, f := range fs {
		s := f.Filter + ":" + f.Kind
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return strings.Join(out, ",")
}

// setVars records a sanitisation as Model Armor's SanitizationResult
// reads, under pre ("sanitizeuserprompt.{name}."):
//
//	filterMatchState                  MATCH_FOUND or NO_MATCH_FOUND
//	invocationResult                  SUCCESS (the local detectors always run)
//	filterResults.{filter}.matchState MATCH_FOUND or NO_MATCH_FOUND, for each
//	                                  filter of the template (pi_and_jailbreak,
//	                                  malicious_uris, sdp, rai)
//	matchCount, matches               the matching findings, and their distinct
//	                                  filter:kind pairs ("sdp:credit_card")
//	reportedCount, reported           the same for findings only reported
//	templateName                      the template
//	action                            what the policy did: blocked, flagged
//	                                  (matched, let through), redacted, or none
func (r armorResult) setVars(v *Vars, pre string, t *armorTemplate, action string) {
	state := func(match bool) string {
		if match {
			return "MATCH_FOUND"
		}
		return "NO_MATCH_FOUND"
	}
	v.Set(pre+"filterMatchState", state(len(r.matches) > 0))
	v.Set(pre+"invocationResult", "SUCCESS")
	for _, f := range t.filters {
		hit := slices.ContainsFunc(r.matches, func(x threat.Finding) bool { return x.Filter == f })
		v.Set(pre+"filterResults."+f+".matchState", state(hit))
	}
	v.Set(pre+"matchCount", strconv.Itoa(len(r.matches)))
	v.Set(pre+"matches", findingKinds(r.matches))
	if t.report != nil {
		v.Set(pre+"reportedCount", strconv.Itoa(len(r.reported)))
		v.Set(pre+"reported", findingKinds(r.reported))
	}
	v.Set(pre+"templateName", t.id)
	v.Set(pre+"action", action)
}
