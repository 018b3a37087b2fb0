package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/keyward/keyward/audit"
	"github.com/keyward/keyward/config"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/watermark"
)

var filepathAbs = filepath.Abs

const configHelp = `Usage: keyward config check --config FILE

Validates the configuration strictly (unknown fields are errors), opens every
key and the watermark store, and reports what is wrong.
`

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

const watermarkHelp = `Usage: keyward watermark <subcommand> --config FILE

Subcommands:
  show --config FILE                       print every mark
  set --config FILE --key PKH --chain NET --kind block|preattestation|attestation --level N [--round R] --force
                                           overwrite one mark (only with --force; never lower one while a baker runs)
  export --config FILE [--out FILE]        write every mark as JSON
  import --config FILE --in FILE [--force] load marks from JSON; a mark is only raised unless --force
`

func openStore(cfgPath string) (watermark.Store, error) {
	if cfgPath == "" {
		return nil, errors.New("--config FILE is required")
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return nil, err
	}
	return watermark.Open(context.Background(), cfg.Watermark)
}

func kindName(b byte) string {
	switch b {
	case 0x11:
		return "block"
	case 0x12:
		return "preattestation"
	case 0x13:
		return "attestation"
	}
	return fmt.Sprintf("0x%02x", b)
}

func kindByte(s string) (byte, error) {
	switch s {
	case "block", "0x11":
		return 0x11, nil
	case "preattestation", "0x12":
		return 0x12, nil
	case "attestation", "0x13":
		return 0x13, nil
	}
	return 0, fmt.Errorf("unknown kind %q (want block, preattestation or attestation)", s)
}

func cmdWatermark(args []string, stdout, stderr io.Writer) error {
	return subcommands("watermark", args, stdout, stderr, map[string]func([]string) error{
		"show": func(a []string) error {
			fs := newFlags("watermark show", watermarkHelp, stdout)
			cfgPath := fs.String("config", "", "configuration file")
			if _, err := parse(fs, a, stderr); err != nil {
				return err
			}
			st, err := openStore(*cfgPath)
			if err != nil {
				return err
			}
			defer st.Close()
			marks, err := st.Marks(context.Background())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KEY\tCHAIN\tKIND\tLEVEL\tROUND\tDIGEST")
			for _, e := range marks {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", e.ID.Key, e.ID.Chain, kindName(e.ID.Kind), e.Mark.Level, e.Mark.Round, shortHex(e.Mark.Digest))
			}
			if len(marks) == 0 {
				fmt.Fprintln(tw, "(no marks)")
			}
			return tw.Flush()
		},
		"set": func(a []string) error {
			fs := newFlags("watermark set", watermarkHelp, stdout)
			cfgPath := fs.String("config", "", "configuration file")
			key := fs.String("key", "", "key address (tz1/tz2/tz3)")
			chain := fs.String("chain", "", "chain id (Net…)")
			kind := fs.String("kind", "", "block, preattestation or attestation")
			level := fs.Int64("level", -1, "level")
			round := fs.Int64("round", 0, "round")
			force := fs.Bool("force", false, "required: confirm overwriting the mark")
			if _, err := parse(fs, a, stderr); err != nil {
				return err
			}
			if !*force {
				return errors.New("watermark set overwrites a safety mark; repeat with --force if you mean it")
			}
			kb, err := kindByte(*kind)
			if err != nil {
				return err
			}
			if *key == "" || *chain == "" || *level < 0 {
				return errors.New("--key, --chain, --kind and --level are required")
			}
			st, err := openStore(*cfgPath)
			if err != nil {
				return err
			}
			defer st.Close()
			id := watermark.ID{Key: *key, Chain: *chain, Kind: kb}
			if err := st.Set(context.Background(), id, watermark.Mark{Level: *level, Round: *round}); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "set %s to level %d round %d\n", id, *level, *round)
			return nil
		},
		"export": func(a []string) error {
			fs := newFlags("watermark export", watermarkHelp, stdout)
			cfgPath := fs.String("config", "", "configuration file")
			out := fs.String("out", "-", "output file (- for stdout)")
			if _, err := parse(fs, a, stderr); err != nil {
				return err
			}
			st, err := openStore(*cfgPath)
			if err != nil {
				return err
			}
			defer st.Close()
			marks, err := st.Marks(context.Background())
			if err != nil {
				return err
			}
			if marks == nil {
				marks = []watermark.Entry{}
			}
			data, err := json.MarshalIndent(map[string]any{"version": 1, "marks": marks}, "", "  ")
			if err != nil {
				return err
			}
			data = append(data, '\n')
			if *out == "-" {
				_, err = stdout.Write(data)
				return err
			}
			return os.WriteFile(*out, data, 0o600)
		},
		"import": func(a []string) error {
			fs := newFlags("watermark import", watermarkHelp, stdout)
			cfgPath := fs.String("config", "", "configuration file")
			in := fs.String("in", "", "JSON file written by watermark export")
			force := fs.Bool("force", false, "overwrite marks even when that lowers them")
			if _, err := parse(fs, a, stderr); err != nil {
				return err
			}
			data, err := os.ReadFile(*in)
			if err != nil {
				return err
			}
			var doc struct {
				Version int               `json:"version"`
				Marks   []watermark.Entry `json:"marks"`
			}
			if err := json.Unmarshal(data, &doc); err != nil {
				return fmt.Errorf("%s: %w", *in, err)
			}
			if doc.Version != 1 {
				return fmt.Errorf("%s: unsupported export version %d", *in, doc.Version)
			}
			st, err := openStore(*cfgPath)
			if err != nil {
				return err
			}
			defer st.Close()
			ctx := context.Background()
			existing, err := st.Marks(ctx)
			if err != nil {
				return err
			}
			have := map[watermark.ID]watermark.Mark{}
			for _, e := range existing {
				have[e.ID] = e.Mark
			}
			n, skipped := 0, 0
			for _, e := range doc.Marks {
				if old, ok := have[e.ID]; ok && !*force && !watermark.Above(e.Mark.Level, e.Mark.Round, old.Level, old.Round) {
					skipped++
					continue
				}
				if err := st.Set(ctx, e.ID, e.Mark); err != nil {
					return fmt.Errorf("%s: %w", e.ID, err)
				}
				n++
			}
			fmt.Fprintf(stdout, "imported %d marks (%d already at or above the imported level kept)\n", n, skipped)
			return nil
		},
	}, watermarkHelp)
}

func shortHex(b []byte) string {
	if len(b) == 0 {
		return "-"
	}
	s := hex.EncodeToString(b)
	if len(s) > 16 {
		s = s[:16] + "…"
	}
	return s
}

const auditHelp = `Usage: keyward audit verify FILE

Checks the hash chain of an audit log: every line carries the SHA-256 of the
line before it. Reports the first broken or missing link.
`

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
