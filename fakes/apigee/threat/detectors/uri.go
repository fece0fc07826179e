package detectors

import (
	"embed"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// KindMaliciousURI is the kind of the malicious_uris filter.
const KindMaliciousURI = "malicious_uri"

//go:embed data/*.txt
var dataFiles embed.FS

// readList reads an embedded list: one entry a line, # comments.
func readList(name string) []string {
	data, err := dataFiles.ReadFile("data/" + name)
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, strings.ToLower(line))
		}
	}
	return out
}

// uriChecker holds the lists the URI heuristics use.
type uriChecker struct {
	denyHosts  []string // host or host/path-prefix
	tlds       map[string]bool
	shorteners map[string]bool
}

func newURIChecker() *uriChecker {
	c := &uriChecker{denyHosts: readList("malicious_uris.txt"), tlds: map[string]bool{}, shorteners: map[string]bool{}}
	for _, t := range readList("suspicious_tlds.txt") {
		c.tlds[t] = true
	}
	for _, s := range readList("url_shorteners.txt") {
		c.shorteners[s] = true
	}
	return c
}

// brandWords are names phishing hosts borrow, and the words they pair
// them with.
var (
	brandWords     = regexp.MustCompile(`(?i)paypal|apple|icloud|microsoft|office365|outlook|google|gmail|amazon|netflix|facebook|instagram|whatsapp|linkedin|chase|wellsfargo|bankofamerica|coinbase|binance|metamask|dhl|fedex|usps`)
	executablePath = regexp.MustCompile(`(?i)\.(?:exe|scr|msi|bat|cmd|ps1|vbs|jar|apk|dll|sh|bin|hta)(?:$|[?#])`)
	lureWords      = regexp.MustCompile(`(?i)login|log-in|signin|sign-in|secure|verify|verification|account|update|support|billing|wallet|unlock|confirm|password|recover`)
)

// Level judges one URI-like token.
func (c *uriChecker) Level(u string) Level {
	u = strings.TrimRight(u, ".,;:!?'\")]}>")
	lower := strings.ToLower(u)
	var scheme, rest string
	if strings.HasPrefix(lower, "www.") {
		scheme, rest = "http", "//"+lower
	} else {
		var ok bool
		if scheme, rest, ok = strings.Cut(lower, ":"); !ok {
			return None
		}
		scheme = strings.TrimSpace(scheme)
	}
	switch scheme {
	case "javascript", "vbscript":
		body := strings.TrimSpace(rest)
		if strings.HasPrefix(body, "void") || strings.HasPrefix(body, ";") || body == "" {
			return Low
		}
		return High
	case "data":
		mt := strings.TrimSpace(rest)
		for _, bad := range []string{"text/html", "application/javascript", "application/x-javascript", "text/javascript", "image/svg+xml", "application/xhtml+xml", "text/xml"} {
			if strings.HasPrefix(mt, bad) {
				return High
			}
		}
		return None
	case "hxxp", "hxxps":
		return Low // defanged, as security write-ups print indicators
	}
	authority, path, _ := strings.Cut(strings.TrimPrefix(rest, "//"), "/")
	authority, _, _ = strings.Cut(authority, "?")
	authority, _, _ = strings.Cut(authority, "#")
	path = "/" + path

	var levels []Level
	host := authority
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		userinfo := authority[:at]
		host = authority[at+1:]
		switch {
		case strings.Contains(userinfo, "."):
			levels = append(levels, High) // https://paypal.com@evil.example/
		case strings.Contains(userinfo, ":"):
			levels = append(levels, Medium) // credentials in the URL
		default:
			levels = append(levels, Low)
		}
	}
	host = stripPort(host)
	if host == "" {
		return None
	}
	if strings.Contains(host, "%") {
		levels = append(levels, High) // percent-encoded host
	}
	levels = append(levels, c.hostLevel(host, path)...)
	return combine(levels)
}

func stripPort(host string) string {
	if strings.HasPrefix(host, "[") {
		if end := strings.IndexByte(host, ']'); end > 0 {
			return host[:end+1]
		}
		return host
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		return host[:i]
	}
	return host
}

// combine takes the highest level; two or more MEDIUM signs make HIGH.
func combine(levels []Level) Level {
	best, mediums := None, 0
	for _, l := range levels {
		best = max(best, l)
		if l >= Medium {
			mediums++
		}
	}
	if mediums >= 2 {
		return High
	}
	return best
}

func (c *uriChecker) hostLevel(host, path string) []Level {
	var levels []Level
	// Deny list: the host, a parent domain, or host plus path prefix.
	for _, d := range c.denyHosts {
		dh, dp, hasPath := strings.Cut(d, "/")
		if host == dh || strings.HasSuffix(host, "."+dh) {
			if !hasPath || strings.HasPrefix(path, "/"+dp) {
				return []Level{High}
			}
		}
	}
	if l, isIP := ipLevel(host); isIP {
		// An executable fetched from a bare public address is a classic
		// malware drop.
		if l == Low && executablePath.MatchString(path) {
			return []Level{High}
		}
		return []Level{l}
	}
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	tld := labels[len(labels)-1]
	if c.shorteners[host] {
		levels = append(levels, Low)
	}
	if c.tlds[tld] {
		levels = append(levels, Medium)
	}
	// Punycode labels are judged by what they spell: one script is an
	// ordinary international name, mixed scripts a homoglyph.
	decoded := make([]string, len(labels))
	for i, l := range labels {
		decoded[i] = l
		if rest, ok := strings.CutPrefix(l, "xn--"); ok {
			u, err := decodePunycode(rest)
			if err != nil {
				levels = append(levels, Medium)
				continue
			}
			decoded[i] = u
			levels = append(levels, Low)
		}
	}
	if mixedScripts(decoded) {
		levels = append(levels, High)
	}
	if len(labels) >= 5 {
		levels = append(levels, Low)
	}
	if executablePath.MatchString(path) {
		levels = append(levels, Low)
		if l := combine(levels); l >= Low && len(levels) > 1 {
			levels = append(levels, min(l+1, High))
		}
	}
	// A brand in the subdomains, or a brand glued to a lure word in the
	// registered name: paypal.com.account-verify.example, paypal-login.example.
	registered := ""
	if len(labels) >= 2 {
		registered = labels[len(labels)-2]
	}
	sub := ""
	if len(labels) > 2 {
		sub = strings.Join(labels[:len(labels)-2], ".")
	}
	switch {
	case sub != "" && brandWords.MatchString(sub) && !brandWords.MatchString(registered) && (len(labels) >= 4 || lureWords.MatchString(sub)):
		levels = append(levels, High)
	case brandWords.MatchString(registered) && lureWords.MatchString(registered) && strings.Contains(registered, "-"):
		levels = append(levels, High)
	}
	return levels
}

// ipLevel judges an IP-literal host. Loopback and private addresses are
// what developers paste (http://localhost:11434, http://10.0.0.5); a
// public address is unusual (LOW); a number written in decimal, hex or octal
// is obfuscation (HIGH).
func ipLevel(host string) (Level, bool) {
	if strings.HasPrefix(host, "[") {
		a, err := netip.ParseAddr(strings.Trim(host, "[]"))
		if err != nil {
			return Medium, true
		}
		if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() {
			return None, true
		}
		return Low, true
	}
	allNumeric := true
	for _, part := range strings.Split(host, ".") {
		if part == "" {
			allNumeric = false
			break
		}
		if strings.HasPrefix(part, "0x") {
			if _, err := strconv.ParseUint(part[2:], 16, 32); err != nil {
				allNumeric = false
				break
			}
			continue
		}
		if _, err := strconv.ParseUint(part, 10, 32); err != nil {
			allNumeric = false
			break
		}
	}
	if !allNumeric {
		return None, false
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		// 3232235777, 0x7f000001, 0177.0.0.1, 127.1: an address in disguise.
		return High, true
	}
	if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsUnspecified() {
		return None, true
	}
	return Low, true
}

// mixedScripts reports a label that mixes letters of different scripts,
// the mark of a homoglyph host (pаypal with a Cyrillic а). A label wholly in
// one script, "münchen" or "пример", is fine.
func mixedScripts(labels []string) bool {
	scripts := []*unicode.RangeTable{unicode.Latin, unicode.Cyrillic, unicode.Greek, unicode.Armenian, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul, unicode.Arabic, unicode.Hebrew, unicode.Thai, unicode.Devanagari, unicode.Cherokee}
	for _, l := range labels {
		if isASCII(l) {
			continue
		}
		seen := map[int]bool{}
		for _, r := range l {
			if !unicode.IsLetter(r) {
				continue
			}
			for i, s := range scripts {
				if unicode.Is(s, r) {
					seen[i] = true
				}
			}
		}
		// Han, Hiragana and Katakana mix in Japanese names.
		cjk := seen[4] || seen[5] || seen[6]
		n := len(seen)
		if cjk {
			n = n - btoi(seen[4]) - btoi(seen[5]) - btoi(seen[6]) + 1
		}
		if n > 1 {
			return true
		}
	}
	return false
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func uriRules(b *builder) {
	c := newURIChecker()
	confirm := func(w Window) Level { return c.Level(w.Match()) }
	rule := func(id string) Rule {
		return Rule{ID: "uri." + id, Filter: FilterMaliciousURIs, Kind: KindMaliciousURI, Context: 1, NotBefore: isAlnum, Confirm: confirm}
	}
	b.add(rule("web"), `(?i)(?:(?:https?|ftp|wss?|hxxps?)://|www\.)[^\s<>"'\x60(){}\[\]|\\^]{1,160}`)
	b.add(rule("script"), `(?i)(?:java|vb)script[ \t]{0,2}:[^\s<>"'\x60]{0,120}`)
	b.add(rule("data"), `(?i)data[ \t]{0,2}:[a-z]{1,20}/[a-z0-9.+\-]{1,40}[;,][^\s<>"'\x60]{0,120}`)
}
