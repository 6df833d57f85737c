package bench

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Summary describes repeated measurements of one quantity.
type Summary struct {
	N                int
	Median, Min, Max float64
	P10, P90         float64
}

// Summarize computes the median, extremes and 10th/90th percentiles
// (nearest rank with linear interpolation) of xs.
func Summarize(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return Summary{N: len(s), Median: quantile(s, 0.5), Min: s[0], Max: s[len(s)-1],
		P10: quantile(s, 0.1), P90: quantile(s, 0.9)}
}

func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 1 {
		return sorted[0]
	}
	pos := q * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	hi := int(math.Ceil(pos))
	f := pos - float64(lo)
	return sorted[lo]*(1-f) + sorted[hi]*f
}

// Durations converts durations to seconds.
func Durations(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = d.Seconds()
	}
	return out
}

// FmtSeconds renders seconds with a unit that keeps 3 significant digits.
func FmtSeconds(s float64) string {
	scale, verb, unit := secondsUnit(s)
	return fmt.Sprintf(verb+" "+unit, s*scale)
}

// FmtTime renders a time summary as "median (min–max)".
func FmtTime(s Summary) string {
	return fmt.Sprintf("%s (%s–%s)", FmtSeconds(s.Median), trimUnit(s.Min, s.Max), FmtSeconds(s.Max))
}

// trimUnit prints min in the unit of max, so "0.61–0.75 s" stays short.
func trimUnit(min, max float64) string {
	scale, verb, _ := secondsUnit(max)
	return fmt.Sprintf(verb, min*scale)
}

// secondsUnit picks the unit seconds s are shown in: the factor from
// seconds, the number format and the unit's name.
func secondsUnit(s float64) (scale float64, verb, unit string) {
	switch {
	case s >= 1:
		return 1, "%.2f", "s"
	case s >= 1e-3:
		return 1e3, "%.3g", "ms"
	default:
		return 1e6, "%.3g", "µs"
	}
}

// FmtMB renders a memory summary in MB as "median (min–max)".
func FmtMB(s Summary) string {
	return fmt.Sprintf("%.0f MB (%.0f–%.0f)", s.Median, s.Min, s.Max)
}

// Ratio renders a/b as "12.3x".
func Ratio(a, b float64) string {
	if b == 0 {
		return "–"
	}
	r := a / b
	switch {
	case r >= 100:
		return fmt.Sprintf("%.0fx", r)
	case r >= 10:
		return fmt.Sprintf("%.1fx", r)
	default:
		return fmt.Sprintf("%.2fx", r)
	}
}

// ParseSizes reads a comma-separated list of positive counts (the sizes
// flags of the benchmark commands).
func ParseSizes(list string) ([]int, error) {
	var sizes []int
	for _, s := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bad size %q", s)
		}
		sizes = append(sizes, n)
	}
	return sizes, nil
}
