package manifests

import (
	"bytes"
	gojson "encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Object is one decoded Kubernetes object and where it came from.
type Object struct {
	// File is the file name the object was read from, relative to the manifests root.
	File string
	// Doc is the 0-based index of the YAML document in File. Error messages
	// count documents from 1 ("document 1" is Doc 0).
	Doc int
	// APIVersion and Kind as written.
	APIVersion string
	Kind       string
	// Namespace is metadata.namespace, "default" when unset; empty for
	// cluster-scoped kinds (GatewayClass).
	Namespace string
	// Name is metadata.name.
	Name string
	// Value is a pointer to the typed object: *gatewayv1.GatewayClass,
	// *gatewayv1.Gateway, *gatewayv1.HTTPRoute, *InferencePool,
	// *InferenceObjective, *appsv1.Deployment or *corev1.Service. Decode leaves
	// it exactly as written: defaults are filled in by Compile.
	Value any
}

// String names the object the way errors do: "Kind namespace/name", or
// "Kind name" for a cluster-scoped kind.
func (o Object) String() string { return objectName(o.Kind, o.Namespace, o.Name) }

func objectName(kind, namespace, name string) string {
	if namespace == "" {
		return kind + " " + name
	}
	return kind + " " + namespace + "/" + name
}

// kindInfo is one row of the kind registry: an apiVersion and kind that Decode
// understands and the Go type it decodes into.
type kindInfo struct {
	apiVersion string
	kind       string
	namespaced bool
	new        func() any
}

// kinds is the registry of the kinds Decode understands. Adding a kind is one
// row here (and, for it to mean anything, a case in Compile).
var kinds = []kindInfo{
	{"gateway.networking.k8s.io/v1", "GatewayClass", false, func() any { return new(gatewayv1.GatewayClass) }},
	{"gateway.networking.k8s.io/v1", "Gateway", true, func() any { return new(gatewayv1.Gateway) }},
	{"gateway.networking.k8s.io/v1", "HTTPRoute", true, func() any { return new(gatewayv1.HTTPRoute) }},
	{"inference.networking.k8s.io/v1", "InferencePool", true, func() any { return new(InferencePool) }},
	{"inference.networking.x-k8s.io/v1alpha2", "InferenceObjective", true, func() any { return new(InferenceObjective) }},
	{"apps/v1", "Deployment", true, func() any { return new(appsv1.Deployment) }},
	{"v1", "Service", true, func() any { return new(corev1.Service) }},
	{"apim.googleapis.com/v1", "APIMExtensionPolicy", true, func() any { return new(APIMExtensionPolicy) }},
	{"apim.googleapis.com/v1", "APIProduct", true, func() any { return new(APIProduct) }},
	{"apim.googleapis.com/v1", "APIOperationSet", true, func() any { return new(APIOperationSet) }},
}

func lookupKind(apiVersion, kind string) (kindInfo, bool) {
	for _, k := range kinds {
		if k.apiVersion == apiVersion && k.kind == kind {
			return k, true
		}
	}
	return kindInfo{}, false
}

// unsupportedKind explains an apiVersion/kind pair that is not in the registry,
// pointing at the supported version when only the version is wrong (for
// example the alpha InferencePool of GIE before v1.0).
func unsupportedKind(apiVersion, kind string) string {
	msg := fmt.Sprintf("unsupported kind %s %s", apiVersion, kind)
	for _, k := range kinds {
		if k.kind == kind {
			return msg + fmt.Sprintf(" (%s is supported as %s)", kind, k.apiVersion)
		}
	}
	return msg
}

// Decode decodes every object in one multi-document YAML file. Empty documents
// are skipped. Decoding is strict: unknown and duplicate fields are errors.
// Every error is a *FieldError; all of them are returned together (joined with
// errors.Join), beside the objects that did decode.
func Decode(file string, data []byte) ([]Object, error) {
	var objs []Object
	var errs []error
	for doc, chunk := range splitDocuments(data) {
		o, ok, err := decodeDocument(file, doc, chunk.data, chunk.line)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			objs = append(objs, o)
		}
	}
	return objs, errors.Join(errs...)
}

type yamlChunk struct {
	data []byte
	line int // 1-based line in the file where the chunk starts
}

// splitDocuments splits a YAML stream at "---" lines, the way kubectl does.
// Each chunk after the first starts with its separator line so that the line
// numbers YAML reports count from the chunk's first line. Text before the first
// separator is a document only if it has content (YAML's implicit document).
func splitDocuments(data []byte) []yamlChunk {
	var chunks []yamlChunk
	start, startLine, line := 0, 1, 1
	for off := 0; off <= len(data); {
		end := bytes.IndexByte(data[off:], '\n')
		next := len(data) + 1
		if end >= 0 {
			next = off + end + 1
		}
		lineText := data[off:min(next, len(data))]
		if isSeparator(lineText) && off > 0 {
			chunks = append(chunks, yamlChunk{data[start:off], startLine})
			start, startLine = off, line
		}
		off = next
		line++
	}
	chunks = append(chunks, yamlChunk{data[start:], startLine})
	if len(chunks) > 0 && !isSeparator(chunks[0].data) && !hasContent(chunks[0].data) {
		chunks = chunks[1:]
	}
	return chunks
}

func isSeparator(line []byte) bool {
	if !bytes.HasPrefix(line, []byte("---")) {
		return false
	}
	rest := line[3:]
	return len(rest) == 0 || rest[0] == ' ' || rest[0] == '\t' || rest[0] == '\n' || rest[0] == '\r'
}

// hasContent reports whether YAML text has anything but blank lines, comments
// and directives.
func hasContent(data []byte) bool {
	for l := range bytes.SplitSeq(data, []byte("\n")) {
		l = bytes.TrimSpace(l)
		if len(l) > 0 && l[0] != '#' && l[0] != '%' {
			return true
		}
	}
	return false
}

// decodeDocument decodes one YAML document. ok is false for an empty document.
func decodeDocument(file string, doc int, data []byte, firstLine int) (obj Object, ok bool, err error) {
	where := fmt.Sprintf("document %d", doc+1)
	fail := func(field, msg string) (Object, bool, error) {
		return Object{}, false, &FieldError{File: file, Object: where, Field: field, Msg: msg}
	}
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return fail("", yamlMessage(err, firstLine))
	}
	j = bytes.TrimSpace(j)
	if bytes.Equal(j, []byte("null")) {
		return Object{}, false, nil
	}
	var head map[string]any
	if len(j) == 0 || j[0] != '{' || gojson.Unmarshal(j, &head) != nil {
		return fail("", "document is not a mapping (a Kubernetes object)")
	}
	apiVersion, _ := head["apiVersion"].(string)
	kind, _ := head["kind"].(string)
	meta, _ := head["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	namespace, _ := meta["namespace"].(string)
	switch {
	case apiVersion == "":
		return fail("apiVersion", "must be set")
	case kind == "":
		return fail("kind", "must be set")
	}
	info, known := lookupKind(apiVersion, kind)
	if !known {
		return fail("", unsupportedKind(apiVersion, kind))
	}
	if name == "" {
		return fail("metadata.name", "must be set")
	}
	if !info.namespaced {
		namespace = ""
	} else if namespace == "" {
		namespace = defaultNamespace
	}
	where = objectName(kind, namespace, name)

	v := info.new()
	strict, err := kjson.UnmarshalStrict(j, v)
	if err != nil {
		return fail(jsonErrorField(err), jsonErrorMessage(err))
	}
	if len(strict) > 0 {
		var errs []error
		for _, e := range strict {
			field, msg := "", e.Error()
			if fe, ok := e.(kjson.FieldError); ok {
				field = fe.FieldPath()
				msg, _, _ = strings.Cut(msg, " \"")
			}
			errs = append(errs, &FieldError{File: file, Object: where, Field: field, Msg: msg})
		}
		return Object{}, false, errors.Join(errs...)
	}
	return Object{
		File: file, Doc: doc,
		APIVersion: apiVersion, Kind: kind,
		Namespace: namespace, Name: name,
		Value: v,
	}, true, nil
}

const defaultNamespace = "default"

var (
	yamlLineRE   = regexp.MustCompile(`line (\d+)`)
	yamlDupKeyRE = regexp.MustCompile(`key (".*") already set in map`)
)

// yamlMessage turns a YAML parser error into one line with line numbers
// counted from the start of the file.
func yamlMessage(err error, firstLine int) string {
	msg := strings.TrimPrefix(err.Error(), "error converting YAML to JSON: ")
	msg = strings.TrimPrefix(msg, "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
	lines := strings.Split(msg, "\n")
	for i, l := range lines {
		l = strings.TrimSpace(l)
		l = yamlDupKeyRE.ReplaceAllString(l, "duplicate field $1")
		// go-yaml v2 reports parser errors ("did not find expected ...") with
		// the 0-based line of the problem, scanner errors with the 1-based one.
		offset := firstLine - 1
		if strings.Contains(l, "did not find expected") {
			offset++
		}
		l = yamlLineRE.ReplaceAllStringFunc(l, func(s string) string {
			n, err := strconv.Atoi(strings.TrimPrefix(s, "line "))
			if err != nil {
				return s
			}
			return fmt.Sprintf("line %d", n+offset)
		})
		lines[i] = l
	}
	return "invalid YAML: " + strings.Join(lines, "; ")
}

// jsonErrorField is the field path of a type error, when the decoder knows it.
func jsonErrorField(err error) string {
	var te *gojson.UnmarshalTypeError
	if errors.As(err, &te) {
		return te.Field
	}
	return ""
}

// jsonErrorMessage says what was wrong with a value without Go type names
// where it can.
func jsonErrorMessage(err error) string {
	var te *gojson.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("expected %s, got %s", jsonKind(te.Type), te.Value)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	default:
		return t.String()
	}
}
