package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/gatecheck/gatecheck/internal/apigeeapi"
)

// TierPrefix starts the names of the product attributes that are tier rules.
const TierPrefix = "gatecheck.tier."

// Tier is the set of model-feature rules a product's attributes carry
// (gatecheck-specific: Apigee has no built-in for this; a real proxy would
// use a Condition and a RaiseFault, or a JavaScript policy). The zero Tier
// allows everything. The attributes:
//
//	gatecheck.tier.models      comma-separated model patterns ("*" matches any run
//	                           of characters): the request's model must match one
//	gatecheck.tier.stream      true | false: false refuses streamed requests
//	gatecheck.tier.max_tokens  N: refuses requests asking for more than N output
//	                           tokens (max_tokens, max_completion_tokens, or
//	                           Ollama's options.num_predict)
//	gatecheck.tier.tools       true | false: false refuses requests with tools
//	                           (or functions)
//
// Rules read the JSON request body; a request that does not state a field
// passes the rule about it (no model, no max_tokens), except streaming on
// Ollama's /api/chat and /api/generate, which stream unless "stream": false.
// The rules are evaluated in the order above, after the product matched, by
// VerifyAPIKey and OAuthV2 VerifyAccessToken; the first broken one answers
// 403 with a gatecheck.tier.* fault.
type Tier struct {
	Models    []string // empty: any model
	NoStream  bool
	MaxTokens int64 // 0: no limit
	NoTools   bool
}

// ParseTier reads the tier rules from attributes (later attributes win).
// An attribute named gatecheck.tier.* that is not a rule, or a bad value, is
// an error naming it; the management API can use this to refuse a product.
func ParseTier(attrs []apigeeapi.Attribute) (Tier, error) {
	var t Tier
	for _, a := range attrs {
		rule, ok := strings.CutPrefix(a.Name, TierPrefix)
		if !ok {
			continue
		}
		v := strings.TrimSpace(a.Value)
		switch rule {
		case "models":
			t.Models = nil
			for _, m := range strings.Split(v, ",") {
				if m = strings.TrimSpace(m); m != "" {
					t.Models = append(t.Models, m)
				}
			}
			if len(t.Models) == 0 {
				return t, fmt.Errorf("attribute %s: no model patterns in %q", a.Name, a.Value)
			}
		case "stream", "tools":
			b, ok := parseBool(v)
			if !ok {
				return t, fmt.Errorf("attribute %s: %q is not true or false", a.Name, a.Value)
			}
			if rule == "stream" {
				t.NoStream = !b
			} else {
				t.NoTools = !b
			}
		case "max_tokens":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return t, fmt.Errorf("attribute %s: %q is not a positive integer", a.Name, a.Value)
			}
			t.MaxTokens = n
		default:
			return t, fmt.Errorf("attribute %s: unknown tier rule %q (rules: models, stream, max_tokens, tools)", a.Name, rule)
		}
	}
	return t, nil
}

// check returns the fault for the first rule the request breaks, or nil.
func (t Tier) check(product, path string, body []byte) *Fault {
	if len(t.Models) == 0 && !t.NoStream && t.MaxTokens == 0 && !t.NoTools {
		return nil
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return nil
	}
	var req map[string]json.RawMessage
	if json.Unmarshal(body, &req) != nil {
		return nil
	}
	if len(t.Models) > 0 {
		var model string
		if raw, ok := req["model"]; ok && json.Unmarshal(raw, &model) == nil && model != "" {
			if !slices.ContainsFunc(t.Models, func(p string) bool { return matchModel(p, model) }) {
				return faultTierModel.fault(model, product)
			}
		}
	}
	if t.NoStream && streams(path, req) {
		return faultTierStream.fault(product)
	}
	if t.MaxTokens > 0 {
		if n, ok := askedTokens(req); ok && n > float64(t.MaxTokens) {
			return faultTierMaxTokens.fault(int64(math.Min(n, math.MaxInt64)), t.MaxTokens, product)
		}
	}
	if t.NoTools && (nonEmptyArray(req["tools"]) || nonEmptyArray(req["functions"])) {
		return faultTierTools.fault(product)
	}
	return nil
}

// streams reports whether the request asks for a streamed answer.
func streams(path string, req map[string]json.RawMessage) bool {
	raw, ok := req["stream"]
	if !ok {
		return path == "/api/chat" || path == "/api/generate"
	}
	return string(bytes.TrimSpace(raw)) == "true"
}

func askedTokens(req map[string]json.RawMessage) (float64, bool) {
	var best float64
	found := false
	consider := func(raw json.RawMessage) {
		var n float64
		if raw != nil && json.Unmarshal(raw, &n) == nil {
			best = max(best, n)
			found = true
		}
	}
	consider(req["max_tokens"])
	consider(req["max_completion_tokens"])
	if raw, ok := req["options"]; ok {
		var opts map[string]json.RawMessage
		if json.Unmarshal(raw, &opts) == nil {
			consider(opts["num_predict"])
		}
	}
	return best, found
}

func nonEmptyArray(raw json.RawMessage) bool {
	var a []json.RawMessage
	return raw != nil && json.Unmarshal(raw, &a) == nil && len(a) > 0
}
