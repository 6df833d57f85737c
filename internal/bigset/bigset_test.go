package bigset

import "testing"

func TestSource(t *testing.T) {
	tests := []struct {
		name   string
		n      int
		chains string
		want   string
	}{
		{"one address", 1, "", "table ip filter {\n\tset big {\n\t\ttype ipv4_addr\n\t\telements = {\n\t\t\t10.0.0.0\n\t\t}\n\t}\n}\n"},
		{"a second line after 16", 17, "\tchain c {\n\t}\n",
			"table ip filter {\n\tset big {\n\t\ttype ipv4_addr\n\t\telements = {" +
				"\n\t\t\t10.0.0.0, 10.0.0.1, 10.0.0.2, 10.0.0.3, 10.0.0.4, 10.0.0.5, 10.0.0.6, 10.0.0.7, 10.0.0.8, 10.0.0.9, 10.0.0.10, 10.0.0.11, 10.0.0.12, 10.0.0.13, 10.0.0.14, 10.0.0.15, " +
				"\n\t\t\t10.0.0.16\n\t\t}\n\t}\n\tchain c {\n\t}\n}\n"},
	}
	for _, tt := range tests {
		got := Source(tt.n, func(i int) uint32 { return 10<<24 + uint32(i) }, tt.chains)
		if got != tt.want {
			t.Errorf("%s:\n%q\nwant\n%q", tt.name, got, tt.want)
		}
	}
}
