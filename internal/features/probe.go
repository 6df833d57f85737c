// Package features finds out what the running kernel's nf_tables supports
// by loading a tiny ruleset per feature in a private network namespace,
// and names the missing feature behind a ruleset nft could not load.
package features

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/fwslot/fwslot/internal/sysbin"

	"github.com/fwslot/fwslot/internal/nsutil"
	"github.com/fwslot/fwslot/internal/slots"
	"golang.org/x/sys/unix"
)

// Result is one feature and whether this kernel accepts it.
type Result struct {
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	Supported bool   `json:"supported"`
	// Detail says why a feature is missing: the kernel's refusal, or that
	// this nft cannot express it, and what the kernel config says.
	Detail string `json:"detail"`
	Config string `json:"config"`
}

// Report is what Probe found.
type Report struct {
	Kernel   string        `json:"kernel"`
	Nft      string        `json:"nft"`
	Features []Result      `json:"features"`
	Duration time.Duration `json:"duration_ns"`
}

// Lookup returns the result for a feature name.
func (r *Report) Lookup(name string) (Result, bool) {
	for _, f := range r.Features {
		if f.Name == name {
			return f, true
		}
	}
	return Result{}, false
}

// Probe tries every feature of All in one private network namespace. All
// features go into one file for nft; features whose lines nft or the kernel
// refuse are marked missing and the rest is tried again, until a load
// succeeds: one successful transaction proves every remaining feature.
// Nothing outside the private namespace changes.
func Probe(ctx context.Context) (*Report, error) {
	start := time.Now()
	nft, err := sysbin.Nft()
	if err != nil {
		return nil, err
	}
	rep := &Report{Kernel: kernelRelease(), Nft: nftVersion()}
	dir, err := os.MkdirTemp("", "fwslot-features-")
	if err != nil {
		return nil, fmt.Errorf("temporary directory for probe rulesets: %w", err)
	}
	defer os.RemoveAll(dir)
	failed := map[int]string{}
	err = nsutil.DoFresh(func() error {
		if err := slots.MirrorInterfaces([]slots.Iface{{Name: "fwp0"}}); err != nil {
			return err
		}
		return tryAll(ctx, nft, filepath.Join(dir, "probe.nft"), failed)
	})
	if errors.Is(err, os.ErrPermission) {
		return nil, fmt.Errorf("%w: probing needs a private network namespace: %v", slots.ErrPermission, err)
	}
	if err != nil {
		return nil, fmt.Errorf("probe nf_tables features in a private namespace: %w", err)
	}
	cfg := kernelConfig()
	for i, f := range All {
		r := Result{Name: f.Name, Kind: f.Kind, Supported: true, Config: f.Config}
		if why, ok := failed[i]; ok {
			r.Supported, r.Detail = false, why+configNote(cfg, f.Config)
		}
		rep.Features = append(rep.Features, r)
	}
	rep.Duration = time.Since(start)
	return rep, nil
}

// tryAll loads the features not yet failed until one load succeeds,
// recording each refused feature's reason in failed.
func tryAll(ctx context.Context, nft, file string, failed map[int]string) error {
	for {
		var idx []int
		for i := range All {
			if _, ok := failed[i]; !ok {
				idx = append(idx, i)
			}
		}
		if len(idx) == 0 {
			return nil
		}
		out, lineOf, err := load(ctx, nft, file, idx)
		if err != nil {
			return err
		}
		if out == nil {
			return nil
		}
		found := false
		for _, e := range ParseErrors(string(out)) {
			if e.File != file {
				continue
			}
			if i, ok := lineOf[e.Line]; ok {
				if _, dup := failed[i]; !dup {
					failed[i] = reason(e.Msg)
				}
				found = true
			}
		}
		if found {
			continue
		}
		// A refusal nft did not place on a line: try one by one.
		for _, i := range idx {
			out, _, err := load(ctx, nft, file, []int{i})
			if err != nil {
				return err
			}
			if out != nil {
				failed[i] = reason(firstError(string(out)))
			}
		}
		return nil
	}
}

// load writes the features idx into file and runs nft -f on it. It returns
// nft's output when nft failed (nil on success) and which feature each
// line of the file belongs to.
func load(ctx context.Context, nft, file string, idx []int) ([]byte, map[int]int, error) {
	var b strings.Builder
	lineOf := map[int]int{}
	line := 1
	for _, i := range idx {
		text := fmt.Sprintf(All[i].Ruleset, "p"+strconv.Itoa(i))
		n := strings.Count(text, "\n")
		for l := line; l < line+n; l++ {
			lineOf[l] = i
		}
		line += n
		b.WriteString(text)
	}
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		return nil, nil, fmt.Errorf("write probe ruleset: %w", err)
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, nft, "-f", file)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if out.Len() == 0 {
				out.WriteString("nft failed without a message")
			}
			return out.Bytes(), lineOf, nil
		}
		return nil, nil, fmt.Errorf("run nft: %w", err)
	}
	return nil, lineOf, nil
}

// NftError is one error nft printed: where and what.
type NftError struct {
	File string
	Line int
	Msg  string
	// Source is the line of the ruleset nft quotes under the error.
	Source string
}

var errLine = regexp.MustCompile(`^(.*?):(\d+):\d+(?:-\d+)?: Error: (.*)$`)

// ParseErrors reads nft's error output: "file:line:col: Error: msg", then
// the offending source line and a line of carets.
func ParseErrors(out string) []NftError {
	lines := strings.Split(out, "\n")
	var errs []NftError
	for i, l := range lines {
		m := errLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[2])
		e := NftError{File: m[1], Line: n, Msg: m[3]}
		if i+1 < len(lines) && !errLine.MatchString(lines[i+1]) {
			e.Source = strings.TrimSpace(lines[i+1])
		}
		errs = append(errs, e)
	}
	return errs
}

// reason turns nft's message into a feature's detail.
func reason(msg string) string {
	if strings.HasPrefix(msg, "Could not process rule:") {
		return "the kernel refused it: " + strings.TrimSpace(strings.TrimPrefix(msg, "Could not process rule:"))
	}
	return "this nft cannot express it: " + msg
}

func firstError(out string) string {
	if errs := ParseErrors(out); len(errs) > 0 {
		return errs[0].Msg
	}
	return strings.TrimSpace(out)
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}

func nftVersion() string {
	v, err := sysbin.NftVersion()
	if err != nil {
		return "unknown"
	}
	return v
}
