// Package clock is the one source of time for every gatecheck component.
//
// Quotas, spike arrests, token expiry and the picker's staleness checks all read
// time through a Clock, so the simulation can move time forward
// (`clock advance 1h`) without waiting, while kind and external targets use the
// real clock.
package clock

import (
	"sync"
	"time"
)

// Clock tells the time.
type Clock interface {
	Now() time.Time
}

// Real is the wall clock. Its zero value is ready to use.
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// Shifted is the wall clock plus an offset that only grows. Time keeps flowing
// (spike arrests and latencies behave as in production) and Advance jumps ahead
// (calendar quotas roll over at once). The zero value is the wall clock.
type Shifted struct {
	mu     sync.RWMutex
	offset time.Duration
}

// Now returns the wall clock plus the accumulated offset.
func (s *Shifted) Now() time.Time {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return time.Now().Add(s.offset)
}

// Advance moves the clock forward by d. A negative d is ignored: time never
// goes back, so counters never see a window twice.
func (s *Shifted) Advance(d time.Duration) {
	if d <= 0 {
		return
	}
	s.mu.Lock()
	s.offset += d
	s.mu.Unlock()
}

// Offset returns how far the clock has been advanced.
func (s *Shifted) Offset() time.Duration {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.offset
}

// Manual is a clock that moves only when told to; for unit tests.
type Manual struct {
	mu  sync.Mutex
	now time.Time
}

// NewManual returns a Manual clock set to t.
func NewManual(t time.Time) *Manual { return &Manual{now: t} }

// Now returns the clock's current time.
func (m *Manual) Now() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.now
}

// Advance moves the clock forward by d (negative d is ignored).
func (m *Manual) Advance(d time.Duration) {
	if d <= 0 {
		return
	}
	m.mu.Lock()
	m.now = m.now.Add(d)
	m.mu.Unlock()
}

// Set moves the clock to t.
func (m *Manual) Set(t time.Time) {
	m.mu.Lock()
	m.now = t
	m.mu.Unlock()
}
