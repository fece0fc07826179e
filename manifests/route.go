package manifests

import (
	"cmp"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// compileRoute validates an HTTPRoute, flattens its rules to one RouteRule per
// match and attaches them to every Gateway the route names.
func (c *compiler) compileRoute(o Object) {
	r := o.Value.(*gatewayv1.HTTPRoute)
	ref := refOf(o)
	if c.routeOrder == nil {
		c.routeOrder = c.rankRoutes()
	}
	parents := c.routeParents(o, r)

	var hostnames []string
	for _, h := range r.Spec.Hostnames {
		hostnames = append(hostnames, string(h))
	}
	var rules []*RouteRule
	for ri, rule := range r.Spec.Rules {
		field := fmt.Sprintf("spec.rules[%d]", ri)
		base := RouteRule{Route: ref, RuleIndex: ri, Hostnames: hostnames}
		base.Backends = c.backends(o, field, rule.BackendRefs)
		c.filters(o, field, rule.Filters, &base)
		if t := rule.Timeouts; t != nil {
			if t.Request != nil {
				base.Timeout = c.duration(o, field+".timeouts.request", *t.Request)
			}
			if t.BackendRequest != nil {
				base.BackendTimeout = c.duration(o, field+".timeouts.backendRequest", *t.BackendRequest)
				if base.Timeout != 0 && base.BackendTimeout > base.Timeout {
					c.errorf(o, field+".timeouts.backendRequest", "must not be longer than timeouts.request (%s)", *t.Request)
				}
			}
		}
		if rule.Retry != nil {
			c.errorf(o, field+".retry", "retries are not supported by the simulation")
		}
		if rule.SessionPersistence != nil {
			c.errorf(o, field+".sessionPersistence", "session persistence is not supported by the simulation")
		}
		matches := rule.Matches
		if len(matches) == 0 {
			matches = []gatewayv1.HTTPRouteMatch{{}}
		}
		for mi, m := range matches {
			rr := base // the slices and maps are shared between matches of a rule: read-only
			rr.MatchIndex = mi
			c.match(o, fmt.Sprintf("%s.matches[%d]", field, mi), m, &rr)
			rules = append(rules, &rr)
		}
	}
	for _, gw := range parents {
		gw.Rules = append(gw.Rules, rules...)
	}
}

// routeParents resolves parentRefs to the Gateways the route attaches to, each once.
func (c *compiler) routeParents(o Object, r *gatewayv1.HTTPRoute) []*Gateway {
	if len(r.Spec.ParentRefs) == 0 {
		c.errorf(o, "spec.parentRefs", "must name at least one Gateway")
		return nil
	}
	var out []*Gateway
	for i, p := range r.Spec.ParentRefs {
		field := fmt.Sprintf("spec.parentRefs[%d]", i)
		group, kind := gatewayGroup, "Gateway"
		if p.Group != nil {
			group = string(*p.Group)
		}
		if p.Kind != nil {
			kind = string(*p.Kind)
		}
		if group != gatewayGroup || kind != "Gateway" {
			c.errorf(o, field, "parent %s in group %q is not supported (only Gateway)", kind, group)
			continue
		}
		gref := Ref{Namespace: o.Namespace, Name: string(p.Name)}
		if p.Namespace != nil && *p.Namespace != "" {
			gref.Namespace = string(*p.Namespace)
		}
		gw, ok := c.gatewayByRef[gref]
		if !ok {
			c.errorf(o, field+".name", "Gateway %s not found", gref)
			continue
		}
		listeners := c.gatewayObj[gref].Spec.Listeners
		if p.SectionName != nil {
			listeners = slices.DeleteFunc(slices.Clone(listeners), func(l gatewayv1.Listener) bool { return l.Name != *p.SectionName })
			if len(listeners) == 0 {
				c.errorf(o, field+".sectionName", "Gateway %s has no listener %q", gref, *p.SectionName)
				continue
			}
		}
		if p.Port != nil {
			listeners = slices.DeleteFunc(slices.Clone(listeners), func(l gatewayv1.Listener) bool { return l.Port != *p.Port })
			if len(listeners) == 0 {
				c.errorf(o, field+".port", "Gateway %s has no matching listener on port %d", gref, *p.Port)
				continue
			}
		}
		if !slices.ContainsFunc(listeners, func(l gatewayv1.Listener) bool { return allowsRoute(l, o.Namespace, gref.Namespace) }) {
			c.errorf(o, field, "no listener of Gateway %s allows HTTPRoutes from namespace %s", gref, o.Namespace)
			continue
		}
		if !slices.Contains(out, gw) {
			out = append(out, gw)
		}
	}
	return out
}

// allowsRoute applies a listener's allowedRoutes to an HTTPRoute in routeNS.
func allowsRoute(l gatewayv1.Listener, routeNS, gatewayNS string) bool {
	from := gatewayv1.NamespacesFromSame
	if ar := l.AllowedRoutes; ar != nil {
		if ar.Namespaces != nil && ar.Namespaces.From != nil {
			from = *ar.Namespaces.From
		}
		if len(ar.Kinds) > 0 && !slices.ContainsFunc(ar.Kinds, func(k gatewayv1.RouteGroupKind) bool {
			return k.Kind == "HTTPRoute" && (k.Group == nil || *k.Group == gatewayGroup)
		}) {
			return false
		}
	}
	switch from {
	case gatewayv1.NamespacesFromAll:
		return true
	case gatewayv1.NamespacesFromSame:
		return routeNS == gatewayNS
	default: // None, and Selector (refused on the Gateway)
		return false
	}
}

// backends resolves a rule's backendRefs.
func (c *compiler) backends(o Object, field string, refs []gatewayv1.HTTPBackendRef) []Backend {
	var out []Backend
	for i, br := range refs {
		f := fmt.Sprintf("%s.backendRefs[%d]", field, i)
		group, kind := "", "Service"
		if br.Group != nil {
			group = string(*br.Group)
		}
		if br.Kind != nil {
			kind = string(*br.Kind)
		}
		b := Backend{Ref: Ref{Namespace: o.Namespace, Name: string(br.Name)}, Weight: 1}
		if br.Weight != nil {
			b.Weight = *br.Weight
			if b.Weight < 0 || b.Weight > maxWeight {
				c.errorf(o, f+".weight", "must be between 0 and %d, got %d", maxWeight, b.Weight)
			}
		}
		if len(br.Filters) > 0 {
			c.errorf(o, f+".filters", "filters on backendRefs are not supported by the simulation")
		}
		if br.Namespace != nil && string(*br.Namespace) != o.Namespace {
			c.errorf(o, f+".namespace", "cross-namespace backendRefs are not supported by the simulation (they need a ReferenceGrant)")
			continue
		}
		switch {
		case group == "" && kind == "Service":
			b.Kind = BackendService
			if br.Port == nil {
				c.errorf(o, f+".port", "must be set for a Service backend")
				continue
			}
			b.Port = *br.Port
			switch found, hasPort := c.servicePort(b.Ref, b.Port); {
			case !found:
				c.errorf(o, f+".name", "Service %s not found", b.Ref)
			case !hasPort:
				c.errorf(o, f+".port", "Service %s has no port %d", b.Ref, b.Port)
			}
		case group == inferenceGroup && kind == "InferencePool":
			b.Kind = BackendInferencePool
			if _, ok := c.snap.Pools[b.Ref]; !ok && !c.declared("InferencePool", b.Ref) {
				c.errorf(o, f+".name", "InferencePool %s not found", b.Ref)
			}
		default:
			c.errorf(o, f+".kind", "backend kind %s in group %q is not supported (use Service or %s InferencePool)", kind, group, inferenceGroup)
			continue
		}
		out = append(out, b)
	}
	return out
}

// filters applies a rule's filters to rr.
func (c *compiler) filters(o Object, field string, filters []gatewayv1.HTTPRouteFilter, rr *RouteRule) {
	seen := false
	for i, f := range filters {
		ff := fmt.Sprintf("%s.filters[%d]", field, i)
		if f.Type != gatewayv1.HTTPRouteFilterRequestHeaderModifier {
			c.errorf(o, ff+".type", "filter type %s is not supported", f.Type)
			continue
		}
		if seen {
			c.errorf(o, ff+".type", "RequestHeaderModifier must not be repeated in a rule")
			continue
		}
		seen = true
		m := f.RequestHeaderModifier
		if m == nil {
			c.errorf(o, ff+".requestHeaderModifier", "must be set when type is RequestHeaderModifier")
			continue
		}
		for _, h := range m.Set {
			if rr.SetRequestHeaders == nil {
				rr.SetRequestHeaders = map[string]string{}
			}
			rr.SetRequestHeaders[strings.ToLower(string(h.Name))] = h.Value
		}
		for _, h := range m.Add {
			if rr.AddRequestHeaders == nil {
				rr.AddRequestHeaders = map[string]string{}
			}
			rr.AddRequestHeaders[strings.ToLower(string(h.Name))] = h.Value
		}
		for _, h := range m.Remove {
			rr.RemoveRequestHeaders = append(rr.RemoveRequestHeaders, strings.ToLower(h))
		}
	}
}

var httpMethods = []string{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}

// match fills in the path, header, query and method match of rr.
func (c *compiler) match(o Object, field string, m gatewayv1.HTTPRouteMatch, rr *RouteRule) {
	rr.PathType, rr.PathValue = PathPrefix, "/"
	if p := m.Path; p != nil {
		if p.Type != nil {
			rr.PathType = PathMatchType(*p.Type)
		}
		if p.Value != nil {
			rr.PathValue = *p.Value
		}
	}
	switch rr.PathType {
	case PathExact, PathPrefix:
		if !strings.HasPrefix(rr.PathValue, "/") {
			c.errorf(o, field+".path.value", "must start with \"/\", got %q", rr.PathValue)
		}
	case PathRegularExpression:
		re, err := anchored(rr.PathValue)
		if err != nil {
			c.errorf(o, field+".path.value", "invalid regular expression: %v", err)
		}
		rr.PathRegexp = re
	default:
		c.errorf(o, field+".path.type", "unsupported path match type %q (use Exact, PathPrefix or RegularExpression)", rr.PathType)
	}
	for i, h := range m.Headers {
		t := gatewayv1.HeaderMatchExact
		if h.Type != nil {
			t = *h.Type
		}
		name := strings.ToLower(string(h.Name))
		f := fmt.Sprintf("%s.headers[%d]", field, i)
		if slices.ContainsFunc(rr.Headers, func(s StringMatch) bool { return s.Name == name }) {
			c.errorf(o, f+".name", "duplicate header match %q", name)
			continue
		}
		rr.Headers = append(rr.Headers, c.stringMatch(o, f, name, string(t), h.Value))
	}
	for i, q := range m.QueryParams {
		t := gatewayv1.QueryParamMatchExact
		if q.Type != nil {
			t = *q.Type
		}
		f := fmt.Sprintf("%s.queryParams[%d]", field, i)
		if slices.ContainsFunc(rr.Query, func(s StringMatch) bool { return s.Name == string(q.Name) }) {
			c.errorf(o, f+".name", "duplicate query parameter match %q", q.Name)
			continue
		}
		rr.Query = append(rr.Query, c.stringMatch(o, f, string(q.Name), string(t), q.Value))
	}
	if m.Method != nil {
		rr.Method = string(*m.Method)
		if !slices.Contains(httpMethods, rr.Method) {
			c.errorf(o, field+".method", "invalid HTTP method %q (use one of %s)", rr.Method, strings.Join(httpMethods, ", "))
		}
	}
}

// stringMatch compiles a header or query parameter match.
func (c *compiler) stringMatch(o Object, field, name, typ, value string) StringMatch {
	sm := StringMatch{Name: name, Exact: value}
	if name == "" {
		c.errorf(o, field+".name", "must be set")
	}
	switch typ {
	case "Exact":
	case "RegularExpression":
		re, err := anchored(value)
		if err != nil {
			c.errorf(o, field+".value", "invalid regular expression: %v", err)
		}
		sm.Regexp = re
	default:
		c.errorf(o, field+".type", "unsupported match type %q (use Exact or RegularExpression)", typ)
	}
	return sm
}

// anchored compiles an RE2 expression that must match the whole value.
func anchored(expr string) (*regexp.Regexp, error) {
	if _, err := regexp.Compile(expr); err != nil {
		return nil, err
	}
	return regexp.Compile(`^(?:` + expr + `)$`)
}

// durationRE is the Gateway API duration format (GEP-2257): up to four
// number+unit pairs, units h, m, s and ms.
var durationRE = regexp.MustCompile(`^([0-9]{1,5}(h|m|s|ms)){1,4}$`)

// duration parses a Gateway API Duration; "0s" is zero (no timeout).
func (c *compiler) duration(o Object, field string, d gatewayv1.Duration) time.Duration {
	if durationRE.MatchString(string(d)) {
		if v, err := time.ParseDuration(string(d)); err == nil {
			return v
		}
	}
	c.errorf(o, field, "invalid duration %q (want a Gateway API duration such as 10s, 1m or 500ms)", d)
	return 0
}

// rankRoutes orders every HTTPRoute for precedence ties: the oldest
// creationTimestamp first, then namespace/name. Files rarely set a timestamp;
// an unset one means the route would be created now, so it counts as newest.
func (c *compiler) rankRoutes() map[Ref]int {
	routes := slices.Clone(c.routes)
	created := func(o Object) time.Time { return o.Value.(*gatewayv1.HTTPRoute).CreationTimestamp.Time }
	slices.SortStableFunc(routes, func(a, b Object) int {
		ta, tb := created(a), created(b)
		return cmp.Or(
			cmp.Compare(boolInt(ta.IsZero()), boolInt(tb.IsZero())),
			ta.Compare(tb),
			cmp.Compare(a.Namespace, b.Namespace),
			cmp.Compare(a.Name, b.Name),
		)
	})
	rank := make(map[Ref]int, len(routes))
	for i, o := range routes {
		rank[refOf(o)] = i
	}
	return rank
}

// sortRules orders rules by Gateway API precedence
// (https://gateway-api.sigs.k8s.io/reference/spec/#httprouterule):
//  1. an Exact path match;
//  2. then a RegularExpression path match (precedence among regular
//     expressions is implementation-specific: like Envoy Gateway, we put them
//     after Exact and before every prefix, longer expression first);
//  3. then a PathPrefix match, the longest prefix first;
//  4. then a method match;
//  5. then the most header matches;
//  6. then the most query parameter matches;
//  7. then the route ranked first by routeOrder (oldest, then namespace/name);
//  8. then rule order and match order within the route.
func sortRules(rules []*RouteRule, routeOrder map[Ref]int) {
	pathRank := func(t PathMatchType) int {
		switch t {
		case PathExact:
			return 0
		case PathRegularExpression:
			return 1
		default:
			return 2
		}
	}
	sort.SliceStable(rules, func(i, j int) bool {
		a, b := rules[i], rules[j]
		return cmp.Or(
			cmp.Compare(pathRank(a.PathType), pathRank(b.PathType)),
			-cmp.Compare(len(a.PathValue), len(b.PathValue)),
			-cmp.Compare(boolInt(a.Method != ""), boolInt(b.Method != "")),
			-cmp.Compare(len(a.Headers), len(b.Headers)),
			-cmp.Compare(len(a.Query), len(b.Query)),
			cmp.Compare(routeOrder[a.Route], routeOrder[b.Route]),
			cmp.Compare(a.RuleIndex, b.RuleIndex),
			cmp.Compare(a.MatchIndex, b.MatchIndex),
		) < 0
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func labelSet(m map[string]string) labels.Set { return labels.Set(m) }

// formatLabels renders labels as sorted k=v pairs joined by commas.
func formatLabels(m map[string]string) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}
