package manifests

import (
	"fmt"
	"github.com/gatecheck/gatecheck/internal/apigeeapi"
	"regexp"
	"time"
)

// Ref names a namespaced object. The zero Namespace means "default" once
// compiled: Compile fills it in.
type Ref struct {
	Namespace string
	Name      string
}

// String renders the reference as namespace/name.
func (r Ref) String() string { return r.Namespace + "/" + r.Name }

// Snapshot is the compiled, immutable topology: every reference resolved, every
// default filled in. The data plane reads it and never changes it; a new
// configuration is a new Snapshot swapped in atomically.
type Snapshot struct {
	// Gateways in the order their files listed them.
	Gateways []*Gateway
	// Pools by reference.
	Pools map[Ref]*Pool
	// Services by reference.
	Services map[Ref]*Service
	// Workloads are the Deployments, in file order.
	Workloads []*Workload
	// Objectives by name (the value of the x-gateway-inference-objective header).
	Objectives map[string]*Objective
	// Products are the APIProducts and APIOperationSets, as the Apigee
	// Operator syncs them into Apigee: one product each, with an operation
	// config per enforcing APIMExtensionPolicy (its apiSource).
	Products []apigeeapi.APIProduct
	// Policies is Apigee policy XML found beside the manifests, by file name
	// relative to the manifests root (for example "policies/verify-key.xml").
	Policies map[string][]byte
	// GatewayClasses maps each GatewayClass name to its controllerName. A
	// Gateway may name a class that is not here (one the cluster provides).
	GatewayClasses map[string]string
}

// Gateway is one Gateway object with its listeners and the routes attached to it.
type Gateway struct {
	Ref       Ref
	ClassName string
	Listeners []Listener
	// Rules are the rules of every HTTPRoute attached to this Gateway, flattened
	// to one entry per match and sorted by Gateway API's precedence
	// (https://gateway-api.sigs.k8s.io/reference/spec/#httprouterule): exact
	// path first, then regular expression (implementation-specific), then
	// prefix with the longer prefix first, then a method match, then more
	// header matches, then more query matches, then the older route, then
	// namespace/name order, then rule and match order. The first rule that
	// matches a request wins.
	Rules []*RouteRule
	// Extensions are called in order for every request on this Gateway.
	Extensions []*Extension
	// Limits are the payload and protocol limits, from the Gateway's
	// gatecheck.dev/ annotations (see limits.go), defaults filled in.
	Limits Limits
}

// Listener is one Gateway listener.
type Listener struct {
	Name     string
	Port     int32
	Protocol string // HTTP; HTTPS is refused at compile time (no certificates in the simulation)
	// Hostname is the listener's hostname, empty for any.
	Hostname string
}

// PathMatchType is how a route matches the request path.
type PathMatchType string

// Path match types, as Gateway API spells them.
const (
	PathExact             PathMatchType = "Exact"
	PathPrefix            PathMatchType = "PathPrefix"
	PathRegularExpression PathMatchType = "RegularExpression"
)

// StringMatch matches a header or query value exactly or by a regular expression.
type StringMatch struct {
	Name   string // header names are lower-cased
	Exact  string
	Regexp *regexp.Regexp // nil for an exact match
}

// Matches reports whether v matches.
func (m StringMatch) Matches(v string) bool {
	if m.Regexp != nil {
		return m.Regexp.MatchString(v)
	}
	return v == m.Exact
}

// RouteRule is one match of one HTTPRoute rule, with the rule's backends.
type RouteRule struct {
	// Route is the HTTPRoute this rule came from; RuleIndex and MatchIndex say
	// which rule and match, for errors and traces.
	Route      Ref
	RuleIndex  int
	MatchIndex int
	// Hostnames of the route; empty means any.
	Hostnames []string

	PathType  PathMatchType
	PathValue string
	// PathRegexp is set for PathRegularExpression, anchored to the whole path.
	PathRegexp *regexp.Regexp
	Headers    []StringMatch
	Query      []StringMatch
	Method     string // empty for any

	Backends []Backend
	// Timeout is timeouts.request; zero means none.
	Timeout time.Duration
	// BackendTimeout is timeouts.backendRequest (each attempt to reach a
	// backend); zero means none.
	BackendTimeout time.Duration
	// RequestHeaders are added/set/removed before the request goes upstream
	// (the RequestHeaderModifier filter). Header names are lower-cased.
	SetRequestHeaders    map[string]string
	AddRequestHeaders    map[string]string
	RemoveRequestHeaders []string
}

// BackendKind is what a backendRef points at.
type BackendKind string

// Backend kinds.
const (
	BackendService       BackendKind = "Service"
	BackendInferencePool BackendKind = "InferencePool"
)

// Backend is one weighted backendRef of a rule.
type Backend struct {
	Kind   BackendKind
	Ref    Ref
	Port   int32 // service port; ignored for pools
	Weight int32 // default 1; 0 means never chosen
}

// FailureMode is what the gateway does when a pool's endpoint picker cannot be
// reached.
type FailureMode string

// Failure modes, as the InferencePool API spells them.
const (
	FailClose FailureMode = "FailClose"
	FailOpen  FailureMode = "FailOpen"
)

// Pool is a compiled InferencePool.
type Pool struct {
	Ref         Ref
	Selector    map[string]string
	TargetPorts []int32
	AppProtocol string // "http" or "kubernetes.io/h2c"
	// Picker is the endpoint picker, nil when the pool names none (v1.6+: the
	// gateway then spreads requests itself).
	Picker *PickerRef
	// Workloads are the Deployments whose pod labels match Selector.
	Workloads []*Workload
}

// PickerRef is a pool's endpointPickerRef resolved to its Service.
type PickerRef struct {
	Service     Ref
	Port        int32
	FailureMode FailureMode
}

// Service is a compiled v1 Service.
type Service struct {
	Ref      Ref
	Selector map[string]string
	Ports    []ServicePort
	// Workloads whose pod labels match Selector.
	Workloads []*Workload
}

// ServicePort is one port of a Service.
type ServicePort struct {
	Name       string
	Port       int32
	TargetPort int32
}

// Workload is a compiled apps/v1 Deployment: what the simulation starts and a
// cluster runs.
type Workload struct {
	Ref       Ref
	Replicas  int
	PodLabels map[string]string
	Image     string
	// Command and Args of the first container.
	Command []string
	Args    []string
	// Ports the first container declares.
	Ports []int32
}

// Objective is a compiled InferenceObjective.
type Objective struct {
	Ref      Ref
	Priority int
	Pool     Ref
}

// FieldError is a compile or decode error that names where the problem is:
// the file, the object and the field path.
type FieldError struct {
	File   string // file name relative to the manifests root; empty for objects not read from a file
	Object string // Kind namespace/name
	Field  string // field path, for example spec.rules[0].backendRefs[1].name
	Msg    string
}

// Error renders the error as "file: object: field: message", leaving out
// the parts that are empty.
func (e *FieldError) Error() string {
	where := e.Object
	switch {
	case e.File != "" && where != "":
		where = e.File + ": " + where
	case e.File != "":
		where = e.File
	}
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", where, e.Field, e.Msg)
	}
	return fmt.Sprintf("%s: %s", where, e.Msg)
}

// Extension is an ext_proc service the gateway calls for every request on a
// Gateway, before routing (a traffic extension; in practice the Apigee runtime
// attached by an APIMExtensionPolicy). Extensions run in order, before any
// pool's endpoint picker.
type Extension struct {
	// Name is the attaching object, for example the APIMExtensionPolicy's name.
	Name string
	// Service is where the ext_proc server listens.
	Service Ref
	Port    int32
	// FailOpen lets requests through unprocessed when the extension cannot be
	// reached or times out; otherwise the gateway answers 500 (504 on timeout).
	FailOpen bool
	// Timeout bounds each message exchange with the extension.
	Timeout time.Duration

	// The Apigee side of an APIMExtensionPolicy.
	Namespace string
	// DefaultSecurity is spec.defaultSecurityEnabled: the operator's API-key
	// check and product quota.
	DefaultSecurity bool
	// RequestPolicies and ResponsePolicies are the policy XML files attached
	// to the flow (policies/<name>/request/*.xml and .../response/*.xml beside
	// the manifests), in file-name order.
	RequestPolicies  []PolicyFile
	ResponsePolicies []PolicyFile
}

// PolicyFile is one Apigee policy XML file.
type PolicyFile struct {
	Path string // relative to the manifests root
	XML  []byte
}
