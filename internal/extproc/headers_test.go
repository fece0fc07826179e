package extproc

import (
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

func TestHeaderValueReadsRawAndValue(t *testing.T) {
	t.Parallel()
	hm := &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
		{Key: ":path", RawValue: []byte("/v1/chat/completions")},
		{Key: "X-Old", Value: "legacy"},
		{Key: "x-both", Value: "ignored", RawValue: []byte("raw wins")},
		{Key: "x-multi", RawValue: []byte("a")},
		{Key: "X-Multi", RawValue: []byte("b")},
	}}
	for name, want := range map[string]string{":path": "/v1/chat/completions", "x-old": "legacy", "X-BOTH": "raw wins", "x-multi": "a"} {
		if got, ok := HeaderValue(hm, name); !ok || got != want {
			t.Errorf("HeaderValue(%q) = %q, %v; want %q", name, got, ok, want)
		}
	}
	if _, ok := HeaderValue(hm, "absent"); ok {
		t.Error("an absent header was found")
	}
	if _, ok := HeaderValue(nil, "x"); ok {
		t.Error("a nil map had a header")
	}
	if got := Headers(hm)["x-multi"]; len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("Headers kept %q for x-multi, want [a b]", got)
	}
}

func TestHeaderMapAndSetHeadersAreSortedAndLowerCased(t *testing.T) {
	t.Parallel()
	hm := HeaderMap(map[string][]string{"B": {"2"}, "a": {"1", "3"}})
	var got []string
	for _, h := range hm.GetHeaders() {
		got = append(got, h.GetKey()+"="+string(h.GetRawValue()))
	}
	if want := []string{"a=1", "a=3", "b=2"}; len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("HeaderMap = %q, want %q", got, want)
	}
	m := SetHeaders(map[string]string{"X-B": "2", "x-a": "1"}, "x-api-key")
	if len(m.GetSetHeaders()) != 2 || m.GetSetHeaders()[0].GetHeader().GetKey() != "x-a" || m.GetSetHeaders()[1].GetHeader().GetKey() != "x-b" {
		t.Errorf("SetHeaders = %v", m.GetSetHeaders())
	}
	if m.GetSetHeaders()[0].GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
		t.Error("SetHeaders must overwrite")
	}
	if r := m.GetRemoveHeaders(); len(r) != 1 || r[0] != "x-api-key" {
		t.Errorf("RemoveHeaders = %q", r)
	}
}

func TestImmediateStatus(t *testing.T) {
	t.Parallel()
	for code, want := range map[int]int{0: 500, 100: 500, 200: 200, 401: 401, 599: 599, 600: 500} {
		ir := &extprocv3.ImmediateResponse{Status: &typev3.HttpStatus{Code: typev3.StatusCode(code)}}
		if got := ImmediateStatus(ir); got != want {
			t.Errorf("ImmediateStatus(%d) = %d, want %d", code, got, want)
		}
	}
	r := ImmediateResponse(429, map[string]string{"content-type": "application/json"}, []byte(`{}`))
	if got := ImmediateStatus(r.GetImmediateResponse()); got != 429 || string(r.GetImmediateResponse().GetBody()) != "{}" {
		t.Errorf("ImmediateResponse = %v", r)
	}
}

func TestMetadataString(t *testing.T) {
	t.Parallel()
	md := Metadata("envoy.lb", map[string]string{"x-gateway-destination-endpoint": "10.0.0.1:8000"})
	if got, ok := MetadataString(md, "envoy.lb", "x-gateway-destination-endpoint"); !ok || got != "10.0.0.1:8000" {
		t.Errorf("string value = %q, %v", got, ok)
	}
	list, _ := structpb.NewList([]any{"a:1", "b:2"})
	md.Fields["hint"] = structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{
		"subset": structpb.NewListValue(list), "n": structpb.NewNumberValue(3),
	}})
	if got, _ := MetadataString(md, "hint", "subset"); got != "a:1,b:2" {
		t.Errorf("list value = %q, want a:1,b:2", got)
	}
	if got, _ := MetadataString(md, "hint", "n"); got != "3" {
		t.Errorf("number value = %q, want 3", got)
	}
	if _, ok := MetadataString(md, "missing", "x"); ok {
		t.Error("a missing namespace was found")
	}
	if _, ok := MetadataString(nil, "envoy.lb", "x"); ok {
		t.Error("nil metadata had a value")
	}
}
