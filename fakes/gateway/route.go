package gateway

import (
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatecheck/gatecheck/manifests"
)

// route finds the rule for a request, following Gateway API's HTTPRoute
// matching (https://gateway-api.sigs.k8s.io/reference/spec/#httproutematch).
//
// The request's host must match one of the Gateway's listener hostnames (an
// empty listener hostname accepts any). Among the rules whose hostnames,
// path, headers, query parameters and method all match, the one with the most
// specific matching hostname wins (an exact hostname over any wildcard, a
// longer wildcard over a shorter one, any hostname over none), which is the
// first precedence criterion of the spec and depends on the request, so the
// compiler cannot sort by it; ties go to the earlier rule in Gateway.Rules,
// which the compiler sorted by the remaining criteria.
//
// The snapshot does not say which listener a route is attached to, so a rule
// must match both a listener hostname and its own hostnames: the intersection
// the spec asks for when the Gateway's listeners agree, which they do in every
// topology the kit ships.
func route(gw *manifests.Gateway, m *message, u *url.URL) *manifests.RouteRule {
	host := requestHost(m.host)
	if !listenerAccepts(gw.Listeners, host) {
		return nil
	}
	path := u.EscapedPath()
	var query url.Values
	var best *manifests.RouteRule
	bestScore := -1
	for _, r := range gw.Rules {
		score, ok := hostnameScore(r.Hostnames, host)
		if !ok || score <= bestScore {
			continue
		}
		if !pathMatches(r, path) || r.Method != "" && r.Method != m.method || !headersMatch(r.Headers, m.header) {
			continue
		}
		if len(r.Query) > 0 {
			if query == nil {
				query = u.Query()
			}
			if !queryMatches(r.Query, query) {
				continue
			}
		}
		best, bestScore = r, score
	}
	return best
}

// requestHost is the Host without its port, lower-cased, without a final dot.
func requestHost(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	} else {
		h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

func listenerAccepts(ls []manifests.Listener, host string) bool {
	if len(ls) == 0 {
		return true
	}
	for _, l := range ls {
		if l.Hostname == "" || hostnameMatches(l.Hostname, host) {
			return true
		}
	}
	return false
}

// hostnameMatches applies Gateway API's hostname rules: "*.example.com"
// matches any name with one or more labels before ".example.com" but not
// "example.com" itself; anything else matches exactly (case-insensitively).
func hostnameMatches(pattern, host string) bool {
	pattern = strings.ToLower(pattern)
	if suffix, ok := strings.CutPrefix(pattern, "*"); ok {
		return strings.HasSuffix(host, suffix) && len(host) > len(suffix)
	}
	return pattern == host
}

// hostnameScore ranks how specifically a rule's hostnames match host: 0 for a
// rule without hostnames, then longer wildcards, then exact names.
func hostnameScore(names []string, host string) (int, bool) {
	if len(names) == 0 {
		return 0, true
	}
	best, ok := -1, false
	for _, n := range names {
		if !hostnameMatches(n, host) {
			continue
		}
		s := 1 + len(n)
		if !strings.HasPrefix(n, "*") {
			s += 1 << 20
		}
		if s > best {
			best, ok = s, true
		}
	}
	return best, ok
}

// pathMatches applies the rule's path match. PathPrefix matches whole path
// segments, ignoring a trailing slash in the prefix: "/v1" and "/v1/" both
// match "/v1", "/v1/" and "/v1/x", never "/v1x".
func pathMatches(r *manifests.RouteRule, path string) bool {
	switch r.PathType {
	case manifests.PathExact:
		return path == r.PathValue
	case manifests.PathRegularExpression:
		return r.PathRegexp != nil && r.PathRegexp.MatchString(path)
	default: // PathPrefix; an unset match is Gateway API's default, prefix "/"
		prefix := strings.TrimRight(r.PathValue, "/")
		return prefix == "" || path == prefix || strings.HasPrefix(path, prefix+"/")
	}
}

// headersMatch matches header names case-insensitively; a header sent several
// times is matched against its values joined by ",", as Envoy does.
func headersMatch(ms []manifests.StringMatch, h http.Header) bool {
	for _, m := range ms {
		vs := h.Values(m.Name)
		if len(vs) == 0 || !m.Matches(strings.Join(vs, ",")) {
			return false
		}
	}
	return true
}

// queryMatches matches query parameter names exactly; a repeated parameter is
// matched by its first value, as Envoy does.
func queryMatches(ms []manifests.StringMatch, q url.Values) bool {
	for _, m := range ms {
		vs, ok := q[m.Name]
		if !ok || !m.Matches(vs[0]) {
			return false
		}
	}
	return true
}
