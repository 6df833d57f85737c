// Package bigset writes the big IPv4 set that rulediff's scale benchmarks
// and history's storage tests store and compare: one table, one set of n
// addresses written 16 a line, as the scale benchmark (bench/bigset.go)
// writes it.
package bigset

import (
	"fmt"
	"strings"
)

// Source returns `table ip filter` holding `set big` with the addresses
// addr(0) to addr(n-1), then chains (whole lines, "" for none).
func Source(n int, addr func(i int) uint32, chains string) string {
	var b strings.Builder
	b.Grow(n*16 + 256 + len(chains))
	b.WriteString("table ip filter {\n\tset big {\n\t\ttype ipv4_addr\n\t\telements = {")
	for i := range n {
		if i%16 == 0 {
			b.WriteString("\n\t\t\t")
		}
		a := addr(i)
		fmt.Fprintf(&b, "%d.%d.%d.%d", a>>24, a>>16&255, a>>8&255, a&255)
		if i < n-1 {
			b.WriteString(", ")
		}
	}
	b.WriteString("\n\t\t}\n\t}\n")
	b.WriteString(chains)
	b.WriteString("}\n")
	return b.String()
}
