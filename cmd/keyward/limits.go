package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keyward/keyward/config"
	"github.com/keyward/keyward/limits"
	limitsfile "github.com/keyward/keyward/limits/file"
	"github.com/keyward/keyward/policy"
)

const limitsHelp = `Usage: keyward limits show --config FILE

Prints, for every key with rolling limits (keys.<name>.tezos.limits and
keys.<name>.ethereum.limits), each cap: its window, what was spent in the
window, what remains, when the oldest spending still counted frees up and
when the window is clear. It reads the budget store beside the watermarks
without locking it or opening any key, so it works while keyward runs.
Amounts are in mutez (Tezos), wei (Ethereum) or the token's raw units.
`

func cmdLimits(args []string, stdout, stderr io.Writer) error {
	return subcommands("limits", args, stdout, stderr, map[string]func([]string) error{
		"show": func(a []string) error {
			fs := newFlags("limits show", limitsHelp, stdout)
			cfgPath := fs.String("config", "", "configuration file")
			if _, err := parse(fs, a, stderr); err != nil {
				return err
			}
			cfg, err := loadConfig(*cfgPath)
			if err != nil {
				return err
			}
			return showLimits(cfg, stdout, time.Now())
		},
	}, limitsHelp)
}

// openBudgetsReadOnly opens the budget store of cfg for reading: the file
// store without its lock; the PostgreSQL store as usual (reads only).
func openBudgetsReadOnly(ctx context.Context, cfg *config.Config) (limits.Store, error) {
	if strings.HasPrefix(cfg.Watermark, "file:") {
		return limitsfile.OpenURLReadOnly(cfg.Watermark)
	}
	return limits.Open(ctx, cfg.Watermark)
}

// keyLimits returns the compiled limits of one key, both chains.
func keyLimits(kc config.KeyConfig) ([]limits.Limit, error) {
	var out []limits.Limit
	if kc.Tezos != nil {
		p, err := policy.CompileTezos(kc.Tezos)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Limits()...)
	}
	if kc.Ethereum != nil {
		p, err := policy.CompileEthereum(kc.Ethereum)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Limits()...)
	}
	return out, nil
}

func showLimits(cfg *config.Config, stdout io.Writer, now time.Time) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := openBudgetsReadOnly(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tLIMIT\tWINDOW\tSPENT\tREMAINING\tFREES UP\tCLEAR AT")
	n := 0
	for _, name := range cfg.KeyNames() {
		ls, err := keyLimits(cfg.Keys[name])
		if err != nil {
			return fmt.Errorf("keys.%s: %w", name, err)
		}
		if len(ls) == 0 {
			continue
		}
		us, err := st.Usage(ctx, name, ls, now)
		if err != nil {
			return fmt.Errorf("key %s: %w", name, err)
		}
		for _, u := range us {
			n++
			unit := u.Unit
			if unit != "" {
				unit = " " + unit
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s%s\t%s%s\t%s\t%s\n", name, u.Rule, u.Window, u.Spent, unit, u.Remaining, unit, when(u.FreesAt), when(u.ResetsAt))
		}
	}
	if n == 0 {
		fmt.Fprintln(stdout, "no key has limits (keys.<name>.tezos.limits, keys.<name>.ethereum.limits)")
		return nil
	}
	return tw.Flush()
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
