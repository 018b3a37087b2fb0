package awskms

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keyward/keyward/internal/testutil"
)

func kmsKeyCount(t *testing.T, e *emulator) int {
	t.Helper()
	out, err := e.client().ListKeys(testCtx(t), &kms.ListKeysInput{})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Keys)
}

// Finding 6 of issue 14: --seal-with needs a symmetric KMS key keyward
// could not create, and create-kms with an alias already taken first
// created a key and left it orphaned (billed on real AWS). create-kms
// --purpose seal makes the seal key; the alias is checked before anything
// is created.
func TestCLI_CreateKMSSealKeyAndAliasCheckedFirst(t *testing.T) {
	e := startEmulator(t)
	kmsArgs := func(args ...string) []string {
		return append(append([]string{"keys", "create-kms"}, args...), "--endpoint", e.addr(), "--region", emulatorRegion)
	}
	out, err := testutil.Run(t, nil, kmsArgs("--purpose", "seal", "--alias", "alias/keyward-seal")...)
	m := cliRefRe.FindStringSubmatch(out)
	if err != nil || m == nil || !strings.Contains(out, "alias/keyward-seal") || !strings.Contains(out, "--seal-with") {
		t.Fatalf("create-kms --purpose seal: %v\n%s", err, out)
	}
	seal := m[1]
	keyFile := filepath.Join(t.TempDir(), "consensus.json")
	if out, err := testutil.Run(t, nil, "keys", "generate", "--type", "bls", "--out", keyFile, "--seal-with", seal); err != nil || !strings.Contains(out, "tz4") {
		t.Fatalf("generate --seal-with the new key: %v\n%s", err, out)
	}
	if data, _ := os.ReadFile(keyFile); !strings.Contains(string(data), "alias/keyward-seal") {
		t.Errorf("the key file does not name its seal key:\n%s", data)
	}
	if out, err := testutil.Run(t, nil, "keys", "show", "file://"+keyFile); err != nil || !strings.Contains(out, "tz4") {
		t.Fatalf("show the sealed key: %v\n%s", err, out)
	}
	before := kmsKeyCount(t, e)
	for _, args := range [][]string{
		kmsArgs("--type", "secp256k1", "--alias", "alias/keyward-seal"),
		kmsArgs("--purpose", "seal", "--alias", "keyward-seal"),
	} {
		out, err := testutil.Run(t, nil, args...)
		if err == nil || !strings.Contains(out, "alias already exists") || !strings.Contains(out, "nothing was created") {
			t.Errorf("%v with a taken alias: %v\n%s", args, err, out)
		}
	}
	if after := kmsKeyCount(t, e); after != before {
		t.Fatalf("a taken alias still created %d keys", after-before)
	}
	if out, err := testutil.Run(t, nil, kmsArgs("--purpose", "seal", "--type", "p256", "--alias", "alias/x")...); err == nil || !strings.Contains(out, "--type") {
		t.Errorf("--type with --purpose seal: %v\n%s", err, out)
	}
}
