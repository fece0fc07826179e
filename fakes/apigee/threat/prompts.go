package threat

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// UserPrompts returns every piece of text a client put in an LLM request,
// in document order, for the prompt detectors to scan. It reads:
//
//   - OpenAI chat completions and Ollama /api/chat: messages[].content, a
//     string or an array of parts whose "text" is read (text, input_text);
//     tool_calls[].function.arguments; and name. Every role is read (user,
//     system, developer, tool, assistant): the client sends them all, so all
//     of them are the client's to forge.
//   - OpenAI completions: prompt, a string or an array of strings (token
//     arrays are skipped), and suffix.
//   - Ollama /api/generate: prompt, system, suffix and template.
//   - OpenAI responses and embeddings: input (a string, strings, or
//     messages as above) and instructions.
//
// contentType must be JSON. A body that is JSON but none of these shapes
// yields no prompts and no error.
func UserPrompts(contentType string, body []byte) ([]string, error) {
	if !IsJSONBody(contentType, body) {
		return nil, fmt.Errorf("user prompts: content type %q is not JSON", contentType)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, fmt.Errorf("user prompts: %w", err)
	}
	var out []string
	var errs []error
	// Field names are matched without case, as Go's encoding/json (and so
	// Ollama) decodes them: "Messages" is read as "messages" by the server,
	// so it is read here too.
	read := func(field string, f func(json.RawMessage) []string) {
		for k, raw := range top {
			if strings.EqualFold(k, field) {
				out = append(out, f(raw)...)
			}
		}
	}
	read("instructions", textOrTexts)
	read("system", textOrTexts)
	read("messages", func(raw json.RawMessage) []string {
		texts, err := messageTexts(raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("messages: %w", err))
		}
		return texts
	})
	read("prompt", textOrTexts)
	read("suffix", textOrTexts)
	read("template", textOrTexts)
	read("input", func(raw json.RawMessage) []string {
		if texts := textOrTexts(raw); len(texts) > 0 {
			return texts
		}
		texts, _ := messageTexts(raw)
		return texts
	})
	if len(errs) > 0 {
		return out, errors.Join(errs...)
	}
	return out, nil
}

// textOrTexts reads a string or an array of strings; anything else yields
// nothing.
func textOrTexts(raw json.RawMessage) []string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil
	}
	var s string
	if raw[0] == '"' {
		if json.Unmarshal(raw, &s) == nil && s != "" {
			return []string{s}
		}
		return nil
	}
	var arr []json.RawMessage
	if json.Unmarshal(raw, &arr) != nil {
		return nil
	}
	var out []string
	for _, e := range arr {
		if json.Unmarshal(e, &s) == nil && s != "" {
			out = append(out, s)
		}
	}
	return out
}

type chatMessage struct {
	Content   json.RawMessage `json:"content"`
	Name      string          `json:"name"`
	ToolCalls []struct {
		Function struct {
			Arguments json.RawMessage `json:"arguments"`
		} `json:"function"`
	} `json:"tool_calls"`
}

func messageTexts(raw json.RawMessage) ([]string, error) {
	var msgs []json.RawMessage
	if err := json.Unmarshal(raw, &msgs); err != nil {
		return nil, errors.New("want an array of messages")
	}
	var out []string
	for i, m := range msgs {
		var msg chatMessage
		if err := json.Unmarshal(m, &msg); err != nil {
			return out, fmt.Errorf("message %d: %w", i, err)
		}
		if msg.Name != "" {
			out = append(out, msg.Name)
		}
		out = append(out, contentTexts(msg.Content)...)
		for _, tc := range msg.ToolCalls {
			// Arguments is a JSON string in OpenAI's API and an object in
			// Ollama's.
			args := tc.Function.Arguments
			if texts := textOrTexts(args); len(texts) > 0 {
				out = append(out, texts...)
			} else if len(bytes.TrimSpace(args)) > 0 && string(bytes.TrimSpace(args)) != "null" {
				out = append(out, string(args))
			}
		}
	}
	return out, nil
}

// contentTexts reads a message content: a string, or parts with text.
func contentTexts(raw json.RawMessage) []string {
	if texts := textOrTexts(raw); len(texts) > 0 {
		return texts
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if json.Unmarshal(raw, &parts) != nil {
		return nil
	}
	var out []string
	for _, p := range parts {
		if p.Text != "" {
			out = append(out, p.Text)
		}
	}
	return out
}
