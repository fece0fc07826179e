package epp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/gatecheck/gatecheck/internal/extproc"
)

// Header and metadata names of the EPP protocol.
const (
	HeaderDestination = "x-gateway-destination-endpoint"
	HeaderServed      = "x-gateway-destination-endpoint-served"
	HeaderObjective   = "x-gateway-inference-objective"
	HeaderRequestID   = "x-request-id"

	// MetadataNamespace is the dynamic metadata namespace of the
	// destination; its key is HeaderDestination.
	MetadataNamespace = "envoy.lb"
	// SubsetNamespace and SubsetKey name the proxy's subset hint in the
	// request's filter metadata.
	SubsetNamespace = "envoy.lb.subset_hint"
	SubsetKey       = "x-gateway-destination-endpoint-subset"
)

// errModelNotFound is GIE's message for a body without a usable "model".
var errModelNotFound = errors.New("model not found in request body")

// requestInfo is what the picker reads from a request body.
type requestInfo struct {
	model  string
	prompt string
}

// parseBody reads "model" and the prompt from an OpenAI or Ollama request
// body. Its errors are the client's fault (400) and safe to show.
func parseBody(body []byte) (requestInfo, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return requestInfo{}, errModelNotFound
	}
	if !json.Valid(trimmed) {
		var v any
		err := json.Unmarshal(trimmed, &v)
		return requestInfo{}, fmt.Errorf("request body is not valid JSON: %v", err)
	}
	if trimmed[0] != '{' {
		return requestInfo{}, errors.New("request body is not a JSON object")
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &doc); err != nil {
		return requestInfo{}, fmt.Errorf("request body is not valid JSON: %v", err)
	}
	var model string
	if raw, ok := doc["model"]; !ok || json.Unmarshal(raw, &model) != nil || strings.TrimSpace(model) == "" {
		return requestInfo{}, errModelNotFound
	}
	return requestInfo{model: model, prompt: promptText(doc)}, nil
}

// promptText is the text prefix affinity hashes: "prompt" (completions,
// Ollama generate), "messages" (chat) as role and content of each, or
// "input" (responses). Shapes it does not know are used as raw JSON, which
// is as good for matching repeated prompts.
func promptText(doc map[string]json.RawMessage) string {
	if raw, ok := doc["prompt"]; ok {
		return jsonText(raw)
	}
	if raw, ok := doc["messages"]; ok {
		var msgs []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		}
		if json.Unmarshal(raw, &msgs) != nil {
			return string(raw)
		}
		var b strings.Builder
		for _, m := range msgs {
			b.WriteString(m.Role)
			b.WriteString(": ")
			b.WriteString(jsonText(m.Content))
			b.WriteString("\n")
		}
		return b.String()
	}
	if raw, ok := doc["input"]; ok {
		return jsonText(raw)
	}
	return ""
}

// jsonText is a JSON string's text, the concatenated texts of an array of
// strings or of content parts ({"type":"text","text":...}), or else the raw
// JSON.
func jsonText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var parts []json.RawMessage
	if json.Unmarshal(raw, &parts) != nil {
		return string(raw)
	}
	var b strings.Builder
	for _, p := range parts {
		var part struct {
			Text *string `json:"text"`
		}
		switch {
		case json.Unmarshal(p, &s) == nil:
			b.WriteString(s)
		case json.Unmarshal(p, &part) == nil && part.Text != nil:
			b.WriteString(*part.Text)
		default:
			b.Write(p)
		}
	}
	return b.String()
}

// subsetHint reads the proxy's subset hint from filter metadata: nil when
// there is none, otherwise the hinted addresses (possibly none).
func subsetHint(md *corev3.Metadata) []string {
	ns, ok := md.GetFilterMetadata()[SubsetNamespace]
	if !ok {
		return nil
	}
	wrapped := &structpb.Struct{Fields: map[string]*structpb.Value{SubsetNamespace: structpb.NewStructValue(ns)}}
	v, ok := extproc.MetadataString(wrapped, SubsetNamespace, SubsetKey)
	if !ok {
		return nil
	}
	out := []string{}
	for part := range strings.SplitSeq(v, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
