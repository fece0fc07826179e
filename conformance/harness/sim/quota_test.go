package sim

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// burst sends clients × each chat requests at once — clients goroutines,
// released together, each sending its requests one after the other — and
// returns every answer.
func burst(t testing.TB, env *Env, clients, each int, body string, header ...string) []result {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}, Timeout: 30 * time.Second}
	defer c.CloseIdleConnections()
	var (
		mu   sync.Mutex
		out  []result
		errs []error
		wg   sync.WaitGroup
	)
	gate := make(chan struct{})
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			for j := 0; j < each; j++ {
				r, err := send(c, env, http.MethodPost, "/v1/chat/completions", body, header...)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					out = append(out, r)
				}
				mu.Unlock()
			}
		}()
	}
	close(gate)
	wg.Wait()
	require.Empty(t, errs)
	require.Len(t, out, clients*each)
	return out
}

// admitted counts the answers that got through, and checks that every other
// one is the refusal: 429 with code and faultstring.
func admitted(t testing.TB, rs []result, code, faultstring string) int {
	t.Helper()
	ok := 0
	for _, r := range rs {
		if r.status == http.StatusOK {
			ok++
			continue
		}
		requireFault(t, r, http.StatusTooManyRequests, code, faultstring)
	}
	return ok
}

// advance moves the environment's clock through the management API.
func advance(t testing.TB, env *Env, d time.Duration) {
	t.Helper()
	require.NoError(t, env.Management().AdvanceClock(context.Background(), d))
}

// alignTo moves the clock to just after the start of the next window of
// length d counted from the Unix epoch (what calendar quotas from a whole
// minute and spike arrest slots are), so a burst does not straddle two.
func alignTo(t testing.TB, env *Env, d, margin time.Duration) {
	t.Helper()
	now := env.Clock().Now()
	into := time.Duration(now.UnixNano() % int64(d))
	advance(t, env, d-into+margin)
}

// TestQuotaExactUnderConcurrency attaches a Quota of each type, identified
// by the app's key, and sends many more requests at once than it allows:
// exactly the limit gets through, in each window.
func TestQuotaExactUnderConcurrency(t *testing.T) {
	t.Parallel()
	const limit = 20
	for _, tc := range []struct {
		typ   string
		extra string
		// next is how far to move the clock for a fresh window: a calendar
		// window is the next minute; a rolling window must have slid past
		// every request of the burst; a flexi one started at the first.
		next time.Duration
	}{
		{"calendar", "<StartTime>2026-01-01 00:00:00</StartTime>", time.Minute},
		{"rollingwindow", "", 2 * time.Minute},
		{"flexi", "", time.Minute + time.Second},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			t.Parallel()
			env := start(t, topology(t, withRequestPolicy("10-quota.xml", fmt.Sprintf(`<Quota name="Q-%s" type="%s">
  <Identifier ref="client_id"/>
  <Allow count="%d"/>
  <Interval>1</Interval>
  <TimeUnit>minute</TimeUnit>
  %s
</Quota>`, tc.typ, tc.typ, limit, tc.extra))))
			key := env.APIKey()
			violation := "Rate limit quota violation. Quota limit  exceeded. Identifier : " + key
			if tc.typ == "calendar" {
				// Well inside a minute: the test has ~59 s before the window turns.
				alignTo(t, env, time.Minute, time.Second)
			}
			rs := burst(t, env, 64, 2, chat(qwen), "x-api-key", key)
			assert.Equal(t, limit, admitted(t, rs, "policies.ratelimit.QuotaViolation", violation), "admitted in the first window")

			advance(t, env, tc.next)
			rs = burst(t, env, 32, 2, chat(qwen), "x-api-key", key)
			assert.Equal(t, limit, admitted(t, rs, "policies.ratelimit.QuotaViolation", violation), "admitted in the next window")

			// Another app has its own counter.
			other := newConsumer(t, env, SandboxProduct)
			r := chatAs(t, env, other.key, qwen)
			assert.Equal(t, http.StatusOK, r.status, "answer: %s", r)
		})
	}

	t.Run("ProductQuota", func(t *testing.T) {
		t.Parallel()
		// The operator's default security counts the product's operation
		// set quota.
		env := start(t, topology(t, replace("apim.yaml", "limit: 1000", "limit: 5")))
		const violation = "Rate limit quota violation. Quota limit  exceeded. Identifier : _default"
		rs := burst(t, env, 16, 1, chat(qwen), "x-api-key", env.APIKey())
		assert.Equal(t, 5, admitted(t, rs, "policies.ratelimit.QuotaViolation", violation))
		requireFault(t, chatAs(t, env, env.APIKey(), qwen), http.StatusTooManyRequests, "policies.ratelimit.QuotaViolation", violation)

		// The window (a minute, flexi: from the first request) passes.
		advance(t, env, time.Minute+time.Second)
		for i := 0; i < 5; i++ {
			r := chatAs(t, env, env.APIKey(), qwen)
			require.Equal(t, http.StatusOK, r.status, "request %d of the next window: %s", i+1, r)
		}
		requireFault(t, chatAs(t, env, env.APIKey(), qwen), http.StatusTooManyRequests, "policies.ratelimit.QuotaViolation", violation)
	})
}

// TestSpikeArrest attaches a SpikeArrest of 2 per second: smoothed, one
// request per 500 ms slot, so a burst gets one request through.
func TestSpikeArrest(t *testing.T) {
	t.Parallel()
	env := start(t, topology(t, withRequestPolicy("10-spike.xml", `<SpikeArrest name="SA"><Rate>2ps</Rate></SpikeArrest>`)))
	const slot = 500 * time.Millisecond
	const violation = "Spike arrest violation. Allowed rate : MessageRate{messagesPerPeriod=2, periodInMicroseconds=1000000, maxBurstMessageCount=1.0}"
	key := env.APIKey()

	begin := time.Now()
	const margin = 20 * time.Millisecond
	alignTo(t, env, slot, margin)
	rs := burst(t, env, 10, 1, chat(qwen), "x-api-key", key)
	elapsed := time.Since(begin)
	ok := admitted(t, rs, "policies.ratelimit.SpikeArrestViolation", violation)
	if elapsed < slot-margin {
		// The whole burst fell in one slot.
		assert.Equal(t, 1, ok, "admitted from a burst of 10 within one slot")
	} else {
		// A slow machine: the burst spanned several slots, one each at most.
		assert.GreaterOrEqual(t, ok, 1)
		assert.LessOrEqual(t, ok, 1+int((elapsed+slot-1)/slot), "at most one per slot the burst spanned (%v)", elapsed)
	}

	// The next slot admits one again.
	advance(t, env, slot)
	r := chatAs(t, env, key, qwen)
	assert.Equal(t, http.StatusOK, r.status, "answer: %s", r)
}
