package features

import (
	"bufio"
	"compress/gzip"
	"os"
	"regexp"
	"strings"
)

// configFile is where kernels built with CONFIG_IKCONFIG_PROC publish
// their configuration.
const configFile = "/proc/config.gz"

// kernelConfig reads the running kernel's configuration: option to value
// ("y", "m"), and "n" for options the file says are not set. It returns
// nil when the kernel does not publish it.
func kernelConfig() map[string]string {
	f, err := os.Open(configFile)
	if err != nil {
		return nil
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		return nil
	}
	defer z.Close()
	cfg := map[string]string{}
	sc := bufio.NewScanner(z)
	for sc.Scan() {
		l := sc.Text()
		if k, v, ok := strings.Cut(l, "="); ok && strings.HasPrefix(k, "CONFIG_") {
			cfg[k] = v
		} else if rest, ok := strings.CutPrefix(l, "# "); ok && strings.HasSuffix(rest, " is not set") {
			cfg[strings.TrimSuffix(rest, " is not set")] = "n"
		}
	}
	if sc.Err() != nil {
		return nil
	}
	return cfg
}

var configOption = regexp.MustCompile(`CONFIG_[A-Z0-9_]+`)

// configNote says what the kernel's configuration holds for the options a
// feature needs, when the kernel publishes it.
func configNote(cfg map[string]string, options string) string {
	if cfg == nil {
		return ""
	}
	var notes []string
	for _, o := range configOption.FindAllString(options, -1) {
		switch v, ok := cfg[o]; {
		case !ok, v == "n":
			notes = append(notes, o+" is not set")
		default:
			notes = append(notes, o+"="+v)
		}
	}
	if len(notes) == 0 {
		return ""
	}
	return " (" + configFile + ": " + strings.Join(notes, ", ") + ")"
}
