// Command histfixture writes the fixture history of package histfixture
// to a new file: go run ./internal/histfixture/cmd/histfixture FILE.
package main

import (
	"fmt"
	"os"

	"github.com/fwslot/fwslot/internal/histfixture"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: histfixture FILE (the file must not exist)")
		os.Exit(2)
	}
	if err := histfixture.Write(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "histfixture:", err)
		os.Exit(1)
	}
}
