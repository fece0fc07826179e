package policy

import (
	"context"
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gatecheck/gatecheck/fakes/apigee/state"
)

// Quota counts requests (or MessageWeight units) per identifier in windows
// of interval × time unit (window.go) and refuses with 429
// policies.ratelimit.QuotaViolation past the limit.
//
// Counters: the key is the SharedName (else the policy name), the
// identifier ("_default" without one), and — when the limit came from a
// product through countRef (a ref ending in .limit whose sibling .scope
// variable is set, as VerifyAPIKey and VerifyAccessToken set it) — the
// product scope: app key, product and operation config. So the operator's
// default quota counts per app and per operation config, as Apigee does.
// All counters live in Env.Store: Distributed and Synchronous are accepted
// and always true in effect.
type Quota struct {
	name string
	core quotaCore
	// weight is MessageWeight's ref (nil: 1 per request).
	weight *template
}

// quotaCore is what Quota and LLMTokenQuota share: the window, the limit and
// the counter key.
type quotaCore struct {
	kind, name  string
	typ         quotaType
	identifier  *template
	count       int64
	hasCount    bool
	countRef    string
	interval    int64
	intervalRef string
	unit        string
	unitRef     string
	startTime   time.Time
	sharedName  string
	enforceOnly bool
	countOnly   bool
	// skipUnresolved makes an unresolvable limit mean "no quota" instead of
	// a fault: the default security's quota applies only to products that
	// have one.
	skipUnresolved bool
	env            Env
}

type xmlAllow struct {
	Count        *string    `xml:"count,attr"`
	CountRef     string     `xml:"countRef,attr"`
	Unknown      []xmlAny   `xml:",any"`
	UnknownAttrs []xml.Attr `xml:",any,attr"`
}

type xmlQuotaCommon struct {
	xmlCommon
	Type                      string  `xml:"type,attr"`
	Identifier                *xmlRef `xml:"Identifier"`
	Allow                     *xmlAllow
	Interval                  *xmlRef `xml:"Interval"`
	TimeUnit                  *xmlRef `xml:"TimeUnit"`
	StartTime                 *string `xml:"StartTime"`
	Distributed               *string `xml:"Distributed"`
	Synchronous               *string `xml:"Synchronous"`
	AsynchronousConfiguration *xmlAny `xml:"AsynchronousConfiguration"`
	EnforceOnly               *string `xml:"EnforceOnly"`
	CountOnly                 *string `xml:"CountOnly"`
	SharedName                *string `xml:"SharedName"`
}

var quotaCommonElements = []string{"Identifier", "Allow", "Interval", "TimeUnit", "StartTime",
	"Distributed", "Synchronous", "AsynchronousConfiguration", "EnforceOnly", "CountOnly", "SharedName"}

type xmlQuota struct {
	xmlQuotaCommon
	MessageWeight *xmlRef `xml:"MessageWeight"`
}

func parseQuota(data []byte, env Env) (Policy, error) {
	var x xmlQuota
	pe, err := decodePolicy("Quota", data, &x, &x.xmlCommon, append([]string{"MessageWeight"}, quotaCommonElements...), []string{"type"})
	if err != nil {
		return nil, err
	}
	core, err := parseQuotaCore(pe, &x.xmlQuotaCommon, env)
	if err != nil {
		return nil, err
	}
	q := &Quota{name: x.Name, core: core}
	if x.MessageWeight != nil {
		if err := pe.checkRef("MessageWeight", x.MessageWeight, "ref"); err != nil {
			return nil, err
		}
		if strings.TrimSpace(x.MessageWeight.Ref) == "" {
			return nil, pe.elem("MessageWeight", "the ref attribute is required")
		}
		t, err := pe.compile("MessageWeight", x.MessageWeight.Ref)
		if err != nil {
			return nil, err
		}
		q.weight = &t
	}
	return q, nil
}

func parseQuotaCore(pe perr, x *xmlQuotaCommon, env Env) (quotaCore, error) {
	c := quotaCore{kind: pe.kind, name: pe.name, env: env}
	typ, ok := parseQuotaType(x.Type)
	if !ok {
		return c, pe.errorf("type %q is not calendar, rollingwindow or flexi (or absent, for the default)", x.Type)
	}
	c.typ = typ
	if x.Identifier != nil {
		if err := pe.checkRef("Identifier", x.Identifier, "ref"); err != nil {
			return c, err
		}
		if strings.TrimSpace(x.Identifier.Ref) == "" {
			return c, pe.elem("Identifier", "the ref attribute is required")
		}
		t, err := pe.compile("Identifier", x.Identifier.Ref)
		if err != nil {
			return c, err
		}
		c.identifier = &t
	}
	if x.Allow == nil {
		return c, pe.elem("Allow", "required")
	}
	if len(x.Allow.Unknown) > 0 {
		return c, pe.elem("Allow", "unknown or unsupported element <%s>", x.Allow.Unknown[0].XMLName.Local)
	}
	for _, a := range x.Allow.UnknownAttrs {
		return c, pe.elem("Allow", "unknown attribute %s (supported: count, countRef)", a.Name.Local)
	}
	if x.Allow.Count != nil {
		n, err := parseInt64(*x.Allow.Count)
		if err != nil {
			return c, pe.elem("Allow", "count %q is not an integer", *x.Allow.Count)
		}
		if n < 0 {
			return c, pe.elem("Allow", "count %d is negative", n)
		}
		c.count, c.hasCount = n, true
	}
	c.countRef = strings.TrimSpace(x.Allow.CountRef)
	if !c.hasCount && c.countRef == "" {
		return c, pe.elem("Allow", "count or countRef is required")
	}
	var err error
	if c.interval, c.intervalRef, err = parseIntervalElem(pe, x.Interval); err != nil {
		return c, err
	}
	if c.unit, c.unitRef, err = parseTimeUnitElem(pe, x.TimeUnit); err != nil {
		return c, err
	}
	if x.StartTime != nil {
		if typ != typeCalendar {
			return c, pe.elem("StartTime", "only applies to type=\"calendar\"")
		}
		t, err := time.Parse(startTimeLayout, strings.TrimSpace(*x.StartTime))
		if err != nil {
			return c, pe.elem("StartTime", "%q is not a time like 2026-01-01 00:00:00 (UTC)", strings.TrimSpace(*x.StartTime))
		}
		c.startTime = t
	} else if typ == typeCalendar {
		return c, pe.elem("StartTime", "required when type is calendar")
	}
	for _, b := range []struct {
		elem string
		v    *string
	}{{"Distributed", x.Distributed}, {"Synchronous", x.Synchronous}} {
		if _, err := pe.optBool(b.elem, b.v); err != nil {
			return c, err
		}
	}
	if c.enforceOnly, err = pe.optBool("EnforceOnly", x.EnforceOnly); err != nil {
		return c, err
	}
	if c.countOnly, err = pe.optBool("CountOnly", x.CountOnly); err != nil {
		return c, err
	}
	if c.enforceOnly && c.countOnly {
		return c, pe.elem("CountOnly", "cannot be true together with <EnforceOnly>")
	}
	if x.SharedName != nil {
		c.sharedName = strings.TrimSpace(*x.SharedName)
		if c.sharedName == "" {
			return c, pe.elem("SharedName", "empty")
		}
	}
	return c, nil
}

func parseIntervalElem(pe perr, x *xmlRef) (int64, string, error) {
	if x == nil {
		return 0, "", pe.elem("Interval", "required")
	}
	if err := pe.checkRef("Interval", x, "ref"); err != nil {
		return 0, "", err
	}
	ref := strings.TrimSpace(x.Ref)
	text := strings.TrimSpace(x.Text)
	if text == "" {
		if ref == "" {
			return 0, "", pe.elem("Interval", "a value or a ref is required")
		}
		return 0, ref, nil
	}
	n, err := parseInt64(text)
	if err != nil || n <= 0 {
		return 0, "", pe.elem("Interval", "%q is not a positive integer", text)
	}
	return n, ref, nil
}

func parseTimeUnitElem(pe perr, x *xmlRef) (string, string, error) {
	if x == nil {
		return "", "", pe.elem("TimeUnit", "required")
	}
	if err := pe.checkRef("TimeUnit", x, "ref"); err != nil {
		return "", "", err
	}
	ref := strings.TrimSpace(x.Ref)
	text := strings.TrimSpace(x.Text)
	if text == "" {
		if ref == "" {
			return "", "", pe.elem("TimeUnit", "a value or a ref is required")
		}
		return "", ref, nil
	}
	u, ok := parseTimeUnit(text)
	if !ok {
		return "", "", pe.elem("TimeUnit", "%q is not one of %s", text, strings.Join(timeUnits, ", "))
	}
	return u, ref, nil
}

// Name returns the policy's name.
func (q *Quota) Name() string { return q.name }

// Kind returns "Quota".
func (q *Quota) Kind() string { return "Quota" }

// limits is a quota's resolved settings for one request.
type limits struct {
	limit    int64
	interval int64
	unit     string
	scope    string // the product scope, when the limit came from a product
}

// resolve reads the limit, interval and unit for m: a ref that resolves to a
// valid value wins over the static value (Apigee's rule). skip is true when
// the limit is unresolved and the quota is to be skipped.
func (c *quotaCore) resolve(m *Message) (l limits, skip bool, f *Fault) {
	resolvedRef := false
	if c.countRef != "" {
		if s, ok := Lookup(c.countRef, m); ok {
			if n, err := parseInt64(s); err == nil && n >= 0 {
				l.limit, resolvedRef = n, true
			}
		}
	}
	switch {
	case resolvedRef:
		if base, ok := strings.CutSuffix(c.countRef, ".limit"); ok {
			l.scope, _ = Lookup(base+".scope", m)
		}
	case c.hasCount:
		l.limit = c.count
	case c.skipUnresolved:
		return l, true, nil
	default:
		return l, false, faultQuotaAllowRef.fault(c.name)
	}
	l.interval = c.interval
	if c.intervalRef != "" {
		if s, ok := Lookup(c.intervalRef, m); ok {
			if n, err := parseInt64(s); err == nil && n > 0 {
				l.interval = n
			}
		}
	}
	if l.interval <= 0 {
		if c.skipUnresolved {
			l.interval = 1
		} else {
			return l, false, faultQuotaIntervalRef.fault(c.name)
		}
	}
	l.unit = c.unit
	if c.unitRef != "" {
		if s, ok := Lookup(c.unitRef, m); ok {
			if u, ok := parseTimeUnit(s); ok {
				l.unit = u
			}
		}
	}
	if l.unit == "" {
		if c.skipUnresolved {
			l.unit = "minute"
		} else {
			return l, false, faultQuotaTimeUnitRef.fault(c.name)
		}
	}
	return l, false, nil
}

// identify returns the identifier: the Identifier's value, or "_default".
func (c *quotaCore) identify(m *Message) string {
	if c.identifier != nil {
		if s, ok := c.identifier.eval(m); ok && s != "" {
			return s
		}
	}
	return "_default"
}

// counterKey is prefix:shared-or-name:identifier[:scope][:extra].
func (c *quotaCore) counterKey(prefix, id, scope, extra string) string {
	n := c.name
	if c.sharedName != "" {
		n = c.sharedName
	}
	k := prefix + ":" + n + ":" + id
	if scope != "" {
		k += ":" + scope
	}
	if extra != "" {
		k += ":" + extra
	}
	return k
}

// window returns the counting window for key at now.
func (c *quotaCore) window(ctx context.Context, key string, l limits, now time.Time) (period, error) {
	switch c.typ {
	case typeCalendar:
		return alignedPeriod(c.startTime, true, l.interval, l.unit, now), nil
	case typeRolling:
		return rollingPeriod(l.interval, l.unit, now), nil
	case typeFlexi:
		return flexiPeriod(ctx, c.env.Store, key, l.interval, l.unit, now)
	}
	return alignedPeriod(time.Time{}, false, l.interval, l.unit, now), nil
}

// take counts weight for id at now and sets the ratelimit.{name}.* flow
// variables. It returns whether the request is allowed.
func (c *quotaCore) take(ctx context.Context, m *Message, prefix, id, extra string, l limits, weight int64, enforce, count bool) (bool, error) {
	if c.env.Store == nil {
		return false, fmt.Errorf("%s %q: %w", c.kind, c.name, errNoStore)
	}
	now := c.env.now(m)
	key := c.counterKey(prefix, id, l.scope, extra)
	w, err := c.window(ctx, key, l, now)
	if err != nil {
		return false, fmt.Errorf("%s %q: %w", c.kind, c.name, err)
	}
	res, err := c.env.Store.Take(ctx, state.TakeRequest{
		Key: key, Bucket: w.bucket, Window: w.window, Weight: weight, Limit: l.limit,
		Enforce: enforce, Count: count, Expires: w.expires,
	})
	if err != nil {
		return false, fmt.Errorf("%s %q: %w", c.kind, c.name, err)
	}
	v := m.vars()
	p := "ratelimit." + c.name + "."
	v.Set(p+"allowed.count", strconv.FormatInt(l.limit, 10))
	v.Set(p+"used.count", strconv.FormatInt(res.Used, 10))
	v.Set(p+"available.count", strconv.FormatInt(max(l.limit-res.Used, 0), 10))
	exceed := int64(0)
	if !res.Allowed {
		exceed = max(res.Used+weight-l.limit, 1)
	}
	v.Set(p+"exceed.count", strconv.FormatInt(exceed, 10))
	v.Set(p+"expiry.time", strconv.FormatInt(w.end.UnixMilli(), 10))
	v.Set(p+"identifier", id)
	v.Set(p+"failed", strconv.FormatBool(!res.Allowed))
	return res.Allowed, nil
}

// Apply counts the request. Without EnforceOnly or CountOnly it checks and
// counts (count+weight must stay within the limit); EnforceOnly checks that
// the count is below the limit and counts nothing; CountOnly counts and
// never refuses. It sets ratelimit.{name}.allowed.count, used.count,
// available.count, exceed.count, expiry.time (ms), identifier and failed.
func (q *Quota) Apply(ctx context.Context, m *Message) (*Fault, error) {
	l, skip, f := q.core.resolve(m)
	if f != nil || skip {
		return f, nil
	}
	weight := int64(1)
	if q.weight != nil {
		var f *Fault
		if weight, f = messageWeight(*q.weight, m); f != nil {
			return f, nil
		}
	}
	id := q.core.identify(m)
	enforce, count := !q.core.countOnly, !q.core.enforceOnly
	ok, err := q.core.take(ctx, m, "quota", id, "", l, weight, enforce, count)
	if err != nil || ok {
		return nil, err
	}
	return faultQuotaViolation.fault(id), nil
}

// messageWeight resolves a MessageWeight: unresolved is 1 (Apigee's
// default); anything but a non-negative integer is InvalidMessageWeight.
func messageWeight(t template, m *Message) (int64, *Fault) {
	s, ok := t.eval(m)
	s = strings.TrimSpace(s)
	if !ok || s == "" {
		return 1, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, faultInvalidMessageWeight.fault(s)
	}
	return n, nil
}
