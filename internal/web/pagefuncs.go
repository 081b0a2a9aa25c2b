package web

import (
	"strconv"
	"time"
)

// More template functions, for the overview, host, search, rules, cases and
// settings pages (added to templateFuncs before any template is parsed).
func init() {
	for name, fn := range map[string]any{
		// list makes a slice of its arguments (for option lists).
		"list": func(s ...string) []string { return s },
		// num shows a counter, or "?" for an unknown one (negative).
		"num": func(n int64) string {
			if n < 0 {
				return "?"
			}
			return strconv.FormatInt(n, 10)
		},
		// rfc3339 is a time as the search form takes it ("" for zero).
		"rfc3339": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format(time.RFC3339)
		},
		// left is a deadline's remaining time: "3h12m" or "overdue by 2h".
		"left": func(d time.Duration) string {
			if d < 0 {
				return "overdue by " + roundDuration(-d)
			}
			return roundDuration(d) + " left"
		},
		// divf divides for display.
		"divf": func(a, b int64) float64 { return float64(a) / float64(b) },
		// ms shows a duration in milliseconds with one decimal.
		"ms": func(d time.Duration) string {
			return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64)
		},
	} {
		templateFuncs[name] = fn
	}
}

// roundDuration shows d to the minute: hours and minutes below 100 h (a
// 72 h clock reads "71h59m"), days and hours above.
func roundDuration(d time.Duration) string {
	d = d.Round(time.Minute)
	if d >= 100*time.Hour {
		days := d / (24 * time.Hour)
		return strconv.Itoa(int(days)) + "d" + strconv.Itoa(int((d-days*24*time.Hour)/time.Hour)) + "h"
	}
	h := d / time.Hour
	return strconv.Itoa(int(h)) + "h" + strconv.Itoa(int((d-h*time.Hour)/time.Minute)) + "m"
}
