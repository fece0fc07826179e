package clock

import (
	"testing"
	"time"
)

func TestShiftedAdvanceMovesForwardOnly(t *testing.T) {
	t.Parallel()
	var c Shifted
	before := c.Now()
	c.Advance(time.Hour)
	c.Advance(-time.Hour)
	if got := c.Offset(); got != time.Hour {
		t.Fatalf("offset = %v, want 1h", got)
	}
	if d := c.Now().Sub(before); d < time.Hour {
		t.Fatalf("now moved %v, want at least 1h", d)
	}
}

func TestManual(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewManual(start)
	c.Advance(90 * time.Second)
	c.Advance(-time.Hour)
	if got, want := c.Now(), start.Add(90*time.Second); !got.Equal(want) {
		t.Fatalf("now = %v, want %v", got, want)
	}
	c.Set(start)
	if !c.Now().Equal(start) {
		t.Fatalf("set did not take")
	}
}
