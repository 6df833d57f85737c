// Package histfixture writes a history file with the format of the
// history package it is built with, holding every kind of record a
// history can hold, so that a later format can prove it still opens such
// a file and keeps every version. history/testdata/v2-history.db was
// written by it at the last commit of schema 2:
//
//	go run ./internal/histfixture/cmd/histfixture history/testdata/v2-history.db
//
// history's tests check that file against the functions here that say
// what Write puts in it (legacy2_test.go).
package histfixture

import (
	"fmt"
	"os"
	"time"

	"github.com/fwslot/fwslot/history"
)

// At is the fixed clock of the fixture: version n at minute n.
func At(n int) time.Time { return time.Date(2026, 11, 1, 12, n, 0, 0, time.UTC) }

// Main is the main file of bundled version n; it includes Include.
func Main(n int) string {
	return fmt.Sprintf("include \"/etc/fw/sets.nft\"\ntable inet filter {\n\tchain input {\n\t\ttype filter hook input priority 0; policy drop;\n\t\tip saddr @allow accept # v%d\n\t}\n}\n", n)
}

// Include is the included file: the same in versions 2 and 3.
const Include = "table inet filter {\n\tset allow {\n\t\ttype ipv4_addr\n\t\telements = { 10.0.0.1, 10.0.0.2 }\n\t}\n}\n"

// Flat is the flattened source of a bundled version.
func Flat(n int) string { return Include + Main(n) }

// Single is the source of a version with one file.
func Single(target string, n int) string {
	return fmt.Sprintf("table inet filter { chain input { type filter hook input priority 0; policy accept; } } # %s v%d\n", target, n)
}

// Compiled is version n's compiled form: 16 KiB, mostly shared between
// versions, so a later format that deduplicates has something to find.
func Compiled(n int) []byte {
	out := make([]byte, 16<<10)
	for i := range out {
		out[i] = byte(i * 7)
	}
	out[len(out)-1] = byte(n)
	return out
}

// Write writes the fixture history to path, which must not exist:
// target host holds versions 1 to 6 (5 deleted: a gap), 2 and 3 of two
// files with an unchanged include, 6 a commit without files; five
// activations (plain, confirmed, reverted, the revert, pending with a
// deadline) and the kernel record {4, 6, gen 77}. Target netns:edge holds
// versions 1 (the content of host's 2) and 2 (no files) and one
// activation.
func Write(path string) error {
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("%s exists", path)
	}
	s, err := history.Open(path, history.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	// host: 1 single file, 2 and 3 bundles with an unchanged include,
	// 4 single, 5 deleted (refused by the kernel), 6 a commit.
	for n := 1; n <= 6; n++ {
		v := history.Version{User: "alice", Time: At(n), Message: fmt.Sprintf("version %d", n), Origin: "file", Rules: n, Tables: []string{"inet filter"}}
		switch n {
		case 2, 3:
			v.Source = Flat(n)
			v.Files = []history.File{{Path: "/etc/fw/main.nft", Content: []byte(Main(n))}, {Path: "/etc/fw/sets.nft", Content: []byte(Include)}}
		case 6:
			v.Source, v.Origin, v.User = Single("host", n), "commit", "bob"
		default:
			v.Source = Single("host", n)
			v.Files = []history.File{{Path: "/etc/fw/main.nft", Content: []byte(v.Source)}}
		}
		if _, err := s.AddVersion("host", v, Compiled(n)); err != nil {
			return err
		}
	}
	if err := s.DeleteVersion("host", 5); err != nil {
		return err
	}
	acts := []history.Activation{
		{From: 0, To: 1, How: "swap", User: "alice", Time: At(10)},
		{From: 1, To: 2, How: "swap", User: "alice", Time: At(11), Result: "confirmed", Note: "confirmed by alice"},
		{From: 2, To: 3, How: "swap", User: "alice", Time: At(12), Result: "reverted", Note: "deadline passed"},
		{From: 3, To: 2, How: "revert", User: "watchdog", Time: At(13)},
		{From: 2, To: 4, How: "swap", User: "alice", Time: At(14), Result: "pending", Deadline: At(24)},
	}
	for _, a := range acts {
		if err := addActivation(s, "host", a); err != nil {
			return err
		}
	}
	if err := s.Update(func(tx *history.Tx) error {
		return tx.SetKernel("host", history.Kernel{Production: 4, Staging: 6, Gen: 77})
	}); err != nil {
		return err
	}
	// netns:edge: two versions with the same content as each other's
	// neighbours in host (deduplication across targets), one activation.
	for n := 1; n <= 2; n++ {
		v := history.Version{User: "carol", Time: At(30 + n), Message: fmt.Sprintf("edge %d", n), Origin: "file", Rules: 1, Tables: []string{"inet filter"}}
		v.Source = Flat(2)
		v.Files = []history.File{{Path: "/etc/fw/main.nft", Content: []byte(Main(2))}, {Path: "/etc/fw/sets.nft", Content: []byte(Include)}}
		if n == 2 {
			v.Source, v.Files = Single("netns:edge", n), nil
		}
		if _, err := s.AddVersion("netns:edge", v, Compiled(n)); err != nil {
			return err
		}
	}
	if err := addActivation(s, "netns:edge", history.Activation{To: 1, How: "swap", User: "carol", Time: At(40)}); err != nil {
		return err
	}
	return s.Close()
}

// addActivation records a under target in a transaction of its own, as
// each command of the fixture's story did.
func addActivation(s *history.Store, target string, a history.Activation) error {
	return s.Update(func(tx *history.Tx) error {
		_, err := tx.AddActivation(target, a)
		return err
	})
}
