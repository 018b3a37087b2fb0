package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/keyward/keyward/audit"
)

const auditHelp = `Usage: keyward audit verify FILE

Checks the hash chain of an audit log (every line carries the SHA-256 of the
line before it) and its tail against the anchor beside it (FILE.anchor: the
count and hash of the last line keyward made durable). Reports the first
broken link, lines missing from the end or an edited last line, and the
chain breaks keyward recorded at start; any of them exits with status 1.
Safe while keyward writes the file.
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
			path := pos[0]
			rep, err := audit.VerifyFile(path)
			var te *audit.TailError
			switch {
			case errors.As(err, &te):
				return fmt.Errorf("%s: %w (the chain of its %d lines links)", path, err, rep.Lines)
			case err != nil:
				return fmt.Errorf("%s: %w (%d lines before it verified)", path, err, rep.Lines)
			}
			tail := "no anchor (" + audit.AnchorPath(path) + "): lines removed from the end cannot be detected"
			if a := rep.Anchor; a != nil {
				tail = fmt.Sprintf("tail matches the anchor at line %d", a.Lines)
				if n := int64(rep.Lines) - a.Lines; n > 0 {
					tail += fmt.Sprintf(" (%d lines written since it last moved)", n)
				}
			}
			if len(rep.Breaks) > 0 {
				var b strings.Builder
				for _, br := range rep.Breaks {
					fmt.Fprintf(&b, "\n  line %d: %s", br.Line, br.Reason)
				}
				return fmt.Errorf("%s: %d lines link, %s, but keyward recorded %d chain break(s): lines before them are gone or were changed:%s", path, rep.Lines, tail, len(rep.Breaks), b.String())
			}
			fmt.Fprintf(stdout, "%s: %d lines, chain intact, %s\n", path, rep.Lines, tail)
			return nil
		},
	}, auditHelp)
}
