package main

import (
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/keyward/keyward/audit"
)

const auditHelp = `Usage: keyward audit verify FILE

Checks the hash chain of an audit log: every line carries the SHA-256 of the
line before it. Reports the first broken or missing link.
`

// cmdAudit runs "keyward audit verify".
func cmdAudit(args []string, stdout, stderr io.Writer) error {
	return subcommands("audit", args, stdout, stderr, map[string]func([]string) error{
		"verify": func(a []string) error {
			fs := newFlags("audit verify", auditHelp, stdout)
			pos, err := parse(fs, a, stderr)
			if err != nil {
				return err
			}
			if len(pos) != 1 {
				fs.Usage()
				return errUsage
			}
			f, err := os.Open(pos[0])
			if err != nil {
				return err
			}
			defer f.Close()
			n, err := audit.Verify(f)
			if err != nil {
				return fmt.Errorf("%s: %w (%d lines before it verified)", pos[0], err, n)
			}
			fmt.Fprintf(stdout, "%s: %s lines, chain intact\n", pos[0], strconv.Itoa(n))
			return nil
		},
	}, auditHelp)
}
