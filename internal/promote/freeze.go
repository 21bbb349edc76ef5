package promote

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/envplane/envplane/internal/domain"
)

// Frozen is an active freeze: promotions wait until Until.
type Frozen struct {
	Until  time.Time `json:"until"`
	Reason string    `json:"reason,omitempty"`
}

// maxFreeze bounds a recurring freeze's duration, and so the search for
// its start.
const maxFreeze = 31 * 24 * time.Hour

// FrozenAt is the freeze active at now, with when it ends (overlapping and
// back-to-back windows merged, within a bounded number of steps), or nil.
func FrozenAt(ws []domain.FreezeWindow, now time.Time) (*Frozen, error) {
	var out *Frozen
	at := now
	for range 16 { // merge chained windows, boundedly
		var best *Frozen
		for _, w := range ws {
			until, ok, err := activeUntil(w, at)
			if err != nil {
				return nil, err
			}
			if ok && (best == nil || until.After(best.Until)) {
				best = &Frozen{Until: until, Reason: w.Reason}
			}
		}
		if best == nil {
			break
		}
		if out == nil {
			out = best
		} else {
			out.Until = best.Until
		}
		at = best.Until
	}
	return out, nil
}

// activeUntil reports whether w is active at t and when it ends.
func activeUntil(w domain.FreezeWindow, t time.Time) (time.Time, bool, error) {
	if w.Cron == "" {
		return w.To, !t.Before(w.From) && t.Before(w.To), nil
	}
	c, err := ParseCron(w.Cron)
	if err != nil {
		return time.Time{}, false, err
	}
	loc := time.UTC
	if w.Timezone != "" {
		if loc, err = time.LoadLocation(w.Timezone); err != nil {
			return time.Time{}, false, fmt.Errorf("freeze timezone %q: %w", w.Timezone, err)
		}
	}
	if w.Duration <= 0 || w.Duration > maxFreeze {
		return time.Time{}, false, fmt.Errorf("freeze duration %s: between a minute and %s", w.Duration, maxFreeze)
	}
	// The latest start at or before t within Duration: walk back minute by
	// minute (bounded by maxFreeze / 1 minute steps).
	start := t.In(loc).Truncate(time.Minute)
	for s := start; t.Sub(s) < w.Duration; s = s.Add(-time.Minute) {
		if c.Match(s) {
			return s.Add(w.Duration).UTC(), true, nil
		}
	}
	return time.Time{}, false, nil
}

// Cron is a parsed five-field cron expression: minute hour day-of-month
// month day-of-week, each *, a number, a range a-b, a list, with /step.
type Cron struct {
	min, hour, dom, month, dow uint64 // bit sets
	domStar, dowStar           bool
}

// ParseCron parses a five-field expression.
func ParseCron(expr string) (*Cron, error) {
	f := strings.Fields(expr)
	if len(f) != 5 {
		return nil, fmt.Errorf("cron %q: want 5 fields (minute hour day-of-month month day-of-week)", expr)
	}
	var c Cron
	var err error
	specs := []struct {
		dst    *uint64
		lo, hi int
		name   string
	}{{&c.min, 0, 59, "minute"}, {&c.hour, 0, 23, "hour"}, {&c.dom, 1, 31, "day-of-month"}, {&c.month, 1, 12, "month"}, {&c.dow, 0, 7, "day-of-week"}}
	for i, s := range specs {
		if *s.dst, err = field(f[i], s.lo, s.hi); err != nil {
			return nil, fmt.Errorf("cron %q: %s: %v", expr, s.name, err)
		}
	}
	if c.dow&(1<<7) != 0 { // 7 is Sunday too
		c.dow |= 1
	}
	c.domStar, c.dowStar = f[2] == "*", f[4] == "*"
	return &c, nil
}

func field(s string, lo, hi int) (uint64, error) {
	var bits uint64
	for _, part := range strings.Split(s, ",") {
		rng, stepStr, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepStr)
			if err != nil || n < 1 {
				return 0, fmt.Errorf("bad step %q", stepStr)
			}
			step = n
		}
		a, b := lo, hi
		switch {
		case rng == "*":
		case strings.Contains(rng, "-"):
			x, y, _ := strings.Cut(rng, "-")
			var err1, err2 error
			a, err1 = strconv.Atoi(x)
			b, err2 = strconv.Atoi(y)
			if err1 != nil || err2 != nil {
				return 0, fmt.Errorf("bad range %q", rng)
			}
		default:
			n, err := strconv.Atoi(rng)
			if err != nil {
				return 0, fmt.Errorf("bad value %q", rng)
			}
			a, b = n, n
			if hasStep {
				b = hi
			}
		}
		if a < lo || b > hi || a > b {
			return 0, fmt.Errorf("%q is outside %d-%d", rng, lo, hi)
		}
		for v := a; v <= b; v += step {
			bits |= 1 << v
		}
	}
	return bits, nil
}

// Match reports whether t (in its own location) matches, to the minute.
// As in cron, when both day fields are restricted either may match.
func (c *Cron) Match(t time.Time) bool {
	if c.min&(1<<t.Minute()) == 0 || c.hour&(1<<t.Hour()) == 0 || c.month&(1<<int(t.Month())) == 0 {
		return false
	}
	dom, dow := c.dom&(1<<t.Day()) != 0, c.dow&(1<<int(t.Weekday())) != 0
	switch {
	case c.domStar && c.dowStar:
		return true
	case c.domStar:
		return dow
	case c.dowStar:
		return dom
	}
	return dom || dow
}
