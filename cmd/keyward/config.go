package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/keyward/keyward/server"
)

const configHelp = `Usage: keyward config check --config FILE
       keyward config example [--root DIR]

Subcommands:
  check    validate a configuration as keyward serve would at start
  example  print a complete annotated configuration
`

const configCheckHelp = `Usage: keyward config check --config FILE

Runs every check keyward serve makes at start, in the same code and with the
same messages: the configuration strictly (unknown fields are errors), the
tokens file, the TLS certificates, keys and client CAs, the listener
addresses, that the audit file and the watermark directory can be written,
the watermark store, every key (opened, public key read), the authorized
keys. It takes no lock and opens nothing for writing, so it runs beside the
daemon serving that configuration: edit, check, then systemctl reload.
`

// cmdConfig runs "keyward config check" and "keyward config example".
func cmdConfig(args []string, stdout, stderr io.Writer) error {
	return subcommands("config", args, stdout, stderr, map[string]func([]string) error{
		"check": func(a []string) error {
			fs := newFlags("config check", configCheckHelp, stdout)
			cfgPath := fs.String("config", "", "configuration file")
			if _, err := parse(fs, a, stderr); err != nil {
				return err
			}
			cfg, err := loadConfig(*cfgPath)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			rep, err := server.Check(ctx, cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				return err
			}
			for _, w := range rep.Warnings {
				fmt.Fprintln(stdout, "warning:", w)
			}
			fmt.Fprintf(stdout, "%s: OK (%d keys, watermark %s)\n", *cfgPath, rep.Keys, rep.Watermark)
			return nil
		},
		"example": cmdConfigExample(stdout, stderr),
	}, configHelp)
}
