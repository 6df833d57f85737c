package slots

import (
	"bytes"
	"errors"
)

var (
	// ErrIptablesInput means nft rejected a file that reads as
	// iptables-save output; a *CompileError wraps it.
	ErrIptablesInput = errors.New("the file is iptables-save output")
	// ErrCRLF means nft rejected a file with Windows (CRLF) line endings;
	// a *CompileError wraps it.
	ErrCRLF = errors.New("the file has CRLF line endings")
)

// inputKind is what a ruleset file looks like from its first bytes.
type inputKind int

const (
	kindNft      inputKind = iota // native nft syntax
	kindJSON                      // nft's JSON (nft -j list ruleset)
	kindIptables                  // iptables-save or ip6tables-save output
	kindCRLF                      // nft syntax with Windows line endings
)

// sniffHead is the start of a ruleset that classify looks at: enough to
// see its first statement and its line endings, without copying a large
// source whole.
func sniffHead(src string) []byte {
	const limit = 64 << 10
	if len(src) > limit {
		src = src[:limit]
	}
	return []byte(src)
}

// classify tells from the head of a ruleset (the flattened source) which
// compiler mode it needs, or which mistake to name when nft rejects it.
func classify(head []byte) inputKind {
	trimmed := bytes.TrimLeft(head, " \t\r\n")
	if bytes.HasPrefix(trimmed, []byte("{")) {
		return kindJSON
	}
	for _, line := range bytes.Split(head, []byte("\n")) {
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		// iptables-save: "*filter", then ":INPUT ACCEPT [0:0]", "-A ...",
		// "COMMIT". nft syntax never starts a statement with these.
		if line[0] == '*' || line[0] == ':' || bytes.HasPrefix(line, []byte("-A ")) || bytes.Equal(line, []byte("COMMIT")) {
			return kindIptables
		}
		break
	}
	if bytes.Contains(head, []byte("\r\n")) {
		return kindCRLF
	}
	return kindNft
}

// hint names the likely cause of nft's rejection of a file, when its
// kind explains it, and the sentinel error for it.
func (k inputKind) hint() (string, error) {
	switch k {
	case kindIptables:
		return "this looks like iptables-save output, not nft syntax", ErrIptablesInput
	case kindCRLF:
		return "the file has Windows line endings (CRLF), which nft does not accept", ErrCRLF
	}
	return "", nil
}
