package threat

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/gatecheck/gatecheck/fakes/apigee/threat/detectors"
)

// The default protection set, what gatecheck puts in front of an LLM
// endpoint when a scenario asks for "threat protection" without
// configuring it. The limits are generous for chat traffic and tight for
// abuse.
var (
	// defaultJSONLimits: a chat request nests about six levels, and each
	// level of a tool's JSON schema adds two more, so a deeply nested tool
	// still fits in 32, while the nesting bombs parsers fall over on run to
	// thousands. A long pasted document stays under 100,000 characters per
	// string. Embedding requests that send more than 1,000 token ids in one
	// array need a higher ArrayElementCount.
	defaultJSONLimits = JSONLimits{
		ContainerDepth:        32,
		ObjectEntryCount:      200,
		ArrayElementCount:     1000,
		ObjectEntryNameLength: 128,
		StringValueLength:     100_000,
	}
	// defaultGraphQLLimits apply to requests for a path ending in /graphql
	// or sent as application/graphql.
	defaultGraphQLLimits = GraphQLLimits{
		Action:                GraphQLActionParse,
		OperationType:         GraphQLOperationQueryMutation,
		MaxDepth:              10,
		MaxCount:              10,
		MaxPayloadSizeInBytes: 16 << 10,
	}
	// defaultRegexSets are the pattern sets the default regex rules use.
	defaultRegexSets = []string{PatternSetSQLInjection, PatternSetXSS, PatternSetServerSideInclude, PatternSetXPathInjection, PatternSetCommandInjection}
	// defaultPromptJSONPaths are where the default regex rules look in a
	// JSON body: chat messages (string or parts), completion and generate
	// prompts, and GraphQL queries and variables.
	defaultPromptJSONPaths = []string{"$.messages[*].content", "$.messages[*].content[*].text", "$.messages[*].tool_calls[*].function.arguments", "$.prompt", "$.system", "$.input", "$.instructions", "$.query", "$.variables", "$.suffix", "$.template"}
)

// Default prompt guard. Prompts are blocked for prompt injection and
// jailbreaks, malicious URIs, dangerous-content requests, and for secrets
// and regulated identifiers a client should not send to a model: private
// keys, API keys, payment card numbers (Luhn and issuer checked), IBANs
// (mod-97 checked) and US social security numbers. Blocking card numbers
// keeps the model endpoint out of PCI scope, which is what a team puts
// Model Armor's SDP filter in front of it for. E-mail addresses and
// low-confidence matches (a Luhn-valid number with no known issuer, a JWT,
// a test-mode key) are reported as flagged, not blocked: people put their
// own address in prompts all the time.
var (
	// defaultPromptBlockKinds are the kinds the prompt guard blocks.
	defaultPromptBlockKinds = []string{
		detectors.KindPromptInjection, detectors.KindJailbreak, detectors.KindMaliciousURI,
		detectors.KindCreditCard, detectors.KindIBAN, detectors.KindUSSSN, detectors.KindAPIKey, detectors.KindPrivateKey,
		detectors.KindDangerous, detectors.KindHarassment,
	}
	// defaultPromptBlockThreshold is the confidence that blocks.
	defaultPromptBlockThreshold = ConfidenceMediumAndAbove
)

// Protection is a request-side threat protection set: JSON limits, GraphQL
// limits, regular expressions, and a prompt guard standing in for
// SanitizeUserPrompt.
type Protection struct {
	// JSON limits a JSON body (JSONThreatProtection).
	JSON JSONLimits
	// GraphQL limits a GraphQL request.
	GraphQL GraphQLLimits
	// Regex is the RegularExpressionProtection rule set.
	Regex *Rules
	// PromptGuard's findings block the request; PromptFlag's are reported.
	PromptGuard, PromptFlag *Detectors
}

// DefaultProtection builds the default protection set: the limits, pattern
// sets and prompt guard described above.
func DefaultProtection() (*Protection, error) {
	var patterns []Pattern
	for _, set := range defaultRegexSets {
		entries, err := DefaultPatternEntries(set)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			patterns = append(patterns, e.Pattern)
		}
	}
	rules := []Rule{
		{Target: Target{Kind: TargetURIPath}, Patterns: patterns},
		{Target: Target{Kind: TargetQueryParam}, Patterns: patterns},
		{Target: Target{Kind: TargetFormParam}, Patterns: patterns},
	}
	for _, path := range defaultPromptJSONPaths {
		rules = append(rules, Rule{Target: Target{Kind: TargetJSONPayload, Expression: path}, Patterns: patterns})
	}
	regex, err := NewRules(rules...)
	if err != nil {
		return nil, err
	}
	guard, err := NewDetectors(DetectorConfig{Kinds: defaultPromptBlockKinds, Threshold: defaultPromptBlockThreshold})
	if err != nil {
		return nil, err
	}
	flag, err := NewDetectors(DetectorConfig{Filters: []string{FilterSDP}, Threshold: ConfidenceLowAndAbove})
	if err != nil {
		return nil, err
	}
	return &Protection{JSON: defaultJSONLimits, GraphQL: defaultGraphQLLimits, Regex: regex, PromptGuard: guard, PromptFlag: flag}, nil
}

// Stages of a Protection check, as Verdict.Stage reports them.
const (
	StageJSON    = "json_threat_protection"
	StageGraphQL = "graphql"
	StageRegex   = "regex_protection"
	StagePrompt  = "prompt_guard"
)

// Verdict is the outcome of Protection.CheckRequest.
type Verdict struct {
	// Blocked says the request must be refused.
	Blocked bool
	// Stage says which check blocked the request (a Stage* name).
	Stage string
	// JSON, GraphQL and Regex hold the violation of the stage that blocked.
	JSON    *JSONViolation
	GraphQL *GraphQLViolation // see JSON
	Regex   *RegexViolation   // see JSON
	// Findings are the prompt guard's blocking findings; Flagged the
	// findings reported without blocking.
	Findings, Flagged []Finding
	// Reason is a one-line explanation for logs.
	Reason string
}

// CheckRequest runs the checks in the order Apigee flows usually attach
// them: JSON limits on a JSON body, GraphQL limits on a GraphQL request,
// the regular expressions, then the prompt guard on every prompt
// UserPrompts finds. The first check that fails decides.
func (p *Protection) CheckRequest(req RequestView) Verdict {
	jsonBody := isMedia(req.ContentType, "application/json", "+json")
	if jsonBody {
		if v := p.JSON.Check(bytes.NewReader(req.Body)); v != nil {
			return Verdict{Blocked: true, Stage: StageJSON, JSON: v, Reason: v.Error()}
		}
	}
	if strings.HasSuffix(strings.TrimSuffix(req.Path, "/"), "/graphql") || isMedia(req.ContentType, "application/graphql", "") {
		query := req.Query
		if req.RawQuery != "" {
			query, _ = url.ParseQuery(req.RawQuery)
		}
		gq, err := ParseGraphQLHTTP(req.Method, query, req.ContentType, req.Body)
		if err != nil {
			var v *GraphQLViolation
			if !errors.As(err, &v) {
				v = &GraphQLViolation{Code: GraphQLInvalidPayload, Detail: err.Error()}
			}
			return Verdict{Blocked: true, Stage: StageGraphQL, GraphQL: v, Reason: v.Error()}
		}
		if v := p.GraphQL.Check(gq); v != nil {
			return Verdict{Blocked: true, Stage: StageGraphQL, GraphQL: v, Reason: v.Error()}
		}
	}
	if p.Regex != nil {
		if v := p.Regex.Check(req); v != nil {
			return Verdict{Blocked: true, Stage: StageRegex, Regex: v, Reason: v.Error()}
		}
	}
	var verdict Verdict
	if jsonBody && (p.PromptGuard != nil || p.PromptFlag != nil) {
		prompts, _ := UserPrompts(req.ContentType, req.Body)
		for _, text := range prompts {
			if p.PromptGuard != nil {
				verdict.Findings = append(verdict.Findings, p.PromptGuard.Scan(text)...)
			}
			if p.PromptFlag != nil {
				verdict.Flagged = append(verdict.Flagged, p.PromptFlag.Scan(text)...)
			}
		}
	}
	if len(verdict.Findings) > 0 {
		f := verdict.Findings[0]
		verdict.Blocked, verdict.Stage = true, StagePrompt
		verdict.Reason = fmt.Sprintf("prompt guard: %s %s (%s, rule %s)", f.Filter, f.Kind, f.Confidence, f.Rule)
	}
	return verdict
}
