package policy

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func quotaXML(typ, extra string) string {
	attr := ""
	if typ != "" {
		attr = ` type="` + typ + `"`
	}
	if typ == "calendar" {
		extra += `<StartTime>2026-01-01 00:00:00</StartTime>`
	}
	return `<Quota name="Q"` + attr + `><Allow count="50"/><Interval>1</Interval><TimeUnit>minute</TimeUnit>` + extra + `</Quota>`
}

// burst sends goroutines × each requests at once and counts the allowed.
func burst(t *testing.T, f *fixture, p Policy, goroutines, each int) int {
	t.Helper()
	var allowed atomic.Int64
	var wg sync.WaitGroup
	now := f.clock.Now()
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				m := f.msg("POST", "/v1/chat/completions", "")
				m.Now = now
				fault, err := p.Apply(context.Background(), m)
				if err != nil {
					t.Error(err)
					return
				}
				if fault == nil {
					allowed.Add(1)
				} else if fault.Code != "policies.ratelimit.QuotaViolation" {
					t.Errorf("fault %s", fault.Code)
				}
			}
		}()
	}
	wg.Wait()
	return int(allowed.Load())
}

func TestQuotaConcurrentExact(t *testing.T) {
	t.Parallel()
	for _, typ := range []string{"", "calendar", "rollingwindow", "flexi"} {
		t.Run("type="+typ, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			q := f.parse(t, quotaXML(typ, ""))
			require.Equal(t, 50, burst(t, f, q, 64, 4))
			f.clock.Advance(20 * time.Second)
			require.Equal(t, 0, burst(t, f, q, 8, 2), "still inside the window")
			f.clock.Advance(70 * time.Second) // past every type's window
			require.Equal(t, 50, burst(t, f, q, 64, 4), "the window rolled over")
		})
	}
}

func TestQuotaWindows(t *testing.T) {
	t.Parallel()
	// t0 is 12:00:30. The default window is the clock minute; calendar
	// windows count from StartTime (here :15 past); flexi from the first
	// request; the rolling window looks back one minute.
	type step struct {
		at      time.Duration // since t0
		n       int           // requests
		allowed int
	}
	for _, tc := range []struct {
		typ, extra string
		steps      []step
	}{
		{"", "", []step{{0, 3, 3}, {29 * time.Second, 1, 0}, {30 * time.Second, 3, 3}}},
		{"calendar", "", []step{{0, 3, 3}, {44 * time.Second, 1, 0}, {45 * time.Second, 3, 3}}},
		{"flexi", "", []step{{0, 3, 3}, {59 * time.Second, 1, 0}, {60 * time.Second, 3, 3}}},
		{"rollingwindow", "", []step{{0, 2, 2}, {30 * time.Second, 2, 1}, {59 * time.Second, 1, 0}, {61 * time.Second, 3, 2}}},
	} {
		t.Run("type="+tc.typ, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			x := `<Quota name="Q"><Allow count="3"/><Interval>1</Interval><TimeUnit>minute</TimeUnit></Quota>`
			switch tc.typ {
			case "calendar":
				x = `<Quota name="Q" type="calendar"><Allow count="3"/><Interval>1</Interval><TimeUnit>minute</TimeUnit><StartTime>2026-01-01 00:00:15</StartTime></Quota>`
			case "flexi", "rollingwindow":
				x = `<Quota name="Q" type="` + tc.typ + `"><Allow count="3"/><Interval>1</Interval><TimeUnit>minute</TimeUnit></Quota>`
			}
			q := f.parse(t, x)
			for _, s := range tc.steps {
				f.clock.Set(t0.Add(s.at))
				got := 0
				for range s.n {
					if apply(t, q, f.msg("GET", "/", "")) == nil {
						got++
					}
				}
				require.Equal(t, s.allowed, got, "at +%v", s.at)
			}
		})
	}
}

func TestQuotaFaultAndVariables(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	q := f.parse(t, `<Quota name="Q"><Identifier ref="client_id"/><Allow count="2"/><Interval>1</Interval><TimeUnit>minute</TimeUnit></Quota>`)
	m := f.msg("GET", "/", "")
	m.vars().Set("client_id", "app-1")
	require.Nil(t, apply(t, q, m))
	require.Equal(t, "2", varOf(m, "ratelimit.Q.allowed.count"))
	require.Equal(t, "1", varOf(m, "ratelimit.Q.used.count"))
	require.Equal(t, "1", varOf(m, "ratelimit.Q.available.count"))
	require.Equal(t, "0", varOf(m, "ratelimit.Q.exceed.count"))
	require.Equal(t, "app-1", varOf(m, "ratelimit.Q.identifier"))
	require.Equal(t, fmt.Sprint(time.Date(2026, 3, 10, 12, 1, 0, 0, time.UTC).UnixMilli()), varOf(m, "ratelimit.Q.expiry.time"))
	require.Nil(t, apply(t, q, m))
	fault := apply(t, q, m)
	requireFault(t, fault, 429, "policies.ratelimit.QuotaViolation", "Rate limit quota violation. Quota limit  exceeded. Identifier : app-1")
	require.Equal(t, "true", varOf(m, "ratelimit.Q.failed"))
	require.Equal(t, "1", varOf(m, "ratelimit.Q.exceed.count"))
	require.Equal(t, "0", varOf(m, "ratelimit.Q.available.count"))

	// Another identifier has its own counter; no identifier is _default.
	other := f.msg("GET", "/", "")
	other.vars().Set("client_id", "app-2")
	require.Nil(t, apply(t, q, other))
	anon := f.msg("GET", "/", "")
	require.Nil(t, apply(t, q, anon))
	require.Nil(t, apply(t, q, anon))
	requireFault(t, apply(t, q, anon), 429, "policies.ratelimit.QuotaViolation", "Rate limit quota violation. Quota limit  exceeded. Identifier : _default")
}

func TestQuotaDynamicAndScoped(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.seed(t, "a@example.com", "app-a", "key-a", chatProduct("p1", "2"), chatProduct("p2", "7"))
	f.seed(t, "b@example.com", "app-b", "key-b", chatProduct("p1", "2"))
	va := f.parse(t, vaXML)
	q := f.parse(t, `<Quota name="PQ">
	  <Allow count="1000" countRef="verifyapikey.VA.apiproduct.developer.quota.limit"/>
	  <Interval ref="verifyapikey.VA.apiproduct.developer.quota.interval">1</Interval>
	  <TimeUnit ref="verifyapikey.VA.apiproduct.developer.quota.timeunit">hour</TimeUnit></Quota>`)
	call := func(key string) *Fault {
		m := f.msg("POST", "/v1/chat/completions", "", "x-api-key", key)
		require.Nil(t, apply(t, va, m))
		return apply(t, q, m)
	}
	require.Nil(t, call("key-a"))
	require.Nil(t, call("key-a"))
	requireFault(t, call("key-a"), 429, "policies.ratelimit.QuotaViolation", "Rate limit quota violation. Quota limit  exceeded. Identifier : _default")
	// The same product through another app counts on its own.
	require.Nil(t, call("key-b"))
	// The interval came from the product (minute), not the static hour.
	f.clock.Advance(time.Minute)
	require.Nil(t, call("key-a"))

	// Without the product variables, the static values apply.
	m := f.msg("GET", "/", "")
	for range 1000 {
		require.Nil(t, apply(t, q, m))
	}
	requireFault(t, apply(t, q, m), 429, "policies.ratelimit.QuotaViolation", "Rate limit quota violation. Quota limit  exceeded. Identifier : _default")

	// A countRef that never resolves, without a count, is a fault.
	noCount := f.parse(t, `<Quota name="NC"><Allow countRef="nope"/><Interval>1</Interval><TimeUnit>minute</TimeUnit></Quota>`)
	requireFault(t, apply(t, noCount, f.msg("GET", "/", "")), 500, "policies.ratelimit.FailedToResolveAllowCountReference",
		"Failed to resolve allow count reference: policy(NC)")
	noInterval := f.parse(t, `<Quota name="NI"><Allow count="1"/><Interval ref="nope"/><TimeUnit>minute</TimeUnit></Quota>`)
	requireFault(t, apply(t, noInterval, f.msg("GET", "/", "")), 500, "policies.ratelimit.FailedToResolveQuotaIntervalReference",
		"Failed to resolve quota interval reference: policy(NI)")
	noUnit := f.parse(t, `<Quota name="NU"><Allow count="1"/><Interval>1</Interval><TimeUnit ref="nope"/></Quota>`)
	requireFault(t, apply(t, noUnit, f.msg("GET", "/", "")), 500, "policies.ratelimit.FailedToResolveQuotaIntervalTimeUnitReference",
		"Failed to resolve quota time unit reference: policy(NU)")
}

func TestQuotaMessageWeightAndSharedName(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	enforce := f.parse(t, `<Quota name="TQ-in"><Allow count="100"/><Interval>1</Interval><TimeUnit>hour</TimeUnit>
	  <EnforceOnly>true</EnforceOnly><SharedName>tokens</SharedName></Quota>`)
	count := f.parse(t, `<Quota name="TQ-out"><Allow count="100"/><Interval>1</Interval><TimeUnit>hour</TimeUnit>
	  <MessageWeight ref="{jsonPath('$.usage.total_tokens',response.content,true)}"/>
	  <CountOnly>true</CountOnly><SharedName>tokens</SharedName></Quota>`)
	exchange := func(tokens int) *Fault {
		m := f.msg("POST", "/v1/chat/completions", `{}`)
		if fault := apply(t, enforce, m); fault != nil {
			return fault
		}
		m.Phase = Response
		m.ResponseBody = fmt.Appendf(nil, `{"usage":{"total_tokens":%d}}`, tokens)
		require.Nil(t, apply(t, count, m), "CountOnly never refuses")
		return nil
	}
	require.Nil(t, exchange(60))
	require.Nil(t, exchange(60)) // 60 < 100 at the check; 120 after
	requireFault(t, exchange(1), 429, "policies.ratelimit.QuotaViolation", "Rate limit quota violation. Quota limit  exceeded. Identifier : _default")

	weighted := f.parse(t, `<Quota name="W"><Allow count="10"/><Interval>1</Interval><TimeUnit>minute</TimeUnit><MessageWeight ref="request.header.weight"/></Quota>`)
	require.Nil(t, apply(t, weighted, f.msg("GET", "/", "", "weight", "7")))
	requireFault(t, apply(t, weighted, f.msg("GET", "/", "", "weight", "4")), 429, "policies.ratelimit.QuotaViolation",
		"Rate limit quota violation. Quota limit  exceeded. Identifier : _default")
	require.Nil(t, apply(t, weighted, f.msg("GET", "/", "", "weight", "3")), "a refused weight is not counted")
	requireFault(t, apply(t, weighted, f.msg("GET", "/", "", "weight", "1.5")), 500, "policies.ratelimit.InvalidMessageWeight", "Invalid message weight value 1.5")
	requireFault(t, apply(t, weighted, f.msg("GET", "/", "", "weight", "-1")), 500, "policies.ratelimit.InvalidMessageWeight", "Invalid message weight value -1")
}

func TestAlignedPeriod(t *testing.T) {
	t.Parallel()
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		require.NoError(t, err)
		return v
	}
	for _, tc := range []struct {
		name     string
		calendar bool
		start    string
		interval int64
		unit     string
		now      string
		end      string
	}{
		{"default minute", false, "", 1, "minute", "2026-03-10T12:00:30Z", "2026-03-10T12:01:00Z"},
		{"default 5 minutes", false, "", 5, "minute", "2026-03-10T12:03:30Z", "2026-03-10T12:05:00Z"},
		{"default hour", false, "", 1, "hour", "2026-03-10T12:59:59Z", "2026-03-10T13:00:00Z"},
		{"default day", false, "", 1, "day", "2026-03-10T23:00:00Z", "2026-03-11T00:00:00Z"},
		{"default week ends Sunday", false, "", 1, "week", "2026-03-10T12:00:00Z", "2026-03-15T00:00:00Z"},
		{"default month", false, "", 1, "month", "2026-02-10T12:00:00Z", "2026-03-01T00:00:00Z"},
		{"default quarter", false, "", 3, "month", "2026-02-10T12:00:00Z", "2026-04-01T00:00:00Z"},
		{"calendar hour", true, "2026-01-01T00:20:00Z", 1, "hour", "2026-03-10T12:00:30Z", "2026-03-10T12:20:00Z"},
		{"calendar 2 days", true, "2026-03-01T06:00:00Z", 2, "day", "2026-03-10T12:00:00Z", "2026-03-11T06:00:00Z"},
		{"calendar month", true, "2026-01-15T05:00:00Z", 1, "month", "2026-03-15T04:59:59Z", "2026-03-15T05:00:00Z"},
		{"calendar month boundary", true, "2026-01-15T05:00:00Z", 1, "month", "2026-03-15T05:00:00Z", "2026-04-15T05:00:00Z"},
		{"before the start", true, "2026-04-01T00:00:00Z", 1, "day", "2026-03-10T12:00:00Z", "2026-03-11T00:00:00Z"},
	} {
		var start time.Time
		if tc.start != "" {
			start = at(tc.start)
		}
		p := alignedPeriod(start, tc.calendar, tc.interval, tc.unit, at(tc.now))
		require.Equal(t, at(tc.end), p.end, tc.name)
		require.Equal(t, int64(1), p.window, tc.name)
	}
}
