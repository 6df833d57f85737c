package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// machine describes the machine and the versions of the tools compared.
func machine() string {
	kernel := "?"
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		kernel = charsToString(u.Release[:])
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			if kb, err := strconv.Atoi(f[1]); err == nil {
				mem = fmt.Sprintf(", %.0f GiB RAM", float64(kb)/(1<<20))
			}
		}
	}
	ips := "ipset ?"
	if v := toolVersion("ipset"); v != "?" {
		ips = strings.SplitN(v, ",", 2)[0]
	}
	return fmt.Sprintf("nproc %d%s, kernel %s, %s, %s, %s, %s", runtime.NumCPU(), mem, kernel, toolVersion("nft"), toolVersion("iptables"), ips, runtime.Version())
}

// toolVersion is what `tool --version` prints, trimmed; "?" when the
// tool does not run.
func toolVersion(tool string) string {
	b, err := exec.Command(tool, "--version").Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

// loadavg is the 1, 5 and 15 minute load average, "?" when unreadable.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

func charsToString(ca []int8) string {
	var b strings.Builder
	for _, c := range ca {
		if c == 0 {
			break
		}
		b.WriteByte(byte(c))
	}
	return b.String()
}
