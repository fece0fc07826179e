package policy

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSpikeArrestSmoothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	sa := f.parse(t, `<SpikeArrest name="SA"><Rate>10ps</Rate></SpikeArrest>`)
	// 10ps: one request per 100 ms slot.
	require.Nil(t, apply(t, sa, f.msg("GET", "/", "")))
	fault := apply(t, sa, f.msg("GET", "/", ""))
	requireFault(t, fault, 429, "policies.ratelimit.SpikeArrestViolation",
		"Spike arrest violation. Allowed rate : MessageRate{messagesPerPeriod=10, periodInMicroseconds=1000000, maxBurstMessageCount=1.0}")
	f.clock.Advance(99 * time.Millisecond)
	require.NotNil(t, apply(t, sa, f.msg("GET", "/", "")), "same 100 ms slot")
	f.clock.Advance(time.Millisecond)
	require.Nil(t, apply(t, sa, f.msg("GET", "/", "")), "next slot")

	// 12pm: one per 5 s; the identifier separates counters.
	pm := f.parse(t, `<SpikeArrest name="PM"><Rate>12pm</Rate><Identifier ref="request.header.client"/></SpikeArrest>`)
	require.Nil(t, apply(t, pm, f.msg("GET", "/", "", "client", "a")))
	require.Nil(t, apply(t, pm, f.msg("GET", "/", "", "client", "b")))
	m := f.msg("GET", "/", "", "client", "a")
	requireFault(t, apply(t, pm, m), 429, "policies.ratelimit.SpikeArrestViolation",
		"Spike arrest violation. Allowed rate : MessageRate{messagesPerPeriod=12, periodInMicroseconds=60000000, maxBurstMessageCount=1.0}")
	require.Equal(t, "true", varOf(m, "ratelimit.PM.failed"))
	f.clock.Advance(5 * time.Second)
	require.Nil(t, apply(t, pm, f.msg("GET", "/", "", "client", "a")))
}

func TestSpikeArrestEffectiveCount(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	sa := f.parse(t, `<SpikeArrest name="SA"><Rate>10ps</Rate><UseEffectiveCount>true</UseEffectiveCount></SpikeArrest>`)
	var q Policy = sa
	require.Equal(t, 10, burstCodes(t, f, q, 20, "policies.ratelimit.SpikeArrestViolation"))
	fault := apply(t, sa, f.msg("GET", "/", ""))
	requireFault(t, fault, 429, "policies.ratelimit.SpikeArrestViolation",
		"Spike arrest violation. Allowed rate : MessageRate{messagesPerPeriod=10, periodInMicroseconds=1000000, maxBurstMessageCount=10.0}")
	f.clock.Advance(time.Second)
	require.Equal(t, 10, burstCodes(t, f, q, 20, "policies.ratelimit.SpikeArrestViolation"))
}

func TestSpikeArrestRateRefAndWeight(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	sa := f.parse(t, `<SpikeArrest name="SA"><Rate ref="request.header.rate">1ps</Rate><UseEffectiveCount>true</UseEffectiveCount>
	  <MessageWeight ref="request.header.weight"/></SpikeArrest>`)
	require.Nil(t, apply(t, sa, f.msg("GET", "/", "", "rate", "5ps", "weight", "3")))
	require.NotNil(t, apply(t, sa, f.msg("GET", "/", "", "rate", "5ps", "weight", "3")))
	require.Nil(t, apply(t, sa, f.msg("GET", "/", "", "rate", "5ps", "weight", "2")))
	// A bad ref value falls back to the static rate (1ps: spent).
	require.NotNil(t, apply(t, sa, f.msg("GET", "/", "", "rate", "lots")))
	requireFault(t, apply(t, sa, f.msg("GET", "/", "", "weight", "x")), 500, "policies.ratelimit.InvalidMessageWeight", "Invalid message weight value x")

	refOnly := f.parse(t, `<SpikeArrest name="R"><Rate ref="request.header.rate"/></SpikeArrest>`)
	requireFault(t, apply(t, refOnly, f.msg("GET", "/", "", "rate", "fast")), 500, "policies.ratelimit.InvalidAllowedRate", "Invalid spike arrest rate fast")
}

// burstCodes sends n requests at the same instant, one after the other, and
// counts the allowed; every refusal must be code.
func burstCodes(t *testing.T, f *fixture, p Policy, n int, code string) int {
	t.Helper()
	allowed := 0
	for range n {
		fault := apply(t, p, f.msg("GET", "/", ""))
		if fault == nil {
			allowed++
			continue
		}
		require.Equal(t, code, fault.Code)
	}
	return allowed
}
