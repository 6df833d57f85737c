package fleet

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// ParseWaves reads "10%,50%,100%": cumulative shares of the hosts after
// the canary, each larger than the one before, the last 100%.
func ParseWaves(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		n, err := strconv.Atoi(strings.TrimSuffix(f, "%"))
		if err != nil || !strings.HasSuffix(f, "%") || n <= 0 || n > 100 {
			return nil, fmt.Errorf("wave %q: want a percentage like 10%%, 1%% to 100%%", f)
		}
		if len(out) > 0 && n <= out[len(out)-1] {
			return nil, fmt.Errorf("waves %q: each wave must reach more hosts than the one before", s)
		}
		out = append(out, n)
	}
	if len(out) == 0 || out[len(out)-1] != 100 {
		return nil, fmt.Errorf("waves %q: the last wave must be 100%%, or some hosts never get the version", s)
	}
	return out, nil
}

// makePlan splits hosts (sorted by name) into the canary wave of canary
// hosts, then waves reaching the cumulative shares of all hosts. Empty
// waves are left out.
func makePlan(hosts []string, canary int, waves []int) [][]string {
	hs := append([]string(nil), hosts...)
	sort.Strings(hs)
	var plan [][]string
	canary = min(max(canary, 0), len(hs))
	if canary > 0 {
		plan = append(plan, hs[:canary])
	}
	done := canary
	for _, p := range waves {
		upto := int(math.Ceil(float64(len(hs)) * float64(p) / 100))
		upto = max(upto, done)
		if upto > done {
			plan = append(plan, hs[done:upto])
			done = upto
		}
	}
	if done < len(hs) {
		plan = append(plan, hs[done:])
	}
	return plan
}
