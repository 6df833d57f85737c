package probe

import (
	"bytes"
	"errors"
	"runtime"
	"strings"
	"testing"
)

// TestParseStopsAfterTenErrors: a 10 MB file of malformed lines gives ten
// messages and a line saying Parse stopped, reads no further and costs
// little memory (it cost 2.5 GB and printed 350 MB before the cap).
func TestParseStopsAfterTenErrors(t *testing.T) {
	bad := []byte("accept tcp 198.51.100.7:40000 => nowhere in eth0\n")
	tests := []struct {
		name   string
		body   []byte
		errors int
		last   string
	}{
		{"three bad lines", bytes.Repeat(bad, 3), 3, "t.probes:3: expected"},
		{"ten bad lines", bytes.Repeat(bad, 10), 10, "t.probes:10: expected"},
		{"eleven bad lines", bytes.Repeat(bad, 11), 11, "t.probes:11: stopped after 10 malformed lines"},
		{"10 MB of bad lines", bytes.Repeat(bad, 10<<20/len(bad)), 11, "t.probes:11: stopped after 10 malformed lines"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			r := bytes.NewReader(tt.body)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err = Parse("t.probes", r)
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatal("no error")
			}
			var joined interface{ Unwrap() []error }
			if !errors.As(err, &joined) || len(joined.Unwrap()) != tt.errors {
				t.Fatalf("want %d errors, got %v", tt.errors, err)
			}
			lines := strings.Split(err.Error(), "\n")
			if !strings.HasPrefix(lines[len(lines)-1], tt.last) {
				t.Errorf("last line %q, want it to start with %q", lines[len(lines)-1], tt.last)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
				t.Errorf("Parse allocated %d bytes, want under 1 MiB", n)
			}
			if len(err.Error()) > 4096 {
				t.Errorf("the message is %d bytes", len(err.Error()))
			}
		})
	}
}
