package rulediff

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"

	"github.com/fwslot/fwslot/internal/nfnl"
	"github.com/fwslot/fwslot/internal/nsutil"
	"github.com/fwslot/fwslot/internal/slots"
	"github.com/fwslot/fwslot/internal/sysbin"
)

// RenderCompiled installs a compiled ruleset in a private network namespace
// that has the given interfaces (so iif/oif print as names), lists it with
// `nft -s list ruleset` and returns it without fwslot's slot layout.
// Nothing outside the private namespace changes.
func RenderCompiled(ctx context.Context, rs *slots.Ruleset, ifaces []slots.Iface) (*Ruleset, error) {
	nft, err := sysbin.Nft()
	if err != nil {
		return nil, err
	}
	var text string
	err = nsutil.DoFresh(func() error {
		if err := slots.MirrorInterfaces(ifaces); err != nil {
			return err
		}
		c, err := nfnl.DialHere()
		if err != nil {
			return err
		}
		err = slots.Install(c, rs, slots.Tag{})
		c.Close()
		if err != nil {
			return fmt.Errorf("install the ruleset in the render namespace: %w", err)
		}
		var out, stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, nft, "-s", "list", "ruleset")
		cmd.Stdout, cmd.Stderr = &out, &stderr
		if err := cmd.Run(); err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return fmt.Errorf("nft list ruleset: %s", bytes.TrimSpace(stderr.Bytes()))
			}
			return fmt.Errorf("run nft: %w", err)
		}
		text = out.String()
		return nil
	})
	if err != nil {
		return nil, err
	}
	out, err := Parse(text)
	if err != nil {
		return nil, err
	}
	stripSlots(out)
	out.sortAll()
	return out, nil
}

// renderFile compiles a ruleset file for the given interfaces and renders
// it as RenderCompiled does, so a file and a stored version print alike.
func renderFile(ctx context.Context, file string, ifaces []slots.Iface) (*Ruleset, error) {
	rs, err := slots.Compile(ctx, file, ifaces)
	if err != nil {
		return nil, err
	}
	return RenderCompiled(ctx, rs, ifaces)
}
