package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keyward/keyward/chains/ethereum"
	"github.com/keyward/keyward/chains/tezos"
	"github.com/keyward/keyward/chains/tezos/octezkey"
	"github.com/keyward/keyward/signer"
	"github.com/keyward/keyward/signer/local"
)

const keysHelp = `Usage: keyward keys <subcommand> [flags]

Subcommands:
  generate --type secp256k1|p256|ed25519|bls --out FILE  create an encrypted local key file
  import --from SECRET_FILE --out FILE                import an Octez secret key (tz1-tz4) or 0x-hex secp256k1 secret
  show REF                                            print a key's addresses and public key
  list --config FILE                                  table of the configured keys
  create-kms --type secp256k1|p256 --alias alias/NAME create a key in AWS KMS
  create-pkcs11 URI --type secp256k1|p256|ed25519     generate a key pair inside a PKCS#11 token

Local key files are encrypted with a passphrase (scrypt + XChaCha20-Poly1305)
taken from --passphrase-file, else $KEYWARD_PASSPHRASE; or sealed with an AWS
KMS key (--seal-with awskms:///alias/NAME). BLS12-381 (tz4) keys live only in
local key files: AWS KMS and PKCS#11 tokens cannot hold them.
`

var keySubcommands = map[string]func(args []string, stdout, stderr io.Writer) error{
	"generate": cmdKeysGenerate,
	"import":   cmdKeysImport,
	"show":     cmdKeysShow,
	"list":     cmdKeysList,
}

func cmdKeys(args []string, stdout, stderr io.Writer) error {
	subs := map[string]func([]string) error{}
	for n, f := range keySubcommands {
		subs[n] = func(a []string) error { return f(a, stdout, stderr) }
	}
	return subcommands("keys", args, stdout, stderr, subs, keysHelp)
}

type writeFlags struct {
	out, passFile, sealWith *string
	plaintext               *bool
}

func addWriteFlags(fsys interface {
	String(string, string, string) *string
	Bool(string, bool, string) *bool
}) writeFlags {
	return writeFlags{
		out:       fsys.String("out", "", "key file to create (mode 0600; never overwritten)"),
		passFile:  fsys.String("passphrase-file", "", "file holding the passphrase (else $KEYWARD_PASSPHRASE)"),
		sealWith:  fsys.String("seal-with", "", "seal with a KMS key instead of a passphrase, e.g. awskms:///alias/keyward-seal"),
		plaintext: fsys.Bool("insecure-plaintext", false, "store the secret unencrypted (development only)"),
	}
}

func (w writeFlags) options() (local.WriteOptions, error) {
	if *w.out == "" {
		return local.WriteOptions{}, errors.New("--out FILE is required")
	}
	switch {
	case *w.plaintext:
		return local.WriteOptions{Plaintext: true}, nil
	case *w.sealWith != "":
		return local.WriteOptions{SealWith: *w.sealWith}, nil
	case *w.passFile != "":
		p, err := local.ReadPassphraseFile(*w.passFile)
		if err != nil {
			return local.WriteOptions{}, err
		}
		return local.WriteOptions{Passphrase: p}, nil
	}
	if p := os.Getenv(local.PassphraseEnv); p != "" {
		return local.WriteOptions{Passphrase: []byte(p)}, nil
	}
	return local.WriteOptions{}, fmt.Errorf("no passphrase: give --passphrase-file FILE, set $%s, or use --seal-with", local.PassphraseEnv)
}

func cmdKeysGenerate(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keys generate", "Usage: keyward keys generate --type secp256k1|p256|ed25519|bls --out FILE [--passphrase-file F | --seal-with REF]\n\nCreates a new key in an encrypted local key file and prints its addresses.", stdout)
	typ := fs.String("type", "secp256k1", "key type: secp256k1 (tz2, Ethereum), p256 (tz3), ed25519 (tz1) or bls (tz4, BLS12-381)")
	wf := addWriteFlags(fs)
	if _, err := parse(fs, args, stderr); err != nil {
		return err
	}
	c, err := signer.ParseCurve(*typ)
	if err != nil {
		return err
	}
	opts, err := wf.options()
	if err != nil {
		return err
	}
	k, err := local.Generate(c)
	if err != nil {
		return err
	}
	ctx := context.Background()
	if err := local.WriteKeyFile(ctx, *wf.out, k, opts); err != nil {
		return err
	}
	return printKey(stdout, "file://"+absPath(*wf.out), k.PublicKey())
}

func cmdKeysImport(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keys import", `Usage: keyward keys import --from SECRET_FILE --out FILE [--passphrase-file F | --seal-with REF]

Imports a secret key from SECRET_FILE: Octez forms (unencrypted:spsk…, spsk…,
p2sk…, BLsk…, edsk… in 32- and 64-byte forms, encrypted:…esk… / BLesk… with
its passphrase in --octez-passphrase-file or $KEYWARD_OCTEZ_PASSPHRASE) or a
0x-hex secp256k1 secret. SECRET_FILE must not be readable by group or others.`, stdout)
	from := fs.String("from", "", "file holding the secret key text")
	octezPass := fs.String("octez-passphrase-file", "", "passphrase of an Octez encrypted: key (else $KEYWARD_OCTEZ_PASSPHRASE)")
	wf := addWriteFlags(fs)
	if _, err := parse(fs, args, stderr); err != nil {
		return err
	}
	if *from == "" {
		return errors.New("--from SECRET_FILE is required")
	}
	text, err := local.ReadSecretFile(*from, "secret key file") // the permission check and newline trim of passphrase files
	if err != nil {
		return err
	}
	defer clear(text)
	opts, err := wf.options()
	if err != nil {
		return err
	}
	k, err := parseSecretText(string(text), func() ([]byte, error) {
		if *octezPass != "" {
			return local.ReadPassphraseFile(*octezPass)
		}
		if p := os.Getenv("KEYWARD_OCTEZ_PASSPHRASE"); p != "" {
			return []byte(p), nil
		}
		return nil, errors.New("the key is encrypted: give --octez-passphrase-file or $KEYWARD_OCTEZ_PASSPHRASE")
	})
	if err != nil {
		return err
	}
	defer k.Zero()
	if err := local.WriteKeyFile(context.Background(), *wf.out, k, opts); err != nil {
		return err
	}
	return printKey(stdout, "file://"+absPath(*wf.out), k.PublicKey())
}

// parseSecretText parses the text of keys import: 64 hex digits
// (secp256k1), else an Octez secret key.
func parseSecretText(text string, passphrase func() ([]byte, error)) (*local.PrivateKey, error) {
	k, err := local.ParseHexSecret(text)
	if !errors.Is(err, local.ErrNotHexSecret) {
		return k, err
	}
	c, secret, err := octezkey.Parse(text, passphrase)
	if err != nil {
		return nil, err
	}
	defer clear(secret)
	return local.NewPrivateKey(c, secret)
}

func cmdKeysShow(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keys show", "Usage: keyward keys show REF\n\nOpens the key named by REF (file://…, awskms://…, pkcs11:…) and prints its addresses and public key.", stdout)
	pos, err := parse(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return errUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	k, err := signer.Open(ctx, pos[0])
	if err != nil {
		return err
	}
	if c, ok := k.(signer.Closer); ok {
		defer c.Close()
	}
	u, _ := signer.ParseURI(pos[0])
	return printKey(stdout, u.Redacted(), k.PublicKey())
}

func printKey(w io.Writer, ref string, pub signer.PublicKey) error {
	pkh, err := tezos.PublicKeyHash(pub)
	if err != nil {
		return err
	}
	pk, err := tezos.EncodePublicKey(pub)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "ref:        %s\ncurve:      %s\ntz address: %s\npublic key: %s\n", ref, pub.Curve, pkh, pk)
	if pub.Curve == signer.Secp256k1 {
		addr, err := ethereum.Address(pub)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "0x address: %s\n", addr.Hex())
	}
	return nil
}

func cmdKeysList(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keys list", "Usage: keyward keys list --config FILE\n\nOpens every configured key and prints a table: name, backend, curve, tz address, 0x address (secp256k1), reachable.", stdout)
	cfgPath := fs.String("config", "", "configuration file")
	if _, err := parse(fs, args, stderr); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tBACKEND\tCURVE\tTZ ADDRESS\t0x ADDRESS\tREACHABLE")
	for _, name := range cfg.KeyNames() {
		kc := cfg.Keys[name]
		backend := "?"
		if u, err := signer.ParseURI(kc.Ref); err == nil {
			backend = u.Scheme
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		k, err := signer.Open(ctx, kc.Ref)
		if err != nil {
			cancel()
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\tno: %s\n", name, backend, oneLine(err))
			continue
		}
		pub := k.PublicKey()
		pkh, _ := tezos.PublicKeyHash(pub)
		eth := "-"
		if pub.Curve == signer.Secp256k1 {
			if addr, err := ethereum.Address(pub); err == nil {
				eth = addr.Hex()
			}
		}
		reach := "yes"
		if rc, ok := k.(signer.ReadinessChecker); ok {
			if err := rc.Ready(ctx); err != nil {
				reach = "no: " + oneLine(err)
			}
		}
		if c, ok := k.(signer.Closer); ok {
			c.Close()
		}
		cancel()
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", name, backend, pub.Curve, pkh, eth, reach)
	}
	return tw.Flush()
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", " ") }

func absPath(p string) string {
	if a, err := filepathAbs(p); err == nil {
		return a
	}
	return p
}
