package extproc

import (
	"sort"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// HeaderValue returns the value of the first header named name (case
// insensitive) and whether it was present. Envoy sends `raw_value` (bytes);
// older clients send `value`: both are read.
func HeaderValue(hm *corev3.HeaderMap, name string) (string, bool) {
	if hm == nil {
		return "", false
	}
	for _, h := range hm.GetHeaders() {
		if strings.EqualFold(h.GetKey(), name) {
			return headerString(h), true
		}
	}
	return "", false
}

// Headers flattens a header map into lower-cased names and their values.
func Headers(hm *corev3.HeaderMap) map[string][]string {
	out := make(map[string][]string, len(hm.GetHeaders()))
	for _, h := range hm.GetHeaders() {
		k := strings.ToLower(h.GetKey())
		out[k] = append(out[k], headerString(h))
	}
	return out
}

func headerString(h *corev3.HeaderValue) string {
	if len(h.GetRawValue()) > 0 {
		return string(h.GetRawValue())
	}
	return h.GetValue()
}

// HeaderMap builds a header map from names and values, with names lower-cased
// and sorted so the result is deterministic. Values are sent as raw_value, as
// Envoy does.
func HeaderMap(h map[string][]string) *corev3.HeaderMap {
	lower := make(map[string][]string, len(h))
	for k, vs := range h {
		lk := strings.ToLower(k)
		lower[lk] = append(lower[lk], vs...)
	}
	hm := &corev3.HeaderMap{}
	for _, k := range sortedKeys(lower) {
		for _, v := range lower[k] {
			hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: k, RawValue: []byte(v)})
		}
	}
	return hm
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// SetHeaders is a header mutation that overwrites each named header.
func SetHeaders(set map[string]string, remove ...string) *extprocv3.HeaderMutation {
	lower := make(map[string]string, len(set))
	for k, v := range set {
		lower[strings.ToLower(k)] = v
	}
	m := &extprocv3.HeaderMutation{RemoveHeaders: remove}
	for _, k := range sortedKeys(lower) {
		m.SetHeaders = append(m.SetHeaders, &corev3.HeaderValueOption{
			Header:       &corev3.HeaderValue{Key: k, RawValue: []byte(lower[k])},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		})
	}
	return m
}

// ImmediateResponse ends the request with an HTTP answer of the processor's
// making: status, headers and body.
func ImmediateResponse(code int, headers map[string]string, body []byte) *extprocv3.ProcessingResponse {
	ir := &extprocv3.ImmediateResponse{
		Status: &typev3.HttpStatus{Code: typev3.StatusCode(code)},
		Body:   body,
	}
	if len(headers) > 0 {
		ir.Headers = SetHeaders(headers)
	}
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{ImmediateResponse: ir}}
}

// ImmediateStatus returns the HTTP status of an immediate response. The
// proto requires a code; an unset or out-of-range one is answered as 500 so a
// broken processor can never produce a bogus (or a 200) answer.
func ImmediateStatus(ir *extprocv3.ImmediateResponse) int {
	c := int(ir.GetStatus().GetCode())
	if c < 200 || c > 599 {
		return 500
	}
	return c
}

// ContinueRequestHeaders is the plain "carry on" answer to a request-headers
// message, with an optional header mutation.
func ContinueRequestHeaders(m *extprocv3.HeaderMutation) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{
		RequestHeaders: &extprocv3.HeadersResponse{Response: &extprocv3.CommonResponse{HeaderMutation: m}},
	}}
}

// ContinueResponseHeaders is the plain "carry on" answer to a response-headers
// message, with an optional header mutation.
func ContinueResponseHeaders(m *extprocv3.HeaderMutation) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{
		ResponseHeaders: &extprocv3.HeadersResponse{Response: &extprocv3.CommonResponse{HeaderMutation: m}},
	}}
}

// ContinueRequestBody answers a request-body message, leaving the body as it is.
func ContinueRequestBody() *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{
		RequestBody: &extprocv3.BodyResponse{Response: &extprocv3.CommonResponse{}},
	}}
}

// ContinueResponseBody answers a response-body message, leaving the body as it is.
func ContinueResponseBody() *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{
		ResponseBody: &extprocv3.BodyResponse{Response: &extprocv3.CommonResponse{}},
	}}
}

// StreamedBody is a body mutation for FULL_DUPLEX_STREAMED mode: the chunk to
// send on in place of what was received, and whether it is the last.
func StreamedBody(chunk []byte, endOfStream bool) *extprocv3.BodyMutation {
	return &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_StreamedResponse{
		StreamedResponse: &extprocv3.StreamedBodyResponse{Body: chunk, EndOfStream: endOfStream},
	}}
}

// ReplaceBody is a body mutation that replaces a buffered or streamed chunk.
func ReplaceBody(body []byte) *extprocv3.BodyMutation {
	return &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: body}}
}

// Metadata builds dynamic metadata: namespace → key → string value, as the
// endpoint picker sets `envoy.lb` / `x-gateway-destination-endpoint`.
func Metadata(namespace string, kv map[string]string) *structpb.Struct {
	inner := &structpb.Struct{Fields: map[string]*structpb.Value{}}
	for k, v := range kv {
		inner.Fields[k] = structpb.NewStringValue(v)
	}
	return &structpb.Struct{Fields: map[string]*structpb.Value{namespace: structpb.NewStructValue(inner)}}
}

// MetadataString reads namespace/key from dynamic or filter metadata.
func MetadataString(md *structpb.Struct, namespace, key string) (string, bool) {
	ns, ok := md.GetFields()[namespace]
	if !ok {
		return "", false
	}
	v, ok := ns.GetStructValue().GetFields()[key]
	if !ok {
		return "", false
	}
	switch x := v.GetKind().(type) {
	case *structpb.Value_StringValue:
		return x.StringValue, true
	case *structpb.Value_ListValue:
		parts := make([]string, 0, len(x.ListValue.GetValues()))
		for _, e := range x.ListValue.GetValues() {
			parts = append(parts, e.GetStringValue())
		}
		return strings.Join(parts, ","), true
	case *structpb.Value_NumberValue:
		return strconv.FormatFloat(x.NumberValue, 'f', -1, 64), true
	}
	return "", false
}
