package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/keyward/keyward/signer"
	"github.com/keyward/keyward/signer/awskms"
	"github.com/keyward/keyward/signer/pkcs11"
)

func init() {
	keySubcommands["create-kms"] = cmdKeysCreateKMS
	keySubcommands["create-pkcs11"] = cmdKeysCreatePKCS11
}

// errNoBLSIn is the one-line refusal of a BLS12-381 key in a backend that
// cannot hold one, pointing at the local keystore (sealed with KMS if wanted).
func errNoBLSIn(backend string) error {
	return fmt.Errorf("%s cannot hold BLS12-381 (tz4) keys: keep them in a local key file, sealed by KMS if you like (keyward keys create-kms --purpose seal --alias alias/NAME, then keyward keys generate --type bls --out FILE --seal-with awskms:///alias/NAME)", backend)
}

func cmdKeysCreateKMS(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keys create-kms", `Usage: keyward keys create-kms --type secp256k1|p256 --alias alias/NAME [--region R] [--endpoint URL] [--description D]
       keyward keys create-kms --purpose seal --alias alias/NAME [--region R] [--endpoint URL]

Creates an asymmetric SIGN_VERIFY key in AWS KMS (ECC_SECG_P256K1 for tz2 and
Ethereum, ECC_NIST_P256 for tz3), tags it as keyward's, gives it the alias and
prints the key ref and addresses. With --purpose seal it creates instead the
symmetric ENCRYPT_DECRYPT key that local key files are sealed with (keys
generate|import --seal-with REF; the only way to keep tz4 keys under KMS) and
prints its ref. The alias is looked up first: if it already names a key,
nothing is created. Credentials and region come from the standard AWS
configuration chain unless --region is given.`, stdout)
	purpose := fs.String("purpose", "sign", "sign (a signing key) or seal (a key-file sealing key)")
	typ := fs.String("type", "secp256k1", "secp256k1 (tz2, Ethereum) or p256 (tz3)")
	alias := fs.String("alias", "", "alias for the key, alias/NAME")
	region := fs.String("region", "", "AWS region (default: AWS configuration chain)")
	endpoint := fs.String("endpoint", "", "KMS endpoint override (URL, or HOST:PORT; http for loopback)")
	desc := fs.String("description", "", "key description")
	if _, err := parse(fs, args, stderr); err != nil {
		return err
	}
	if *purpose != "sign" && *purpose != "seal" {
		return fmt.Errorf("--purpose %q: want sign or seal", *purpose)
	}
	if *alias == "" {
		return errors.New("--alias alias/NAME is required")
	}
	if *purpose == "seal" {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		ref, _, err := awskms.CreateKey(ctx, awskms.CreateOptions{Seal: true, Alias: *alias, Region: *region, Endpoint: *endpoint, Description: *desc})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "ref:        %s\npurpose:    seal (SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT)\nuse:        keyward keys generate --type bls --out FILE --seal-with '%s'\n", ref, ref)
		return nil
	}
	c, err := signer.ParseCurve(*typ)
	if err != nil {
		return err
	}
	if c == signer.BLS12381 {
		return errNoBLSIn("AWS KMS")
	}
	if c == signer.Ed25519 {
		return errors.New("AWS KMS has no Ed25519 signing keys usable for Tezos: use --type secp256k1 or p256")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ref, k, err := awskms.CreateKey(ctx, awskms.CreateOptions{Curve: c, Alias: *alias, Region: *region, Endpoint: *endpoint, Description: *desc})
	if err != nil {
		return err
	}
	return printKey(stdout, ref, k.PublicKey())
}

func cmdKeysCreatePKCS11(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keys create-pkcs11", `Usage: keyward keys create-pkcs11 'pkcs11:token=T;object=NAME?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=FILE' --type secp256k1|p256|ed25519

Generates a key pair inside the PKCS#11 token (private key sensitive and not
extractable) and prints the ref and addresses.`, stdout)
	typ := fs.String("type", "secp256k1", "secp256k1 (tz2, Ethereum), p256 (tz3) or ed25519 (tz1)")
	pos, err := parse(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return errUsage
	}
	c, err := signer.ParseCurve(*typ)
	if err != nil {
		return err
	}
	if c == signer.BLS12381 {
		return errNoBLSIn("PKCS#11 tokens")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	k, err := pkcs11.CreateKey(ctx, pos[0], c)
	if err != nil {
		return err
	}
	if cl, ok := k.(signer.Closer); ok {
		defer cl.Close()
	}
	u, _ := signer.ParseURI(pos[0])
	return printKey(stdout, u.Redacted(), k.PublicKey())
}
