package slots

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fwslot/fwslot/internal/source"
	"github.com/fwslot/fwslot/internal/sysbin"
	"golang.org/x/sys/unix"
)

// privateDir makes a new directory only root can read for the private
// copy nft compiles. $TMPDIR is not trusted (the environment is the
// user's): the directory is made in /tmp, and only when /tmp is root's
// and sticky (or not writable by others), so nobody can move it away.
func privateDir() (string, error) {
	var st unix.Stat_t
	if err := unix.Stat("/tmp", &st); err != nil {
		return "", fmt.Errorf("private directory for nft: %w", err)
	}
	if !rootOwned(st.Uid, st.Mode&unix.S_ISVTX != 0) || (st.Mode&0o002 != 0 && st.Mode&unix.S_ISVTX == 0) {
		return "", errors.New("private directory for nft: /tmp is not root's sticky directory; fix its mode (1777, owner root)")
	}
	dir, err := os.MkdirTemp("/tmp", "fwslot-nft-")
	if err != nil {
		return "", fmt.Errorf("private directory for nft: %w", err)
	}
	return dir, nil
}

// rootOwned reports whether a directory owner uid is the host's root. In
// a user namespace (rootless CI: `unshare -Urn`) the host's root is not
// mapped and shows as the overflow uid; that is accepted only for a sticky
// directory, and only when this process is in a user namespace other than
// the initial one (where the overflow uid is a real user, nobody).
func rootOwned(uid uint32, sticky bool) bool {
	if uid == 0 {
		return true
	}
	if !sticky || !inUserNamespace() {
		return false
	}
	b, err := os.ReadFile("/proc/sys/kernel/overflowuid")
	if err != nil {
		return false
	}
	return strings.TrimSpace(string(b)) == strconv.FormatUint(uint64(uid), 10)
}

// inUserNamespace reports whether this process runs in a user namespace
// other than the initial one, whose uid_map maps all 2^32-1 ids.
func inUserNamespace() bool {
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return !(len(f) == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295")
}

// nftPath returns the nft binary fwslot runs: by absolute path in the
// system directories, never through $PATH.
func nftPath() (string, error) { return sysbin.Nft() }

// nftLimits bound what nft may spend compiling one ruleset: a few hundred
// bytes of defines that double at each level make nft allocate gigabytes.
type nftLimits struct {
	Memory uint64        // bytes of address space (RLIMIT_AS)
	CPU    time.Duration // CPU time (RLIMIT_CPU)
	Wall   time.Duration // wall-clock time
}

// limitsFor scales nft's limits with the size of the input: 1 GiB of
// address space plus 64 bytes per input byte (nft needs about 30 for large
// sets), and 30 s of CPU and wall time plus 1 s per 100 KB (nft compiles
// 100k rules, 6 MB, in about 10 s).
func limitsFor(size int64) nftLimits {
	t := 30*time.Second + time.Duration(size/100_000)*time.Second
	return nftLimits{Memory: 1<<30 + 64*uint64(size), CPU: t, Wall: t + 30*time.Second}
}

// runNft runs `nft -f` (with -j for JSON input) on the private copy cp of
// file under lim, in the
// calling thread's namespace; its messages
// name the user's files. Exceeding a limit is a *CompileError naming it.
func runNft(ctx context.Context, nft, dir string, cp *source.Copy, file string, kind inputKind, lim nftLimits) error {
	ctx, cancel := context.WithTimeout(ctx, lim.Wall)
	defer cancel()
	args := []string{"-f", cp.Main}
	if kind == kindJSON {
		args = append([]string{"-j"}, args...) // nft -j list ruleset output
	}
	cmd := exec.CommandContext(ctx, nft, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	var out bytes.Buffer
	cmd.Stderr, cmd.Stdout = &out, &out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run nft: %w", err)
	}
	// The limits apply from here on: nft has exec'd but not yet read
	// the file (the bomb needs seconds to grow).
	mem := unix.Rlimit{Cur: lim.Memory, Max: lim.Memory}
	cpu := unix.Rlimit{Cur: uint64(lim.CPU / time.Second), Max: uint64(lim.CPU/time.Second) + 1}
	lerr := errors.Join(
		unix.Prlimit(cmd.Process.Pid, unix.RLIMIT_AS, &mem, nil),
		unix.Prlimit(cmd.Process.Pid, unix.RLIMIT_CPU, &cpu, nil))
	if lerr != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait() // the kill is the outcome; its exit status says nothing more
		return fmt.Errorf("limit nft's memory and CPU: %w", lerr)
	}
	err := cmd.Wait()
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return fmt.Errorf("run nft: %w", err)
	}
	text := cp.UserPaths(out.String())
	ws, _ := ee.Sys().(syscall.WaitStatus)
	switch {
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return &CompileError{File: file, Output: fmt.Sprintf("nft took longer than %v compiling %s and was stopped; simplify the ruleset (defines that expand to huge sets?)", lim.Wall, file)}
	case ws.Signaled() && ws.Signal() == syscall.SIGXCPU, ws.Signaled() && ws.Signal() == syscall.SIGKILL && ctx.Err() == nil:
		return &CompileError{File: file, Output: fmt.Sprintf("nft exceeded its CPU limit of %v compiling %s; simplify the ruleset (defines that expand to huge sets?)", lim.CPU, file)}
	case outOfMemory(text, ws):
		return &CompileError{File: file, Output: fmt.Sprintf("nft exceeded its memory limit of %d MiB compiling %s; simplify the ruleset (defines that double at each level?)", lim.Memory>>20, file)}
	case ctx.Err() != nil:
		return ctx.Err()
	}
	hint, cause := kind.hint()
	return &CompileError{File: file, Output: text, Hint: hint, cause: cause}
}

// outOfMemory reports whether nft failed for want of memory: it says so and
// exits, or dies on an allocation it does not check.
func outOfMemory(out string, ws syscall.WaitStatus) bool {
	if strings.Contains(out, "Memory allocation failure") || strings.Contains(out, "Cannot allocate memory") || strings.Contains(out, "out of memory") {
		return true
	}
	return ws.Signaled() && (ws.Signal() == syscall.SIGABRT || ws.Signal() == syscall.SIGSEGV || ws.Signal() == syscall.SIGBUS)
}
