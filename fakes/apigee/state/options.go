package state

import (
	"fmt"
	"time"

	"github.com/gatecheck/gatecheck/internal/clock"
)

// DefaultLockTimeout is how long OpenFile waits for another holder of the
// state file to let go before it reports the file in use.
const DefaultLockTimeout = 2 * time.Second

// Option configures NewMemory or OpenFile.
type Option interface {
	apply(*options) error
}

type options struct {
	clock       clock.Clock
	lockTimeout time.Duration
}

func buildOptions(opts []Option) (options, error) {
	o := options{clock: clock.Real{}, lockTimeout: DefaultLockTimeout}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt.apply(&o); err != nil {
			return o, err
		}
	}
	return o, nil
}

type optionFunc func(*options) error

func (f optionFunc) apply(o *options) error { return f(o) }

// WithClock sets the clock that decides when a counter's Expires has passed.
// Pass the runtime's clock so an advanced simulation clock expires counters
// too. nil keeps the default, the wall clock.
func WithClock(c clock.Clock) Option {
	return optionFunc(func(o *options) error {
		if c != nil {
			o.clock = c
		}
		return nil
	})
}

// WithLockTimeout sets how long OpenFile waits for the file lock held by
// another process (or another OpenFile of the same path) before it fails
// with a "state file is in use" error. Zero means DefaultLockTimeout; it is
// ignored by NewMemory.
func WithLockTimeout(d time.Duration) Option {
	return optionFunc(func(o *options) error {
		if d < 0 {
			return fmt.Errorf("state: lock timeout %v is negative", d)
		}
		if d > 0 {
			o.lockTimeout = d
		}
		return nil
	})
}
