package threat

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func decodeJSON(t testing.TB, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

const chatDoc = `{
  "model": "llama3",
  "messages": [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "hello <b>there</b>"},
    {"role": "user", "content": [{"type": "text", "text": "part one"}, {"type": "image_url", "image_url": {"url": "http://x"}}]}
  ],
  "prompt": "p",
  "a b": {"c": 1},
  "n": [1, 2, 3, 4]
}`

func TestJSONPathEval(t *testing.T) {
	t.Parallel()
	doc := decodeJSON(t, chatDoc)
	tests := []struct {
		expr string
		want []string
	}{
		{"$", []string{`{"a b":{"c":1},"messages":[{"content":"be brief","role":"system"},{"content":"hello <b>there</b>","role":"user"},{"content":[{"text":"part one","type":"text"},{"image_url":{"url":"http://x"},"type":"image_url"}],"role":"user"}],"model":"llama3","n":[1,2,3,4],"prompt":"p"}`}},
		{"$.model", []string{"llama3"}},
		{"$.messages[0].content", []string{"be brief"}},
		{"$.messages[-1].role", []string{"user"}},
		{"$.messages[*].role", []string{"system", "user", "user"}},
		{"$.messages[*].content[*].text", []string{"part one"}},
		{"$..text", []string{"part one"}},
		{"$..url", []string{"http://x"}},
		{"$['a b'].c", []string{"1"}},
		{`$["a b"]["c"]`, []string{"1"}},
		{"$.n[1:3]", []string{"2", "3"}},
		{"$.n[-2:]", []string{"3", "4"}},
		{"$.n[:1]", []string{"1"}},
		{"$.n[0,3]", []string{"1", "4"}},
		{"$['model','prompt']", []string{"llama3", "p"}},
		{"$.messages[?(@.role == 'user')].content", []string{"hello <b>there</b>", `[{"text":"part one","type":"text"},{"image_url":{"url":"http://x"},"type":"image_url"}]`}},
		{"$.messages[?(@.role != 'user')].content", []string{"be brief"}},
		{"$.n[?(@ > 2)]", []string{"3", "4"}},
		{"$..[?(@.type)].type", []string{"text", "image_url"}},
		{"$.missing", []string{}},
		{"$.model.deeper", []string{}},
		{"$.n[10]", []string{}},
		{"$.*", []string{`{"c":1}`, `[{"content":"be brief","role":"system"},{"content":"hello <b>there</b>","role":"user"},{"content":[{"text":"part one","type":"text"},{"image_url":{"url":"http://x"},"type":"image_url"}],"role":"user"}]`, "llama3", "[1,2,3,4]", "p"}},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			t.Parallel()
			p, err := CompileJSONPath(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			got := p.Strings(doc)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s = %q, want %q", tt.expr, got, tt.want)
			}
		})
	}
}

func TestJSONPathNumbers(t *testing.T) {
	t.Parallel()
	d := json.NewDecoder(strings.NewReader(`{"a":[1.50,2e3,"x"]}`))
	d.UseNumber()
	var doc any
	if err := d.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	p, _ := CompileJSONPath("$.a[?(@ >= 1.5)]")
	if got, want := p.Strings(doc), []string{"1.50", "2e3"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestCompileJSONPathErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		expr, want string
	}{
		{"a.b", "column 1: expected '$'"},
		{"$.", "column 3: expected a member name"},
		{"$.a[0", "column 6: expected ']'"},
		{"$.a[x]", "column 5: unexpected 'x' inside '[]'"},
		{"$['a", "column 5: unterminated quoted name"},
		{"$.a[?(@.b = 1)]", "column 11: unexpected '=' in filter"},
		{"$.a[?(@.b < 'x')]", "operator < needs a number"},
		{"$ x", "column 3: unexpected 'x'"},
		{"$[", "column 3: unterminated '['"},
	}
	for _, tt := range tests {
		_, err := CompileJSONPath(tt.expr)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("CompileJSONPath(%q) error = %v, want it to contain %q", tt.expr, err, tt.want)
		}
	}
}

func TestJSONPathDeepDocumentIsBounded(t *testing.T) {
	t.Parallel()
	// Build a 5,000-level document without encoding/json (which caps at 10,000).
	var doc any = "leaf"
	for range 5000 {
		doc = map[string]any{"a": doc}
	}
	p, _ := CompileJSONPath("$..a")
	got := p.Eval(doc)
	if len(got) != MaxJSONPathDepth+1 {
		t.Errorf("$..a found %d values, want the descent to stop at depth %d", len(got), MaxJSONPathDepth)
	}
	p, _ = CompileJSONPath("$..*..*..*")
	if got := p.Eval(doc); len(got) > MaxJSONPathNodes {
		t.Errorf("chained descent returned %d values, want at most %d", len(got), MaxJSONPathNodes)
	}
}

func TestJSONPathFoldCase(t *testing.T) {
	t.Parallel()
	var doc any
	if err := json.Unmarshal([]byte(`{"Messages":[{"CONTENT":"a"},{"content":"b"}],"messages":[{"content":"c"}]}`), &doc); err != nil {
		t.Fatal(err)
	}
	p, err := CompileJSONPath("$.messages[*].content")
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Strings(doc); !reflect.DeepEqual(got, []string{"c"}) {
		t.Errorf("exact path = %q, want [c]", got)
	}
	// An exact match wins; without one, any key equal without case matches.
	if got := p.FoldCase().Strings(doc); !reflect.DeepEqual(got, []string{"c"}) {
		t.Errorf("folded path with an exact key = %q, want [c]", got)
	}
	q, _ := CompileJSONPath("$.MESSAGES[*].Content")
	if got := q.FoldCase().Strings(doc); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Errorf("folded path = %q, want [a b c]", got)
	}
}
