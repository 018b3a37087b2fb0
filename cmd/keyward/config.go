package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/keyward/keyward/config"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/watermark"
)

const configHelp = `Usage: keyward config check --config FILE

Validates the configuration strictly (unknown fields are errors), opens every
key and the watermark store, and reports what is wrong.
`

// cmdConfig runs "keyward config check".
func cmdConfig(args []string, stdout, stderr io.Writer) error {
	return subcommands("config", args, stdout, stderr, map[string]func([]string) error{
		"check": func(a []string) error {
			fs := newFlags("config check", configHelp, stdout)
			cfgPath := fs.String("config", "", "configuration file")
			if _, err := parse(fs, a, stderr); err != nil {
				return err
			}
			if *cfgPath == "" {
				return errors.New("--config FILE is required")
			}
			cfg, err := config.Load(*cfgPath)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			ring, err := keyring.Open(ctx, cfg, nil)
			if err != nil {
				return err
			}
			defer ring.Close()
			st, err := watermark.Open(ctx, cfg.Watermark)
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.Ready(ctx); err != nil {
				return fmt.Errorf("watermark store not writable: %w", err)
			}
			fmt.Fprintf(stdout, "%s: OK (%d keys, watermark %s)\n", *cfgPath, len(ring.Keys()), watermark.RedactURL(cfg.Watermark))
			return nil
		},
	}, configHelp)
}
