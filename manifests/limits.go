package manifests

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Gateway API has no fields for payload and protocol limits, so a Gateway
// sets them with annotations. (Envoy Gateway puts the same settings in a
// ClientTrafficPolicy attached to the Gateway, and the body limit in a
// BackendTrafficPolicy's requestBuffer; an annotation keeps a topology
// self-contained and portable to a cluster that ignores it.)
const (
	// AnnotationPrefix is the prefix of gatecheck's own annotations. An
	// annotation with this prefix that gatecheck does not know is an error,
	// so a typo cannot silently leave a limit at its default.
	AnnotationPrefix = "gatecheck.dev/"

	// AnnotationMaxRequestBodyBytes bounds a request body (413 above it).
	AnnotationMaxRequestBodyBytes = AnnotationPrefix + "max-request-body-bytes"
	// AnnotationMaxRequestHeadersBytes bounds the total size of the request
	// header names and values (431 above it).
	AnnotationMaxRequestHeadersBytes = AnnotationPrefix + "max-request-headers-bytes"
	// AnnotationMaxRequestHeaders bounds the number of request header lines
	// (431 above it).
	AnnotationMaxRequestHeaders = AnnotationPrefix + "max-request-headers"
	// AnnotationMaxURLLength bounds the request target as sent (414 above it).
	AnnotationMaxURLLength = AnnotationPrefix + "max-url-length"
)

// Defaults of Limits, used for a limit a Gateway does not set.
const (
	// DefaultMaxRequestBodyBytes is the gateway's buffer for a request body.
	DefaultMaxRequestBodyBytes = 32 << 20
	// DefaultMaxRequestHeadersBytes is a little above Envoy's default
	// max_request_headers_kb (60 KiB).
	DefaultMaxRequestHeadersBytes = 64 << 10
	// DefaultMaxRequestHeaders is Envoy's default max_headers_count.
	DefaultMaxRequestHeaders = 100
	// DefaultMaxURLLength is the request-line length most servers and
	// proxies accept (RFC 9112 §3 recommends supporting at least 8000 octets).
	DefaultMaxURLLength = 8192
)

// Ceilings of Limits: the largest value an annotation may set.
const (
	// MaxRequestBodyBytesCeiling is the most the gateway buffers: request
	// bodies are read whole before any processor sees them, and a buffered
	// body travels to an ext_proc processor in one gRPC message.
	MaxRequestBodyBytesCeiling = 32 << 20
	// MaxRequestHeadersBytesCeiling, MaxRequestHeadersCeiling and
	// MaxURLLengthCeiling bound the request head the gateway holds while it
	// checks it, before any of it reaches the HTTP parser.
	MaxRequestHeadersBytesCeiling = 1 << 20
	MaxRequestHeadersCeiling      = 10000
	MaxURLLengthCeiling           = 1 << 20
)

// Limits are a Gateway's payload and protocol limits. Compile fills in every
// field; a zero field (for example in a Snapshot built by hand) means the
// default (see OrDefaults).
type Limits struct {
	// MaxRequestBodyBytes bounds a request body, with or without a
	// Content-Length (413 Payload Too Large above it).
	MaxRequestBodyBytes int64
	// MaxRequestHeadersBytes bounds the sum of the lengths of the request's
	// header names and values, values without surrounding whitespace (431
	// Request Header Fields Too Large above it).
	MaxRequestHeadersBytes int
	// MaxRequestHeaders bounds the number of request header lines, Host
	// included (431 above it).
	MaxRequestHeaders int
	// MaxURLLength bounds the request target as sent, in bytes (414 URI Too
	// Long above it).
	MaxURLLength int
}

// DefaultLimits returns the limits of a Gateway that sets none.
func DefaultLimits() Limits {
	return Limits{
		MaxRequestBodyBytes:    DefaultMaxRequestBodyBytes,
		MaxRequestHeadersBytes: DefaultMaxRequestHeadersBytes,
		MaxRequestHeaders:      DefaultMaxRequestHeaders,
		MaxURLLength:           DefaultMaxURLLength,
	}
}

// OrDefaults returns l with every zero or negative field replaced by its
// default.
func (l Limits) OrDefaults() Limits {
	d := DefaultLimits()
	if l.MaxRequestBodyBytes <= 0 {
		l.MaxRequestBodyBytes = d.MaxRequestBodyBytes
	}
	if l.MaxRequestHeadersBytes <= 0 {
		l.MaxRequestHeadersBytes = d.MaxRequestHeadersBytes
	}
	if l.MaxRequestHeaders <= 0 {
		l.MaxRequestHeaders = d.MaxRequestHeaders
	}
	if l.MaxURLLength <= 0 {
		l.MaxURLLength = d.MaxURLLength
	}
	return l
}

// limitAnnotation is one row of the annotation registry.
type limitAnnotation struct {
	name    string
	ceiling int64
	// bytes allows a Kubernetes quantity ("64Ki", "32Mi") besides a plain
	// decimal number.
	bytes bool
	set   func(*Limits, int64)
}

var limitAnnotations = []limitAnnotation{
	{AnnotationMaxRequestBodyBytes, MaxRequestBodyBytesCeiling, true,
		func(l *Limits, v int64) { l.MaxRequestBodyBytes = v }},
	{AnnotationMaxRequestHeadersBytes, MaxRequestHeadersBytesCeiling, true,
		func(l *Limits, v int64) { l.MaxRequestHeadersBytes = int(v) }},
	{AnnotationMaxRequestHeaders, MaxRequestHeadersCeiling, false,
		func(l *Limits, v int64) { l.MaxRequestHeaders = int(v) }},
	{AnnotationMaxURLLength, MaxURLLengthCeiling, false,
		func(l *Limits, v int64) { l.MaxURLLength = int(v) }},
}

// compileLimits reads a Gateway's gatecheck.dev/ annotations into Limits,
// defaults filled in. Every bad or unknown annotation is reported, in name
// order.
func (c *compiler) compileLimits(o Object, annotations map[string]string) Limits {
	lim := DefaultLimits()
	names := make([]string, 0, len(annotations))
	for name := range annotations {
		if strings.HasPrefix(name, AnnotationPrefix) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		field := fmt.Sprintf("metadata.annotations[%q]", name)
		i := slices.IndexFunc(limitAnnotations, func(a limitAnnotation) bool { return a.name == name })
		if i < 0 {
			c.errorf(o, field, "unknown gatecheck annotation (known: %s)", knownAnnotations())
			continue
		}
		a := limitAnnotations[i]
		v, ok := parseLimit(annotations[name], a.bytes)
		if !ok || v < 1 || v > a.ceiling {
			what := "a whole number"
			if a.bytes {
				what = "a whole number of bytes (like 65536 or 64Ki)"
			}
			c.errorf(o, field, "must be %s from 1 to %d, got %q", what, a.ceiling, annotations[name])
			continue
		}
		a.set(&lim, v)
	}
	return lim
}

func knownAnnotations() string {
	names := make([]string, len(limitAnnotations))
	for i, a := range limitAnnotations {
		names[i] = a.name
	}
	return strings.Join(names, ", ")
}

// parseLimit reads a plain decimal number or, when quantity is set, a
// Kubernetes quantity that is a whole number ("64Ki", "1M"; not "1.5" or
// "100m").
func parseLimit(s string, quantity bool) (int64, bool) {
	if s != "" && strings.Trim(s, "0123456789") == "" {
		v, err := strconv.ParseInt(s, 10, 64)
		return v, err == nil
	}
	if !quantity {
		return 0, false
	}
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return 0, false
	}
	return q.AsInt64()
}
