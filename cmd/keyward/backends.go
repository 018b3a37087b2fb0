package main

// The key backends and watermark stores keyward is built with. Each package
// registers itself (signer.Register, watermark.Register) when imported; this
// list is the one place that decides which are compiled in.
import (
	_ "github.com/keyward/keyward/limits/file"        // file: budgets beside the file watermarks
	_ "github.com/keyward/keyward/limits/postgres"    // postgres: budgets shared by several instances
	_ "github.com/keyward/keyward/signer/awskms"      // awskms: AWS KMS keys
	_ "github.com/keyward/keyward/signer/local"       // file: encrypted local keystore
	_ "github.com/keyward/keyward/signer/pkcs11"      // pkcs11: HSM keys (a stub without cgo)
	_ "github.com/keyward/keyward/watermark/file"     // file: watermark directory (default)
	_ "github.com/keyward/keyward/watermark/postgres" // postgres: watermarks shared by several instances
)
