package main

import (
	"fmt"
	"strings"
	"testing"
)

// Every load applies retention: versions that were live stay, and only
// the newest --keep staged-only versions besides them.
func TestLoadAppliesRetention(t *testing.T) {
	ns, g := twoVersionTarget(t) // version 1 live, version 2 staged
	for i := 0; i < 6; i++ {
		f := writeFile(t, fmt.Sprintf("r%d.nft", i), strings.Replace(sshOnly, "dport 22", fmt.Sprintf("dport { 22, %d }", 2000+i), 1))
		if out, code := run(t, append(g, "load", f, "--keep", "3")...); code != 0 {
			t.Fatalf("load %d: %s", i, out)
		}
	}
	h := openHistory(t, g)
	vs, err := h.Versions("netns:" + ns)
	if err != nil {
		t.Fatal(err)
	}
	var nums []uint64
	for _, v := range vs {
		nums = append(nums, v.Number)
	}
	// 1 was live, 8 is staged, and 5, 6 and 7 are the newest others.
	if fmt.Sprint(nums) != "[1 5 6 7 8]" {
		t.Fatalf("history keeps versions %v, want [1 5 6 7 8]", nums)
	}
}
