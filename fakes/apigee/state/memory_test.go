package state

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatecheck/gatecheck/internal/clock"
)

func TestMemoryConformance(t *testing.T) {
	t.Parallel()
	testStore(t, conformance{
		open:  func(t *testing.T, c clock.Clock) Store { return NewMemory(WithClock(c)) },
		takes: 200,
	})
}

func TestMemorySweepsExpiredCounters(t *testing.T) {
	t.Parallel()
	c := clock.NewManual(epoch)
	m := NewMemory(WithClock(c))
	ctx := context.Background()
	for _, k := range []string{"a", "b", "c"} {
		_, err := m.Take(ctx, TakeRequest{Key: k, Weight: 1, Limit: 5, Count: true, Expires: epoch.Add(time.Minute)})
		require.NoError(t, err)
	}
	_, err := m.Take(ctx, TakeRequest{Key: "keep", Weight: 1, Limit: 5, Count: true})
	require.NoError(t, err)
	assert.Equal(t, 4, m.counterCount())
	c.Advance(2 * sweepEvery)
	_, err = m.Take(ctx, TakeRequest{Key: "keep", Weight: 1, Limit: 5, Count: true})
	require.NoError(t, err)
	assert.Equal(t, 1, m.counterCount(), "expired counters are dropped by the next sweep")
}
