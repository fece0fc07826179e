package threat

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gatecheck/gatecheck/fakes/apigee/threat/detectors"
)

// Model Armor filter names, as Finding.Filter reports them.
const (
	FilterPIAndJailbreak = detectors.FilterPIAndJailbreak
	FilterMaliciousURIs  = detectors.FilterMaliciousURIs
	FilterSDP            = detectors.FilterSDP
	FilterRAI            = detectors.FilterRAI
)

// Model Armor confidence levels, used both as a Detectors threshold and as
// a Finding's confidence: a HIGH finding passes every threshold, a
// MEDIUM_AND_ABOVE one the MEDIUM_AND_ABOVE and LOW_AND_ABOVE thresholds.
const (
	ConfidenceLowAndAbove    = "LOW_AND_ABOVE"
	ConfidenceMediumAndAbove = "MEDIUM_AND_ABOVE"
	ConfidenceHigh           = "HIGH"
)

func confidenceName(l detectors.Level) string {
	switch l {
	case detectors.High:
		return ConfidenceHigh
	case detectors.Medium:
		return ConfidenceMediumAndAbove
	}
	return ConfidenceLowAndAbove
}

func confidenceLevel(name string) (detectors.Level, error) {
	switch name {
	case ConfidenceLowAndAbove:
		return detectors.Low, nil
	case ConfidenceMediumAndAbove, "":
		return detectors.Medium, nil
	case ConfidenceHigh:
		return detectors.High, nil
	}
	return 0, fmt.Errorf("detectors: unknown confidence level %q (want LOW_AND_ABOVE, MEDIUM_AND_ABOVE or HIGH)", name)
}

// Finding is one thing a detector found in a text.
type Finding struct {
	// Filter is the Model Armor filter: pi_and_jailbreak, malicious_uris,
	// sdp or rai.
	Filter string
	// Kind is what was found: prompt_injection, jailbreak, malicious_uri,
	// credit_card, iban, us_ssn, api_key, private_key, email, jwt,
	// dangerous, harassment.
	Kind string
	// Start and End are byte offsets of the match in the scanned text (for
	// a StreamScanner, in everything written to it).
	Start, End int
	// Confidence is HIGH, MEDIUM_AND_ABOVE or LOW_AND_ABOVE.
	Confidence string
	// Rule names the detector rule, e.g. "sdp.credit-card".
	Rule string
}

// DetectorConfig chooses the detectors.
type DetectorConfig struct {
	// Filters lists the Filter* names to run; empty runs them all.
	Filters []string
	// Threshold is the lowest confidence reported: LOW_AND_ABOVE,
	// MEDIUM_AND_ABOVE (the default) or HIGH.
	Threshold string
	// Kinds, when set, keeps only rules of these kinds (for example the sdp
	// kinds that should block, without email).
	Kinds []string
}

// Detectors is a configured set of Model Armor stand-ins. It is safe for
// concurrent use; a StreamScanner is not.
type Detectors struct {
	rules     []detectors.Rule
	min       detectors.Level
	maxLen    int // longest match of any rule
	maxCtx    int // widest context of any rule
	holdback  int // most bytes a stream holds back
	threshold string
}

// NewDetectors builds the detectors cfg asks for.
func NewDetectors(cfg DetectorConfig) (*Detectors, error) {
	min, err := confidenceLevel(cfg.Threshold)
	if err != nil {
		return nil, err
	}
	all, err := detectors.All()
	if err != nil {
		return nil, err
	}
	known := map[string]bool{}
	kinds := map[string]bool{}
	for _, r := range all {
		known[r.Filter] = true
		kinds[r.Kind] = true
	}
	for _, f := range cfg.Filters {
		if !known[f] {
			return nil, fmt.Errorf("detectors: unknown filter %q", f)
		}
	}
	for _, k := range cfg.Kinds {
		if !kinds[k] {
			return nil, fmt.Errorf("detectors: unknown kind %q", k)
		}
	}
	d := &Detectors{min: min, threshold: confidenceName(min)}
	for _, r := range all {
		if len(cfg.Filters) > 0 && !slices.Contains(cfg.Filters, r.Filter) {
			continue
		}
		if len(cfg.Kinds) > 0 && !slices.Contains(cfg.Kinds, r.Kind) {
			continue
		}
		d.rules = append(d.rules, r)
		d.maxLen = max(d.maxLen, r.MaxLen)
		d.maxCtx = max(d.maxCtx, r.Context)
		d.holdback = max(d.holdback, r.MaxLen+r.Context+1)
	}
	if len(d.rules) == 0 {
		return nil, fmt.Errorf("detectors: no rule matches filters %v and kinds %v", cfg.Filters, cfg.Kinds)
	}
	return d, nil
}

// HoldBack is the most bytes a StreamScanner over these detectors keeps
// back from its output while it waits to see whether they start a finding:
// the longest match of any rule plus the context it reads.
func (d *Detectors) HoldBack() int { return d.holdback }

// Scan returns the findings in text at or above the threshold, ordered by
// position. Several rules may report the same span.
func (d *Detectors) Scan(text string) []Finding {
	c := newScanCore(d)
	c.buf = text
	found := c.step(true)
	sortFindings(found)
	return found
}

func sortFindings(fs []Finding) {
	slices.SortFunc(fs, func(a, b Finding) int {
		switch {
		case a.Start != b.Start:
			return a.Start - b.Start
		case a.End != b.End:
			return b.End - a.End // longer first
		case a.Kind != b.Kind:
			return strings.Compare(a.Kind, b.Kind)
		}
		return strings.Compare(a.Rule, b.Rule)
	})
}

// RedactionToken is what Redact puts in place of a finding of kind:
// [REDACTED_CREDIT_CARD].
func RedactionToken(kind string) string {
	return "[REDACTED_" + strings.ToUpper(kind) + "]"
}

// Redact replaces each finding's span with its RedactionToken. Overlapping
// findings are merged into one token, named by the one that starts first
// (the longest, when they start together). Findings outside text are
// ignored.
func Redact(text string, findings []Finding) string {
	fs := make([]Finding, 0, len(findings))
	for _, f := range findings {
		if f.Start >= 0 && f.Start < f.End && f.End <= len(text) {
			fs = append(fs, f)
		}
	}
	sortFindings(fs)
	var b strings.Builder
	pos := 0
	for _, f := range fs {
		if f.Start < pos {
			pos = max(pos, f.End)
			continue
		}
		b.WriteString(text[pos:f.Start])
		b.WriteString(RedactionToken(f.Kind))
		pos = f.End
	}
	b.WriteString(text[pos:])
	return b.String()
}

// scanCore runs the rules over text that may arrive in pieces. For each
// rule it keeps the position its next search starts from. A candidate is
// decided only once the text reaches far enough past it that more text
// cannot change the decision: MaxLen bytes for the match itself to be the
// one a search over the whole text would find, Context bytes more for the
// rule's look around it. So the decisions, and with them the findings, do
// not depend on how the text was split.
type scanCore struct {
	d    *Detectors
	buf  string // the text from absolute offset base
	base int
	pos  []int // per rule: absolute offset the next search starts at
}

func newScanCore(d *Detectors) *scanCore {
	return &scanCore{d: d, pos: make([]int, len(d.rules))}
}

func (c *scanCore) end() int { return c.base + len(c.buf) }

// step decides every candidate that can be decided; final says no more
// text will come.
func (c *scanCore) step(final bool) []Finding {
	var out []Finding
	end := c.end()
	lowered := ""
	for i := range c.d.rules {
		r := &c.d.rules[i]
		if len(r.Anchors) > 0 && lowered == "" {
			lowered = asciiLower(c.buf)
		}
		out = c.stepRule(r, i, lowered, end, final, out)
	}
	return out
}

// stepRule tries the rule's anchored pattern at each position a match
// could start at (its byte in First, the byte before it allowed by
// NotBefore, and, for a rule with anchors, at most MaxLen before the next
// anchor), in order. A position is decided only once MaxLen+Context bytes
// follow it, or at the end of the text.
func (c *scanCore) stepRule(r *detectors.Rule, i int, lowered string, end int, final bool, out []Finding) []Finding {
	nextAnchor := -1 // absolute offset of the first anchor at or after p
	// Per anchor, the offset of its next occurrence (-1 none, -2 not yet
	// searched), so each anchor's occurrences are searched for once.
	var anchorAt []int
	if len(r.Anchors) > 0 {
		anchorAt = make([]int, len(r.Anchors))
		for k := range anchorAt {
			anchorAt[k] = -2
		}
	}
	for p := c.pos[i]; p < end; p++ {
		if len(r.Anchors) > 0 && nextAnchor < p {
			a := nextAnchorFrom(lowered, c.base, p, r.Anchors, anchorAt)
			if a < 0 {
				// A match needs an anchor; one may yet arrive in the
				// last MaxLen bytes.
				if final {
					break
				}
				c.pos[i] = max(p, end-r.MaxLen)
				return out
			}
			nextAnchor = a
			// A match holding that anchor starts at most MaxLen before it.
			p = max(p, nextAnchor-r.MaxLen)
		}
		if !r.First[c.buf[p-c.base]] || (p > 0 && r.NotBefore != nil && r.NotBefore(c.buf[p-1-c.base])) {
			continue
		}
		if !final && p+r.MaxLen+r.Context+1 > end {
			c.pos[i] = p
			return out
		}
		loc := r.Anchored.FindStringIndex(c.buf[p-c.base : min(end, p+r.MaxLen+1)-c.base])
		if loc == nil {
			continue
		}
		out = c.record(r, i, p, p+loc[1], end, out)
		p = c.pos[i] - 1
	}
	c.pos[i] = end
	return out
}

// record decides the candidate [s,e) of rule i, moves the rule's search
// position past it and keeps it if it is a finding at the threshold.
func (c *scanCore) record(r *detectors.Rule, i, s, e, end int, out []Finding) []Finding {
	level := c.decide(r, s, e, end)
	if e == s || level == detectors.None {
		c.pos[i] = s + 1
	} else {
		c.pos[i] = e
	}
	if level != detectors.None && level >= c.d.min {
		out = append(out, Finding{Filter: r.Filter, Kind: r.Kind, Start: s, End: e, Confidence: confidenceName(level), Rule: r.ID})
	}
	return out
}

func (c *scanCore) decide(r *detectors.Rule, s, e, end int) detectors.Level {
	ws, we := max(0, s-r.Context), min(end, e+r.Context)
	prev, next := -1, -1
	if s > 0 {
		prev = int(c.buf[s-1-c.base])
	}
	if e < end {
		next = int(c.buf[e-c.base])
	}
	w := detectors.Window{Text: c.buf[ws-c.base : we-c.base], Start: s - ws, End: e - ws}
	return r.Decide(w, prev, next)
}

// minPos is the lowest position any rule will search from: text before it
// is decided.
func (c *scanCore) minPos() int {
	p := c.end()
	for _, q := range c.pos {
		p = min(p, q)
	}
	return p
}

// trim drops text before keep, less the context rules look back at.
func (c *scanCore) trim(keep int) {
	cut := keep - c.d.maxCtx - 1
	if cut > c.base {
		c.buf = c.buf[cut-c.base:]
		c.base = cut
	}
}

// nextAnchorFrom returns the absolute offset of the first occurrence at or
// after p of any anchor, or -1, updating each anchor's cached next
// occurrence in at.
func nextAnchorFrom(lowered string, base, p int, anchors []string, at []int) int {
	first := -1
	for k, a := range anchors {
		if at[k] == -1 {
			continue
		}
		if at[k] < p {
			i := strings.Index(lowered[p-base:], a)
			if i < 0 {
				at[k] = -1
				continue
			}
			at[k] = p + i
		}
		if first < 0 || at[k] < first {
			first = at[k]
		}
	}
	return first
}

// asciiLower lower-cases ASCII letters only, so offsets stay put.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; c >= 'A' && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
