package policy

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gatecheck/gatecheck/fakes/apigee/state"
)

// SpikeArrest smooths traffic to a rate. Rate "Nps" or "Npm" (Rate's ref,
// when it resolves to a valid rate, wins).
//
// Without UseEffectiveCount the rate is smoothed as Apigee does: 10ps admits
// one request per 100 ms slot, 12pm one per 5 s slot; a request in a slot
// already used is refused. A MessageWeight above 1 still takes one slot.
// With UseEffectiveCount it is a sliding count: up to N requests (or weight
// units) in the last second or minute, counted in 10 sub-buckets.
//
// Counters are kept in Env.Store per policy and identifier ("_default"
// without an Identifier); a refusal is 429 policies.ratelimit.SpikeArrestViolation.
type SpikeArrest struct {
	name       string
	rate       rate
	rateRef    string
	identifier *template
	weight     *template
	effective  bool
	env        Env
}

// rate is N per second or per minute.
type rate struct {
	n         int64
	perMinute bool
}

func parseRate(s string) (rate, bool) {
	s = strings.TrimSpace(s)
	var r rate
	switch {
	case strings.HasSuffix(s, "ps"):
	case strings.HasSuffix(s, "pm"):
		r.perMinute = true
	default:
		return r, false
	}
	n, err := strconv.ParseInt(s[:len(s)-2], 10, 64)
	if err != nil || n <= 0 {
		return r, false
	}
	r.n = n
	return r, true
}

func (r rate) String() string {
	if r.perMinute {
		return strconv.FormatInt(r.n, 10) + "pm"
	}
	return strconv.FormatInt(r.n, 10) + "ps"
}

func (r rate) period() time.Duration {
	if r.perMinute {
		return time.Minute
	}
	return time.Second
}

type xmlSpikeArrest struct {
	xmlCommon
	Rate              *xmlRef `xml:"Rate"`
	Identifier        *xmlRef `xml:"Identifier"`
	MessageWeight     *xmlRef `xml:"MessageWeight"`
	UseEffectiveCount *string `xml:"UseEffectiveCount"`
}

func parseSpikeArrest(data []byte, env Env) (Policy, error) {
	var x xmlSpikeArrest
	pe, err := decodePolicy("SpikeArrest", data, &x, &x.xmlCommon,
		[]string{"Rate", "Identifier", "MessageWeight", "UseEffectiveCount"}, nil)
	if err != nil {
		return nil, err
	}
	p := &SpikeArrest{name: x.Name, env: env}
	if p.rate, p.rateRef, err = parseRateElem(pe, x.Rate); err != nil {
		return nil, err
	}
	if p.identifier, err = optRefTemplate(pe, "Identifier", x.Identifier); err != nil {
		return nil, err
	}
	if p.weight, err = optRefTemplate(pe, "MessageWeight", x.MessageWeight); err != nil {
		return nil, err
	}
	if p.effective, err = pe.optBool("UseEffectiveCount", x.UseEffectiveCount); err != nil {
		return nil, err
	}
	return p, nil
}

// parseRateElem parses <Rate ref="...">10ps</Rate>.
func parseRateElem(pe perr, x *xmlRef) (rate, string, error) {
	if x == nil {
		return rate{}, "", pe.elem("Rate", "required")
	}
	if err := pe.checkRef("Rate", x, "ref"); err != nil {
		return rate{}, "", err
	}
	ref := strings.TrimSpace(x.Ref)
	text := strings.TrimSpace(x.Text)
	if text == "" {
		if ref == "" {
			return rate{}, "", pe.elem("Rate", "a value (like 10ps or 100pm) or a ref is required")
		}
		return rate{}, ref, nil
	}
	r, ok := parseRate(text)
	if !ok {
		return rate{}, "", pe.elem("Rate", "%q is not a rate like 10ps or 100pm (a positive integer per second or per minute)", text)
	}
	return r, ref, nil
}

// optRefTemplate compiles an optional <X ref="..."/>.
func optRefTemplate(pe perr, elem string, x *xmlRef) (*template, error) {
	if x == nil {
		return nil, nil
	}
	if err := pe.checkRef(elem, x, "ref"); err != nil {
		return nil, err
	}
	if strings.TrimSpace(x.Ref) == "" {
		return nil, pe.elem(elem, "the ref attribute is required")
	}
	t, err := pe.compile(elem, x.Ref)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// resolveRate returns the rate for m: the ref's value when it is a valid
// rate, else the static one.
func resolveRate(static rate, ref string, m *Message) (rate, string, bool) {
	if ref != "" {
		if s, ok := Lookup(ref, m); ok {
			if r, ok := parseRate(s); ok {
				return r, "", true
			}
			if static.n == 0 {
				return rate{}, s, false
			}
		}
	}
	return static, "", static.n > 0
}

// Name returns the policy's name.
func (p *SpikeArrest) Name() string { return p.name }

// Kind returns "SpikeArrest".
func (p *SpikeArrest) Kind() string { return "SpikeArrest" }

// Apply admits or refuses the request; it sets ratelimit.{name}.failed.
func (p *SpikeArrest) Apply(ctx context.Context, m *Message) (*Fault, error) {
	r, bad, ok := resolveRate(p.rate, p.rateRef, m)
	if !ok {
		return faultSpikeArrestRate.fault(bad), nil
	}
	weight := int64(1)
	if p.weight != nil {
		var f *Fault
		if weight, f = messageWeight(*p.weight, m); f != nil {
			return f, nil
		}
	}
	if p.env.Store == nil {
		return nil, fmt.Errorf("SpikeArrest %q: %w", p.name, errNoStore)
	}
	id := "_default"
	if p.identifier != nil {
		if s, ok := p.identifier.eval(m); ok && s != "" {
			id = s
		}
	}
	now := p.env.now(m)
	req := state.TakeRequest{Key: "spikearrest:" + p.name + ":" + id, Enforce: true, Count: true}
	periodMicros := r.period().Microseconds()
	burst := "1.0"
	if p.effective {
		w := slidingPeriod(r.period(), 10, now)
		req.Bucket, req.Window, req.Expires = w.bucket, w.window, w.expires
		req.Weight, req.Limit = weight, r.n
		burst = strconv.FormatInt(r.n, 10) + ".0"
	} else {
		// One request per slot: the weight is its own limit, so a request
		// passes only in an empty slot.
		slot := max(periodMicros/r.n, 1)
		req.Bucket = floorDiv(now.UnixMicro(), slot)
		req.Window = 1
		req.Weight = max(weight, 1)
		req.Limit = req.Weight
		req.Expires = now.Add(2 * time.Duration(slot) * time.Microsecond)
	}
	res, err := p.env.Store.Take(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("SpikeArrest %q: %w", p.name, err)
	}
	m.vars().Set("ratelimit."+p.name+".failed", strconv.FormatBool(!res.Allowed))
	if res.Allowed {
		return nil, nil
	}
	return faultSpikeArrest.fault(r.n, periodMicros, burst), nil
}
