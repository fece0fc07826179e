package threat

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

func TestJSONLimitsCheck(t *testing.T) {
	t.Parallel()
	lim := JSONLimits{ContainerDepth: 3, ObjectEntryCount: 3, ArrayElementCount: 3, ObjectEntryNameLength: 5, StringValueLength: 6}
	tests := []struct {
		name      string
		doc       string
		wantLimit string // "" = no violation
		wantLine  int
	}{
		{"scalar", `42`, "", 0},
		{"string at limit", `"abcdef"`, "", 0},
		{"string over", `"abcdefg"`, LimitStringValueLength, 1},
		{"escapes count once", `"\u00e9\n\t\"\\/"`, "", 0},
		{"utf8 counts runes", `"éééééé"`, "", 0},
		{"utf8 over", `"ééééééé"`, LimitStringValueLength, 1},
		{"surrogate pair is one char", `"\ud83d\ude00abcde"`, "", 0},
		{"depth at limit", `[[[1]]]`, "", 0},
		{"depth over", `[[[[1]]]]`, LimitContainerDepth, 1},
		{"depth mixed", `{"a":[{"b":1}]}`, "", 0},
		{"depth mixed over", `{"a":[{"b":{}}]}`, LimitContainerDepth, 1},
		{"entries at limit", `{"a":1,"b":2,"c":3}`, "", 0},
		{"entries over", `{"a":1,"b":2,"c":3,"d":4}`, LimitObjectEntryCount, 1},
		{"elements at limit", `[1,2,3]`, "", 0},
		{"elements over", `[1,2,3,4]`, LimitArrayElementCount, 1},
		{"counts are per container", `[[1,2,3],[1,2,3],[1,2,3]]`, "", 0},
		{"name at limit", `{"abcde":1}`, "", 0},
		{"name over", `{"abcdef":1}`, LimitObjectEntryNameLength, 1},
		{"name limit is not the value limit", `{"a":"abcdef"}`, "", 0},
		{"line numbers", "{\n\"a\": 1,\n\"b\": \"abcdefgh\"\n}", LimitStringValueLength, 3},
		{"empty", ``, LimitInvalidJSON, 1},
		{"whitespace only", " \n ", LimitInvalidJSON, 2},
		{"trailing garbage", `{} x`, LimitInvalidJSON, 1},
		{"two values", `1 2`, LimitInvalidJSON, 1},
		{"trailing comma", `[1,]`, LimitInvalidJSON, 1},
		{"missing colon", `{"a" 1}`, LimitInvalidJSON, 1},
		{"unquoted key", `{a:1}`, LimitInvalidJSON, 1},
		{"unterminated", `{"a":"b`, LimitInvalidJSON, 1},
		{"bad escape", `"\x"`, LimitInvalidJSON, 1},
		{"bad unicode", `"\u12g4"`, LimitInvalidJSON, 1},
		{"control char", "\"a\tb\"", LimitInvalidJSON, 1},
		{"leading zero", `01`, LimitInvalidJSON, 1},
		{"bare minus", `-`, LimitInvalidJSON, 1},
		{"dot without digits", `1.`, LimitInvalidJSON, 1},
		{"exponent", `-1.5e+10`, "", 0},
		{"bad literal", `tru`, LimitInvalidJSON, 1},
		{"literal glued", `truex`, LimitInvalidJSON, 1},
		{"mismatched", `[1}`, LimitInvalidJSON, 1},
		{"unclosed", `[1`, LimitInvalidJSON, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := lim.Check(strings.NewReader(tt.doc))
			if tt.wantLimit == "" {
				if v != nil {
					t.Fatalf("Check(%q) = %v, want nil", tt.doc, v)
				}
				return
			}
			if v == nil {
				t.Fatalf("Check(%q) = nil, want %s", tt.doc, tt.wantLimit)
			}
			if v.Limit != tt.wantLimit || v.Line != tt.wantLine {
				t.Fatalf("Check(%q) = %s at line %d (%v), want %s at line %d", tt.doc, v.Limit, v.Line, v, tt.wantLimit, tt.wantLine)
			}
		})
	}
}

func TestJSONViolationFaultString(t *testing.T) {
	t.Parallel()
	v := JSONLimits{ContainerDepth: 10}.Check(strings.NewReader(strings.Repeat("[", 11) + strings.Repeat("]", 11)))
	if v == nil {
		t.Fatal("no violation")
	}
	want := "JSONThreatProtection[JTP]: Execution failed. reason: JSONThreatProtection[JTP]: Exceeded container depth at line 1"
	if got := v.FaultString("JTP"); got != want {
		t.Errorf("FaultString = %q, want %q", got, want)
	}
	if v.Max != 10 || v.Found != 11 {
		t.Errorf("Max, Found = %d, %d, want 10, 11", v.Max, v.Found)
	}
	if v.ErrorCode() != "steps.jsonthreatprotection.ExecutionFailed" {
		t.Errorf("ErrorCode = %q", v.ErrorCode())
	}
	if got := v.Error(); !strings.Contains(got, "max 10 allowed, found 11") {
		t.Errorf("Error = %q, want the max and found counts", got)
	}
	inv := JSONLimits{}.Check(strings.NewReader("{\n  \"a\" 1}"))
	if got := inv.FaultString("J"); !strings.HasPrefix(got, "JSONThreatProtection[J]: Execution failed. reason: JSONThreatProtection[J]: Invalid JSON object: ") || !strings.HasSuffix(got, " at line 2") {
		t.Errorf("invalid FaultString = %q", got)
	}
}

// countingReader produces n bytes from gen without holding them, and counts
// what was read.
type countingReader struct {
	gen  func(i int64) byte
	n    int64
	read int64
}

func (r *countingReader) Read(p []byte) (int, error) {
	if r.read >= r.n {
		return 0, io.EOF
	}
	k := 0
	for k < len(p) && r.read < r.n {
		p[k] = r.gen(r.read)
		k++
		r.read++
	}
	return k, nil
}

func TestJSONLimitsDeepNestingStopsEarly(t *testing.T) {
	t.Parallel()
	const depth = 100_000
	r := &countingReader{n: 2 * depth, gen: func(i int64) byte {
		if i < depth {
			return '['
		}
		return ']'
	}}
	v := JSONLimits{ContainerDepth: 20}.Check(r)
	if v == nil || v.Limit != LimitContainerDepth || v.Found != 21 {
		t.Fatalf("Check = %v, want ContainerDepth found 21", v)
	}
	if r.read > 64<<10 {
		t.Errorf("read %d bytes, want the scan to stop within one buffer", r.read)
	}
}

func TestJSONLimitsDeepNestingUnlimited(t *testing.T) {
	t.Parallel()
	const depth = 100_000
	doc := strings.Repeat(`{"a":[`, depth) + "1" + strings.Repeat("]}", depth)
	if v := (JSONLimits{}).Check(strings.NewReader(doc)); v != nil {
		t.Fatalf("unlimited Check of a deep valid document = %v", v)
	}
	v := JSONLimits{ObjectEntryCount: 1, ArrayElementCount: 1}.Check(strings.NewReader(doc))
	if v != nil {
		t.Fatalf("counting Check of a deep valid document = %v", v)
	}
}

func TestJSONLimitsHugeStringNotBuffered(t *testing.T) {
	t.Parallel()
	const size = 50 << 20
	r := &countingReader{n: size, gen: func(i int64) byte {
		switch i {
		case 0:
			return '"'
		case size - 1:
			return '"'
		}
		return 'x'
	}}
	v := JSONLimits{StringValueLength: 100_000}.Check(r)
	if v == nil || v.Limit != LimitStringValueLength {
		t.Fatalf("Check = %v, want StringValueLength", v)
	}
	if r.read > 200_000 {
		t.Errorf("read %d bytes of a 50 MB string, want the scan to stop near the limit", r.read)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestJSONLimitsReadError(t *testing.T) {
	t.Parallel()
	boom := errors.New("connection reset")
	r := io.MultiReader(strings.NewReader(`{"a":`), errReader{boom})
	v := JSONLimits{}.Check(r)
	if v == nil || v.Limit != LimitInvalidJSON || !strings.Contains(v.Detail, "connection reset") {
		t.Fatalf("Check = %v, want invalid JSON naming the read error", v)
	}
}

// TestJSONLimitsAgreesWithEncodingJSON checks validity against encoding/json
// on a set of tricky documents.
func TestJSONLimitsAgreesWithEncodingJSON(t *testing.T) {
	t.Parallel()
	docs := []string{
		`{}`, `[]`, `""`, `0`, `-0`, `0.5`, `1e5`, `1E-5`, `[1,2,{"a":[null,true,false]}]`,
		`{"a":1,}`, `[,1]`, `{"a":1 "b":2}`, `"\ud800"`, `"\u0000"`, `[1 2]`, `{"":""}`,
		"\"\xff\"", `00`, `-01`, `1.e5`, `.5`, `+1`, `[`, `]`, `{`, `}`, `nul`, `[true false]`,
	}
	for _, d := range docs {
		got := JSONLimits{}.Check(strings.NewReader(d)) == nil
		if want := json.Valid([]byte(d)); got != want {
			t.Errorf("Check(%q) valid = %v, encoding/json says %v", d, got, want)
		}
	}
}

// chatRequest builds an OpenAI chat request of about size bytes.
func chatRequest(size int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"model":"llama3","stream":true,"temperature":0.7,"messages":[{"role":"system","content":"You are a helpful assistant."}`)
	para := "Please summarise the following text about distributed systems, caching, and the CAP theorem. "
	for i := 0; b.Len() < size-200; i++ {
		fmt.Fprintf(&b, `,{"role":"user","content":%q}`, strings.Repeat(para, 8))
		fmt.Fprintf(&b, `,{"role":"assistant","content":"Sure \u2014 here is point %d of the summary."}`, i)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

func benchmarkJSONLimits(b *testing.B, size int) {
	doc := chatRequest(size)
	lim := JSONLimits{ContainerDepth: 20, ObjectEntryCount: 200, ArrayElementCount: 10000, ObjectEntryNameLength: 128, StringValueLength: 100000}
	if v := lim.Check(bytes.NewReader(doc)); v != nil {
		b.Fatal(v)
	}
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if v := lim.Check(bytes.NewReader(doc)); v != nil {
			b.Fatal(v)
		}
	}
}

func BenchmarkJSONLimits4KB(b *testing.B) { benchmarkJSONLimits(b, 4<<10) }
func BenchmarkJSONLimits1MB(b *testing.B) { benchmarkJSONLimits(b, 1<<20) }
