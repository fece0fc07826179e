package policy

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/gatecheck/gatecheck/fakes/apigee/state"
)

// Counting windows for Quota and LLMTokenQuota, on top of state.Counters.
//
//	default (no type)  windows aligned to the unit in UTC: the top of the minute
//	                   or hour, midnight, Sunday midnight, the first of the month;
//	                   an interval of N units groups N of them counting from the
//	                   Unix epoch
//	calendar           windows of interval × unit counted from <StartTime>
//	rollingwindow      the last interval × unit, counted in 60 sub-buckets, so the
//	                   look-back has a granularity of 1/60 of the window (a month
//	                   is 30 days here)
//	flexi              a window starts with the identifier's first request and lasts
//	                   interval × unit; the next request after it ends starts the
//	                   next window. The start is kept in the store (a counter used
//	                   as a compare-and-swap register), so replicas agree.

type quotaType int

const (
	typeDefault quotaType = iota
	typeCalendar
	typeRolling
	typeFlexi
)

func parseQuotaType(s string) (quotaType, bool) {
	switch strings.TrimSpace(s) {
	case "", "default":
		return typeDefault, true
	case "calendar":
		return typeCalendar, true
	case "rollingwindow":
		return typeRolling, true
	case "flexi":
		return typeFlexi, true
	}
	return 0, false
}

func (t quotaType) String() string {
	return [...]string{"default", "calendar", "rollingwindow", "flexi"}[t]
}

// timeUnits are the quota time units.
var timeUnits = []string{"minute", "hour", "day", "week", "month"}

func parseTimeUnit(s string) (string, bool) {
	u := strings.ToLower(strings.TrimSpace(s))
	for _, v := range timeUnits {
		if u == v {
			return u, true
		}
	}
	return "", false
}

// unitDuration is the length of a unit; a month is 30 days (used by the
// rolling window only: other types count calendar months).
func unitDuration(unit string) time.Duration {
	switch unit {
	case "minute":
		return time.Minute
	case "hour":
		return time.Hour
	case "day":
		return 24 * time.Hour
	case "week":
		return 7 * 24 * time.Hour
	}
	return 30 * 24 * time.Hour
}

// startTimeLayout is Apigee's StartTime format (UTC).
const startTimeLayout = "2006-01-02 15:04:05"

// sundayEpoch is the first Sunday midnight after the Unix epoch: default
// weekly windows start on Sundays, as Apigee's do.
var sundayEpoch = time.Date(1970, 1, 4, 0, 0, 0, 0, time.UTC)

// period is the window a request counts in.
type period struct {
	bucket, window int64
	end            time.Time // when the window (or, rolling, the oldest sub-bucket) ends: expiry.time
	expires        time.Time // when the store may forget the counter
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// alignedPeriod is the window of a default or calendar quota at now.
func alignedPeriod(start time.Time, calendar bool, interval int64, unit string, now time.Time) period {
	now = now.UTC()
	if unit == "month" {
		var months int64
		var origin time.Time
		if calendar {
			origin = start.UTC()
			months = int64(now.Year()-origin.Year())*12 + int64(now.Month()-origin.Month())
			if origin.AddDate(0, int(months), 0).After(now) {
				months--
			}
		} else {
			origin = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
			months = int64(now.Year()-1970)*12 + int64(now.Month()-1)
		}
		idx := floorDiv(months, interval)
		end := origin.AddDate(0, int((idx+1)*interval), 0)
		return period{bucket: idx, window: 1, end: end, expires: end.Add(time.Minute)}
	}
	d := time.Duration(interval) * unitDuration(unit)
	origin := time.Unix(0, 0).UTC()
	switch {
	case calendar:
		origin = start.UTC()
	case unit == "week":
		origin = sundayEpoch
	}
	idx := floorDiv(now.Sub(origin).Milliseconds(), d.Milliseconds())
	end := origin.Add(time.Duration(idx+1) * d)
	return period{bucket: idx, window: 1, end: end, expires: end.Add(time.Minute)}
}

// rollingSlices is how many sub-buckets a rolling window has.
const rollingSlices = 60

func rollingPeriod(interval int64, unit string, now time.Time) period {
	d := time.Duration(interval) * unitDuration(unit)
	return slidingPeriod(d, rollingSlices, now)
}

// slidingPeriod counts the last d in n sub-buckets.
func slidingPeriod(d time.Duration, n int64, now time.Time) period {
	sub := max(d.Microseconds()/n, 1)
	b := floorDiv(now.UnixMicro(), sub)
	end := time.UnixMicro((b + 1) * sub)
	return period{bucket: b, window: n, end: end, expires: now.Add(d + time.Duration(sub)*time.Microsecond)}
}

// flexiEnd is when a flexi window that started at start ends.
func flexiEnd(start time.Time, interval int64, unit string) time.Time {
	if unit == "month" {
		return start.AddDate(0, int(interval), 0)
	}
	return start.Add(time.Duration(interval) * unitDuration(unit))
}

// flexiPeriod finds (or starts) the flexi window for key at now. The start
// (Unix ms) lives in the counter key+"#start": reading it is a count-only
// take of weight 0; moving it from s to now is an enforce-and-count take of
// weight now-s with limit now, which succeeds only while the counter still
// holds s (the counter never decreases), an atomic compare-and-swap.
func flexiPeriod(ctx context.Context, c state.Counters, key string, interval int64, unit string, now time.Time) (period, error) {
	startKey := key + "#start"
	nowMs := now.UnixMilli()
	res, err := c.Take(ctx, state.TakeRequest{Key: startKey, Window: 1, Count: true})
	if err != nil {
		return period{}, err
	}
	cur := res.Used
	for range 16 {
		if cur > 0 {
			start := time.UnixMilli(cur)
			if end := flexiEnd(start, interval, unit); now.Before(end) {
				return period{bucket: cur, window: 1, end: end, expires: end.Add(time.Minute)}, nil
			}
		}
		end := flexiEnd(now, interval, unit)
		res, err := c.Take(ctx, state.TakeRequest{
			Key: startKey, Window: 1, Weight: nowMs - cur, Limit: nowMs,
			Enforce: true, Count: true, Expires: end.Add(end.Sub(now)),
		})
		if err != nil {
			return period{}, err
		}
		if res.Allowed {
			return period{bucket: nowMs, window: 1, end: end, expires: end.Add(time.Minute)}, nil
		}
		cur = res.Used
	}
	return period{}, fmt.Errorf("flexi window of %q: the start kept moving", key)
}
