package state

import (
	"fmt"
	"time"
)

// counter is one quota counter: counts per caller-numbered bucket and the
// time after which the whole counter may be forgotten (zero: never). Both
// stores keep this value (the file store as JSON) and share take, so they
// count identically.
type counter struct {
	Buckets map[int64]int64 `json:"buckets"`
	Expires time.Time       `json:"expires,omitzero"`
}

// validateTake rejects requests no counter can honour.
func validateTake(req TakeRequest) error {
	switch {
	case req.Key == "":
		return fmt.Errorf("take: empty counter key: %w", ErrInvalid)
	case req.Weight < 0:
		return fmt.Errorf("take %q: weight %d is negative: %w", req.Key, req.Weight, ErrInvalid)
	case req.Limit < 0:
		return fmt.Errorf("take %q: limit %d is negative: %w", req.Key, req.Limit, ErrInvalid)
	}
	return nil
}

// expired reports whether the counter may be forgotten at now.
func (c *counter) expired(now time.Time) bool {
	return !c.Expires.IsZero() && !now.Before(c.Expires)
}

// take applies req to c (see TakeRequest for the rules). The caller holds
// whatever makes this atomic.
func (c *counter) take(req TakeRequest) TakeResult {
	if c.Buckets == nil {
		c.Buckets = make(map[int64]int64)
	}
	window := max(req.Window, 1)
	oldest := req.Bucket - window + 1
	// Drop buckets a full window older than the ones counted. The slack of one
	// window keeps a bucket alive for a request that computed its bucket just
	// before a boundary and arrives just after a request for the next one.
	for b := range c.Buckets {
		if b < oldest-window {
			delete(c.Buckets, b)
		}
	}
	var used int64
	for b, n := range c.Buckets {
		if b >= oldest && b <= req.Bucket {
			used += n
		}
	}
	allowed := true
	switch {
	case req.Enforce && req.Count:
		allowed = used+req.Weight <= req.Limit
	case req.Enforce:
		allowed = used < req.Limit
	}
	if req.Count && allowed && req.Weight > 0 {
		c.Buckets[req.Bucket] += req.Weight
		used += req.Weight
	}
	// The latest expiry wins; zero means never and always wins.
	switch {
	case req.Expires.IsZero():
		c.Expires = time.Time{}
	case !c.Expires.IsZero() && req.Expires.After(c.Expires):
		c.Expires = req.Expires
	}
	return TakeResult{Used: used, Allowed: allowed}
}

// newCounter starts a counter for req.
func newCounter(req TakeRequest) *counter {
	return &counter{Buckets: make(map[int64]int64), Expires: req.Expires}
}
