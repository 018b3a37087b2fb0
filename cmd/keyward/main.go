// Command keyward is a remote signer daemon for Tezos and Ethereum: serve, manage keys, inspect watermarks, check configs and audit logs.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/keyward/keyward/config"
)

var topUsage = `keyward: a remote signer for Tezos and Ethereum.

Usage:
  keyward <command> [flags]

Commands:
  serve            run the signer (serve --config FILE, or serve --dev)
  keys             generate, import, show and list keys
  config           check a configuration as serve would (safe beside it), print an example
  watermark        show, set, export and import high watermarks
  limits show      print what each key spent of its rolling limits
  audit verify     check the hash chain of an audit log
  bench            drive a running keyward with concurrent requests
  version          print the version and VCS revision

Run "keyward <command> --help" for the flags of a command.
`

var errUsage = errors.New("usage")

func main() {
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "keyward:", err)
		}
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	cmds := map[string]func([]string) error{
		"serve":     func(a []string) error { return cmdServe(a, stdout, stderr) },
		"keys":      func(a []string) error { return cmdKeys(a, stdout, stderr) },
		"config":    func(a []string) error { return cmdConfig(a, stdout, stderr) },
		"watermark": func(a []string) error { return cmdWatermark(a, stdout, stderr) },
		"audit":     func(a []string) error { return cmdAudit(a, stdout, stderr) },
		"limits":    func(a []string) error { return cmdLimits(a, stdout, stderr) },
		"bench":     func(a []string) error { return cmdBench(a, stdout, stderr) },
		"version":   func(a []string) error { fmt.Fprintln(stdout, "keyward", version()); return nil },
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, topUsage)
		return errUsage
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, topUsage)
		return nil
	case "-v", "--version":
		fmt.Fprintln(stdout, "keyward", version())
		return nil
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "keyward: unknown command %q\n\n%s", args[0], topUsage)
		return errUsage
	}
	return c(args[1:])
}

// subcommands dispatches "keyward <group> <sub>".
func subcommands(group string, args []string, stdout, stderr io.Writer, subs map[string]func([]string) error, help string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		w := stdout
		if len(args) == 0 {
			w = stderr
		}
		fmt.Fprint(w, help)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	f, ok := subs[args[0]]
	if !ok {
		names := make([]string, 0, len(subs))
		for n := range subs {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprintf(stderr, "keyward %s: unknown subcommand %q (known: %s)\n", group, args[0], strings.Join(names, ", "))
		return errUsage
	}
	return f(args[1:])
}

// filepathAbs is filepath.Abs, for commands that print absolute paths.
var filepathAbs = filepath.Abs

// newFlags makes a FlagSet whose --help prints a synopsis and the flags.
func newFlags(name, synopsis string, stdout io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "%s\n", strings.TrimSpace(synopsis))
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprint(fs.Output(), "\nFlags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parse parses flags; positional arguments are returned.
func parse(fs *flag.FlagSet, args []string, stderr io.Writer) ([]string, error) {
	// Allow flags after positional arguments.
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, errUsage
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	return pos, nil
}

// loadConfig loads the file a command's --config flag names.
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return nil, errors.New("--config FILE is required")
	}
	return config.Load(path)
}
