package policy

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/gatecheck/gatecheck/fakes/apigee/threat"
	"github.com/gatecheck/gatecheck/fakes/model"
)

// GraphQL is Apigee's GraphQL policy: <Action>parse</Action> enforces
// <OperationType> (query, mutation or query_mutation; subscriptions are
// refused whenever it is set), <MaxDepth> (field nesting, fragments
// followed, safe against fragment cycles) and <MaxCount> (fragments, the
// operation included); verify validates the document against the schema
// <ResourceURL>graphql://NAME</ResourceURL> names; parse_verify does both.
// <MaxPayloadSizeInBytes> limits the POST body or the GET query parameter.
// Requests come by GET (?query=&operationName=&variables=) or POST
// (application/json {"query":...} or application/graphql).
//
// Schemas: graphql://gatecheck-models.graphql (also graphql://schema.graphql,
// the name of the file it is served from) is the fake model server's
// schema, model.GraphQLSchema; Env.GraphQLSchemas adds others by name.
//
// Which requests: Apigee attaches a GraphQL policy to a GraphQL proxy,
// where every request is GraphQL. Here one flow serves every route of the
// Gateway, so the policy checks a request only when it is a GraphQL request
// — its path ends in /graphql (…/graphql or …/graphql/) or its Content-Type
// is application/graphql — and lets every other request pass untouched
// (no variables set). Source must be request (the default) or message.
//
// Faults (status 400, or <FaultStatus>): steps.graphql.MaxDepthExceeded,
// MaxCountExceeded, OperationTypeNotAllowed, SchemaValidationFailed,
// MaxPayloadSizeExceeded and InvalidPayload (an unreadable request or
// document, a fragment cycle). Sets graphql.{name}.failed on the requests it
// checks.
type GraphQL struct {
	name   string
	limits threat.GraphQLLimits
	status int
}

type xmlGraphQL struct {
	xmlCommon
	Source                *string `xml:"Source"`
	OperationType         *string `xml:"OperationType"`
	MaxDepth              *string `xml:"MaxDepth"`
	MaxCount              *string `xml:"MaxCount"`
	MaxPayloadSizeInBytes *string `xml:"MaxPayloadSizeInBytes"`
	Action                *string `xml:"Action"`
	ResourceURL           *string `xml:"ResourceURL"`
	FaultStatus           *string `xml:"FaultStatus"`
}

// builtinGraphQLSchemas are the schemas every flow can name.
var builtinGraphQLSchemas = map[string]string{
	"gatecheck-models.graphql": model.GraphQLSchema,
	"schema.graphql":           model.GraphQLSchema,
}

// schemaCache keeps loaded schemas by name and content: flows are built
// again on every topology change, and a schema does not change.
var schemaCache sync.Map // [sha256(name, sdl)]*ast.Schema

func loadSchema(name, sdl string) (*ast.Schema, error) {
	key := sha256.Sum256([]byte(name + "\x00" + sdl))
	if s, ok := schemaCache.Load(key); ok {
		return s.(*ast.Schema), nil
	}
	s, err := threat.LoadSchema(name, sdl)
	if err != nil {
		return nil, err
	}
	schemaCache.Store(key, s)
	return s, nil
}

func parseGraphQL(data []byte, env Env) (Policy, error) {
	var x xmlGraphQL
	pe, err := decodePolicy("GraphQL", data, &x, &x.xmlCommon,
		[]string{"Source", "OperationType", "MaxDepth", "MaxCount", "MaxPayloadSizeInBytes", "Action", "ResourceURL", "FaultStatus"}, nil)
	if err != nil {
		return nil, err
	}
	p := &GraphQL{name: x.Name}
	src, err := parseSource(pe, x.Source, srcRequest)
	if err != nil {
		return nil, err
	}
	if src == srcResponse {
		return nil, pe.elem("Source", "response: the GraphQL policy checks requests")
	}
	text := func(elem string, v *string) string {
		if v == nil {
			return ""
		}
		return strings.TrimSpace(*v)
	}
	p.limits.Action = text("Action", x.Action)
	switch p.limits.Action {
	case "", threat.GraphQLActionParse, threat.GraphQLActionVerify, threat.GraphQLActionParseVerify:
	default:
		return nil, pe.elem("Action", "%q is not parse, verify or parse_verify", p.limits.Action)
	}
	p.limits.OperationType = text("OperationType", x.OperationType)
	switch p.limits.OperationType {
	case "", threat.GraphQLOperationQuery, threat.GraphQLOperationMutation, threat.GraphQLOperationQueryMutation:
	default:
		return nil, pe.elem("OperationType", "%q is not query, mutation or query_mutation", p.limits.OperationType)
	}
	for _, l := range []struct {
		elem string
		x    *string
		dst  *int
	}{
		{"MaxDepth", x.MaxDepth, &p.limits.MaxDepth},
		{"MaxCount", x.MaxCount, &p.limits.MaxCount},
		{"MaxPayloadSizeInBytes", x.MaxPayloadSizeInBytes, &p.limits.MaxPayloadSizeInBytes},
	} {
		if l.x == nil {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(*l.x))
		if err != nil || n < 0 {
			return nil, pe.elem(l.elem, "%q is not a non-negative integer", strings.TrimSpace(*l.x))
		}
		*l.dst = n
	}
	if u := text("ResourceURL", x.ResourceURL); u != "" {
		name, ok := strings.CutPrefix(u, "graphql://")
		if !ok || name == "" {
			return nil, pe.elem("ResourceURL", "%q is not graphql://NAME", u)
		}
		sdl, ok := env.GraphQLSchemas[name]
		if !ok {
			sdl, ok = builtinGraphQLSchemas[name]
		}
		if !ok {
			known := make([]string, 0, len(builtinGraphQLSchemas)+len(env.GraphQLSchemas))
			for n := range builtinGraphQLSchemas {
				known = append(known, "graphql://"+n)
			}
			for n := range env.GraphQLSchemas {
				if _, dup := builtinGraphQLSchemas[n]; !dup {
					known = append(known, "graphql://"+n)
				}
			}
			slices.Sort(known)
			return nil, pe.elem("ResourceURL", "no schema %q (known: %s)", u, strings.Join(known, ", "))
		}
		if p.limits.Schema, err = loadSchema(name, sdl); err != nil {
			return nil, pe.elem("ResourceURL", "%v", err)
		}
	}
	if err := p.limits.Validate(); err != nil {
		if p.limits.Schema == nil && (p.limits.Action == threat.GraphQLActionVerify || p.limits.Action == threat.GraphQLActionParseVerify) {
			return nil, pe.elem("ResourceURL", "required by Action %s (graphql://NAME of the schema to verify against)", p.limits.Action)
		}
		return nil, pe.errorf("%v", err)
	}
	if p.status, err = parseFaultStatus(pe, x.FaultStatus); err != nil {
		return nil, err
	}
	return p, nil
}

// Name returns the policy's name.
func (p *GraphQL) Name() string { return p.name }

// Kind returns "GraphQL".
func (p *GraphQL) Kind() string { return "GraphQL" }

// isGraphQLRequest reports whether the GraphQL policy checks a request: its
// path ends in /graphql or its Content-Type is application/graphql.
func isGraphQLRequest(path, contentType string) bool {
	return strings.HasSuffix(strings.TrimSuffix(path, "/"), "/graphql") || mediaIs(contentType, "application/graphql", "")
}

// Apply checks a GraphQL request; any other request passes.
func (p *GraphQL) Apply(_ context.Context, m *Message) (*Fault, error) {
	ct := contentTypeOf(m.Header)
	if !isGraphQLRequest(m.Path, ct) {
		return nil, nil
	}
	query, _ := url.ParseQuery(m.RawQuery)
	req, err := threat.ParseGraphQLHTTP(m.Method, query, ct, m.Body)
	var v *threat.GraphQLViolation
	if err != nil {
		if !errors.As(err, &v) {
			v = &threat.GraphQLViolation{Code: threat.GraphQLInvalidPayload, Detail: err.Error()}
		}
	} else {
		v = p.limits.Check(req)
	}
	m.vars().Set("graphql."+p.name+".failed", boolString(v != nil))
	if v == nil {
		return nil, nil
	}
	def, ok := graphQLFaults[v.Code]
	if !ok {
		def = faultGraphQLInvalid
	}
	return threatFault(def, p.status, false, v.FaultString(p.name)), nil
}
