// Package nsutil runs code inside network namespaces and creates and removes
// the named namespaces that tests, the demo and the probe twin use.
//
// Go schedules goroutines on any OS thread, and a network namespace belongs
// to a thread, so every switch happens on a locked thread. When switching
// back fails, the thread is never handed back to the scheduler: the
// goroutine exits while still locked and the runtime destroys the thread
// (the same rule containernetworking/plugins' pkg/ns follows).
package nsutil

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// RunDir is where iproute2 keeps bind mounts of named namespaces.
const RunDir = "/run/netns"

// MaxNameLen is the longest namespace name: a file name in RunDir.
const MaxNameLen = 255

// ValidName checks a namespace name as `ip netns` takes it: a file name in
// RunDir, not a path. "../../proc/1/ns/net" would otherwise name the host's
// namespace as if it were a named one.
func ValidName(name string) error {
	switch {
	case name == "":
		return errors.New("empty network namespace name")
	case len(name) > MaxNameLen:
		return fmt.Errorf("network namespace name of %d bytes; at most %d", len(name), MaxNameLen)
	case name == "." || name == "..":
		return fmt.Errorf("invalid network namespace name %q", name)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("invalid network namespace name %q: a name as `ip netns list` shows it, without / ", name)
	}
	return nil
}

// Path returns the file that pins the named namespace, or "" for the
// calling process's own namespace (name ""). An invalid name (ValidName)
// has no file: it returns a path that does not exist.
func Path(name string) string {
	if name == "" {
		return ""
	}
	if ValidName(name) != nil {
		return filepath.Join(RunDir, "invalid name")
	}
	return filepath.Join(RunDir, name)
}

// Exists reports whether a named namespace exists.
func Exists(name string) bool {
	if ValidName(name) != nil {
		return false
	}
	_, err := os.Stat(Path(name))
	return err == nil
}

// IsHost reports whether the named namespace is the host's: the one this
// process runs in (where no --netns acts), or the initial network
// namespace (PID 1's, when it can be read), whatever name pins it.
func IsHost(name string) (bool, error) {
	if err := ValidName(name); err != nil {
		return false, err
	}
	var named unix.Stat_t
	if err := unix.Stat(Path(name), &named); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil // no such namespace; using it fails later, clearly
		}
		return false, fmt.Errorf("network namespace %q: %w", name, err)
	}
	// This thread's namespace is the process's own: threads that switch
	// namespace stay locked to their goroutine until they are discarded
	// (/proc/self would name the main thread, which such a goroutine may
	// have taken).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for _, host := range []string{"/proc/thread-self/ns/net", "/proc/1/ns/net"} {
		var h unix.Stat_t
		if err := unix.Stat(host, &h); err != nil {
			if host == "/proc/thread-self/ns/net" || !errors.Is(err, unix.EACCES) {
				return false, fmt.Errorf("the host's network namespace (%s): %w", host, err)
			}
			continue // PID 1 outside our reach (a container): ours decides
		}
		if named.Dev == h.Dev && named.Ino == h.Ino {
			return true, nil
		}
	}
	return false, nil
}

// Open returns a handle on the named namespace, or on the calling thread's
// namespace for name "". The caller closes it.
func Open(name string) (netns.NsHandle, error) {
	if name != "" {
		if err := ValidName(name); err != nil {
			return netns.None(), err
		}
	}
	if name == "" {
		h, err := netns.Get()
		if err != nil {
			return netns.None(), fmt.Errorf("open current netns: %w", err)
		}
		return h, nil
	}
	h, err := netns.GetFromPath(Path(name))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return netns.None(), fmt.Errorf("network namespace %q does not exist (see `ip netns list`)", name)
		}
		return netns.None(), fmt.Errorf("open netns %q: %w", name, err)
	}
	return h, nil
}

// Do runs fn on a locked OS thread inside the named namespace ("" runs it in
// the current one). Child processes started by fn inherit the namespace.
func Do(name string, fn func() error) error {
	if name == "" {
		return fn()
	}
	target, err := Open(name)
	if err != nil {
		return err
	}
	defer target.Close()
	return DoHandle(target, fn)
}

// DoHandle is Do for an open namespace handle.
func DoHandle(target netns.NsHandle, fn func() error) error {
	return onThread(func() error {
		if err := netns.Set(target); err != nil {
			return fmt.Errorf("enter netns: %w", err)
		}
		return nil
	}, fn)
}

// onThread runs enter, which moves the thread into another network
// namespace, then fn, on a locked OS thread, and brings the thread back to
// the namespace it started in. enter must leave the thread where it was
// when it fails. When the way back fails the thread stays locked: the
// runtime kills it when the goroutine exits, so no goroutine runs in the
// wrong namespace.
func onThread(enter, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("get current netns: %w", err)
			return
		}
		defer orig.Close()
		if err := enter(); err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("return to original netns: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// DoFresh runs fn on a locked thread inside a brand new, anonymous network
// namespace that disappears when fn returns and nothing else holds it (no
// open sockets, no child processes). The thread is discarded afterwards.
func DoFresh(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread dies with this goroutine, together
		// with its reference to the private namespace.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare netns: %w", err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// NewAnon makes a new network namespace that has no name: nothing under
// RunDir pins it, only the returned handle (an open /proc/thread-self/ns/net
// descriptor) keeps it alive, so it disappears when the handle is closed or
// the process dies, however it dies. Its loopback is up. Enter it with
// DoHandle; a child process started there inherits it.
//
// It needs CAP_SYS_ADMIN over the calling user namespace, not root on the
// host: inside `unshare -Urn` an unprivileged user has it. The error then
// wraps os.ErrPermission.
func NewAnon() (netns.NsHandle, error) {
	h := netns.None()
	err := onThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare netns: %w", err) // still in the original
		}
		return nil
	}, func() error {
		nh, err := netns.Get() // /proc/<pid>/task/<tid>/ns/net, O_CLOEXEC
		if err != nil {
			return fmt.Errorf("open the new netns: %w", err)
		}
		if err := setLoopbackUp(); err != nil {
			nh.Close()
			return err
		}
		h = nh
		return nil
	})
	// Back where it started (or discarded), the thread holds nothing of
	// the new namespace: only the handle keeps it.
	if err != nil {
		if h.IsOpen() {
			h.Close()
		}
		return netns.None(), err
	}
	return h, nil
}

// Create makes a named namespace called prefix, the creating process's pid,
// a dash and a random suffix, brings its loopback up, and returns its name.
// Remove it with Delete; SweepStale removes those whose creator died.
func Create(prefix string) (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random netns name: %w", err)
	}
	name := prefix + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
	if err := CreateNamed(name); err != nil {
		return "", err
	}
	return name, nil
}

// CreateNamed makes the named namespace (like `ip netns add NAME`) and
// brings its loopback interface up.
func CreateNamed(name string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// netns.NewNamed moves this thread into the new namespace; the
		// thread is discarded when the goroutine ends.
		h, err := netns.NewNamed(name)
		if err != nil {
			errc <- fmt.Errorf("create netns %q: %w", name, err)
			return
		}
		h.Close()
		errc <- setLoopbackUp()
	}()
	if err := <-errc; err != nil {
		_ = netns.DeleteNamed(name)
		return err
	}
	return nil
}

// Delete removes a named namespace. Removing one that does not exist is not
// an error, so cleanup paths can call it unconditionally.
func Delete(name string) error {
	if name == "" {
		return errors.New("refusing to delete the current network namespace")
	}
	if err := ValidName(name); err != nil {
		return err
	}
	if err := netns.DeleteNamed(name); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete netns %q: %w", name, err)
	}
	return nil
}

// setLoopbackUp sets "lo" up in the calling thread's namespace.
func setLoopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket for loopback: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("get lo flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	return nil
}

// SweepStale deletes the namespaces that Create made with prefix for a
// process that no longer exists (killed before its cleanup ran), and returns
// their names. Namespaces of live processes, and names it cannot read a pid
// from, are left alone.
//
// Where RunDir is not writable (an unprivileged user namespace) it does
// nothing: that process could neither have made nor remove a name there.
func SweepStale(prefix string) ([]string, error) {
	if unix.Access(RunDir, unix.W_OK) != nil {
		return nil, nil
	}
	entries, err := os.ReadDir(RunDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sweep stale namespaces: %w", err)
	}
	var swept []string
	var errs []error
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		pidText, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 || processExists(pid) {
			continue
		}
		if err := Delete(e.Name()); err != nil {
			errs = append(errs, err)
			continue
		}
		swept = append(swept, e.Name())
	}
	return swept, errors.Join(errs...)
}

// processExists reports whether pid names a live process (zombies count
// as dead: they will run no more cleanup).
func processExists(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name: "pid (comm) S ...".
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}
