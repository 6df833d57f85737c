// Package mangen writes the man pages and shell completions of a cobra
// command tree, for packaging (make install, make deb).
package mangen

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// Write generates, under dir: man/man8/<cmd>.8 for the root and every
// visible subcommand, and completions for bash, zsh and fish under
// completions/.
func Write(root *cobra.Command, dir string) error {
	man := filepath.Join(dir, "man", "man8")
	comp := filepath.Join(dir, "completions")
	for _, d := range []string{man, comp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	root.DisableAutoGenTag = true
	hdr := &doc.GenManHeader{Title: "FWSLOT", Section: "8", Source: "fwslot", Manual: "System Administration"}
	// Reproducible builds set SOURCE_DATE_EPOCH; the pages then carry
	// that date instead of today's.
	if sec, err := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64); err == nil {
		d := time.Unix(sec, 0).UTC()
		hdr.Date = &d
	}
	if err := doc.GenManTree(root, hdr, man); err != nil {
		return fmt.Errorf("man pages: %w", err)
	}
	name := root.Name()
	for _, c := range []struct {
		file string
		gen  func(string) error
	}{
		{name + ".bash", func(p string) error { return root.GenBashCompletionFileV2(p, true) }},
		{"_" + name, root.GenZshCompletionFile},
		{name + ".fish", func(p string) error { return root.GenFishCompletionFile(p, true) }},
	} {
		if err := c.gen(filepath.Join(comp, c.file)); err != nil {
			return fmt.Errorf("completion %s: %w", c.file, err)
		}
	}
	return nil
}
