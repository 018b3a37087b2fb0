package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/keyward/keyward/watermark"
	wmfile "github.com/keyward/keyward/watermark/file"
)

const watermarkHelp = `Usage: keyward watermark <subcommand> --config FILE

Subcommands:
  show --config FILE                       print every mark (safe beside a running keyward)
  export --config FILE [--out FILE]        write every mark as JSON (safe beside a running keyward)
  set --config FILE --key PKH --chain NET --kind block|preattestation|attestation --level N [--round R] --force
                                           overwrite one mark (keyward stopped; never lower one while a baker runs)
  import --config FILE --in FILE [--force] load marks from JSON (keyward stopped); a mark is only raised unless --force

Run "keyward watermark <subcommand> --help" for its flags.
`

const watermarkShowHelp = `Usage: keyward watermark show --config FILE

Prints every mark of the configured store: key, chain, kind, level, round and
the start of the payload digest. It reads the store without taking its lock,
so it runs beside the keyward serving it (a mark being written at that moment
may show as the one before it).
`

const watermarkExportHelp = `Usage: keyward watermark export --config FILE [--out FILE]

Writes every mark as JSON (version 2: kinds by name, digests and signatures
in hex, as watermark show prints them), to stdout or to FILE (mode 0600).
Like show, it runs beside the keyward serving the store.
`

const watermarkSetHelp = `Usage: keyward watermark set --config FILE --key PKH --chain NET --kind block|preattestation|attestation --level N [--round R] --force

Overwrites one mark. Writes go through the store's own serialization: with
the file store keyward must be stopped (the directory is locked while it
runs). Lowering a mark while a baker runs can make it double-sign.
`

const watermarkImportHelp = `Usage: keyward watermark import --config FILE --in FILE [--force]

Loads marks written by watermark export (version 2, or version 1 of older
keywards); a mark is only raised unless --force. With the file store keyward
must be stopped.
`

// openStore opens the configured store: read-only (no lock, beside a
// running keyward) for show and export, for writing for set and import.
func openStore(cfgPath string, write bool) (watermark.Store, error) {
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		return nil, err
	}
	if !write {
		return watermark.OpenReadOnly(context.Background(), cfg.Watermark)
	}
	st, err := watermark.Open(context.Background(), cfg.Watermark)
	if errors.Is(err, wmfile.ErrLocked) {
		return nil, fmt.Errorf("%w: changing marks goes through the store's own lock; stop keyward first (watermark show and export work while it runs)", err)
	}
	return st, err
}

// exportDoc is the JSON of watermark export, version 2.
type exportDoc struct {
	Version int          `json:"version"`
	Marks   []exportMark `json:"marks"`
}

type exportMark struct {
	Key       string `json:"key"`
	Chain     string `json:"chain"`
	Kind      string `json:"kind"` // block, preattestation, attestation
	Level     int64  `json:"level"`
	Round     int64  `json:"round"`
	Digest    string `json:"digest"`              // hex
	Signature string `json:"signature,omitempty"` // hex
}

// readExport decodes an export of version 2, or 1 (kind as a number,
// digest and signature in base64).
func readExport(data []byte) ([]watermark.Entry, error) {
	var head struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, err
	}
	switch head.Version {
	case 1:
		var doc struct {
			Marks []watermark.Entry `json:"marks"`
		}
		if err := json.Unmarshal(data, &doc); err != nil {
			return nil, err
		}
		return doc.Marks, nil
	case 2:
		var doc exportDoc
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&doc); err != nil {
			return nil, err
		}
		out := make([]watermark.Entry, 0, len(doc.Marks))
		for i, m := range doc.Marks {
			kb, err := kindByte(m.Kind)
			if err != nil {
				return nil, fmt.Errorf("marks[%d]: %w", i, err)
			}
			e := watermark.Entry{ID: watermark.ID{Key: m.Key, Chain: m.Chain, Kind: kb}, Mark: watermark.Mark{Level: m.Level, Round: m.Round}}
			if e.Mark.Digest, err = hex.DecodeString(m.Digest); err != nil {
				return nil, fmt.Errorf("marks[%d].digest: not hex", i)
			}
			if m.Signature != "" {
				if e.Mark.Signature, err = hex.DecodeString(m.Signature); err != nil {
					return nil, fmt.Errorf("marks[%d].signature: not hex", i)
				}
			}
			out = append(out, e)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported export version %d (want 1 or 2)", head.Version)
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

// cmdWatermark runs "keyward watermark show|set|export|import" on the
// configured store.
func cmdWatermark(args []string, stdout, stderr io.Writer) error {
	return subcommands("watermark", args, stdout, stderr, map[string]func([]string) error{
		"show": func(a []string) error {
			fs := newFlags("watermark show", watermarkShowHelp, stdout)
			cfgPath := fs.String("config", "", "configuration file")
			if _, err := parse(fs, a, stderr); err != nil {
				return err
			}
			st, err := openStore(*cfgPath, false)
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
			fs := newFlags("watermark set", watermarkSetHelp, stdout)
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
			st, err := openStore(*cfgPath, true)
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
			fs := newFlags("watermark export", watermarkExportHelp, stdout)
			cfgPath := fs.String("config", "", "configuration file")
			out := fs.String("out", "-", "output file (- for stdout)")
			if _, err := parse(fs, a, stderr); err != nil {
				return err
			}
			st, err := openStore(*cfgPath, false)
			if err != nil {
				return err
			}
			defer st.Close()
			marks, err := st.Marks(context.Background())
			if err != nil {
				return err
			}
			doc := exportDoc{Version: 2, Marks: []exportMark{}}
			for _, e := range marks {
				doc.Marks = append(doc.Marks, exportMark{Key: e.ID.Key, Chain: e.ID.Chain, Kind: kindName(e.ID.Kind), Level: e.Mark.Level, Round: e.Mark.Round,
					Digest: hex.EncodeToString(e.Mark.Digest), Signature: hex.EncodeToString(e.Mark.Signature)})
			}
			data, err := json.MarshalIndent(doc, "", "  ")
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
			fs := newFlags("watermark import", watermarkImportHelp, stdout)
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
			imported, err := readExport(data)
			if err != nil {
				return fmt.Errorf("%s: %w", *in, err)
			}
			st, err := openStore(*cfgPath, true)
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
			for _, e := range imported {
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
