package ethereum_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/consensus/clique"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/keyward/keyward/chains/ethereum"
	"github.com/keyward/keyward/signer"
	"github.com/keyward/keyward/signer/local"
)

// key parses a hex secp256k1 secret into a local key and its uncompressed point.
func key(t testing.TB, secret string) (*local.PrivateKey, []byte, common.Address) {
	t.Helper()
	k, err := local.ParseHexSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ethereum.UncompressedKey(k.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	addr, err := ethereum.Address(k.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	return k, pub, addr
}

// EIP-155's example: nonce 9, 20 gwei, 21000 gas, 1 ether to 0x3535…, chain 1,
// private key 0x4646…46.
func TestSign_EIP155ExampleTransaction(t *testing.T) {
	k, pub, _ := key(t, "4646464646464646464646464646464646464646464646464646464646464646")
	args, err := ethereum.ParseTxArgs("params[0]", json.RawMessage(`{
		"nonce": "0x9", "gasPrice": "0x4a817c800", "gas": "0x5208",
		"to": "0x3535353535353535353535353535353535353535",
		"value": "0xde0b6b3a7640000", "data": "0x", "chainId": "0x1"}`))
	if err != nil {
		t.Fatal(err)
	}
	tx, chainID, err := args.Transaction(nil)
	if err != nil {
		t.Fatal(err)
	}
	digest := ethereum.TxDigest(tx, chainID)
	if got, want := hex.EncodeToString(digest), "daf5a779ae972f972197303d7b574746c7ef83eadac0f2791ad23db92e4c8e53"; got != want {
		t.Fatalf("signing hash %s, want %s", got, want)
	}
	sig, err := ethereum.Sign(context.Background(), k, pub, digest)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := ethereum.SignTx(tx, chainID, sig)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := signed.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	const want = "f86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a76400008025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83"
	if got := hex.EncodeToString(raw); got != want {
		t.Fatalf("raw transaction\n got %s\nwant %s", got, want)
	}
}

const mailTypedData = `{
  "types": {
    "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                     {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
    "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
    "Mail": [{"name": "from", "type": "Person"}, {"name": "to", "type": "Person"}, {"name": "contents", "type": "string"}]
  },
  "primaryType": "Mail",
  "domain": {"name": "Ether Mail", "version": "1", "chainId": 1, "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},
  "message": {
    "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
    "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
    "contents": "Hello, Bob!"
  }
}`

// EIP-712's Mail example, signed by keccak256("cow"), as an object and as a JSON string.
func TestTypedDataHash_EIP712MailExample(t *testing.T) {
	k, pub, addr := key(t, hex.EncodeToString(crypto.Keccak256([]byte("cow"))))
	if addr != common.HexToAddress("0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826") {
		t.Fatalf("address %s", addr.Hex())
	}
	asString, _ := json.Marshal(mailTypedData)
	for name, raw := range map[string]json.RawMessage{"object": json.RawMessage(mailTypedData), "string": asString} {
		t.Run(name, func(t *testing.T) {
			td, err := ethereum.ParseTypedData("params[1]", raw)
			if err != nil {
				t.Fatal(err)
			}
			digest, err := ethereum.TypedDataHash("params[1]", td)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := hex.EncodeToString(digest), "be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"; got != want {
				t.Fatalf("digest %s, want %s", got, want)
			}
			sig, err := ethereum.Sign(context.Background(), k, pub, digest)
			if err != nil {
				t.Fatal(err)
			}
			sig = ethereum.EthV(sig)
			want := "4355c47d63924e8a72e509b65029052eb6c299d53a04e167c5775fd466751c9d" +
				"07299936d304c153f6443dfa05f40ff007d72911b6f72307f996231605b91562" + "1c"
			if got := hex.EncodeToString(sig); got != want {
				t.Fatalf("signature\n got %s\nwant %s", got, want)
			}
		})
	}
}

// EIP-191 version 0x45: the "Hello World" hash every library documents, and
// a signature that recovers to the key with v 27/28.
func TestPersonalHash_EIP191(t *testing.T) {
	if got, want := hex.EncodeToString(ethereum.PersonalHash([]byte("Hello World"))), "a1de988600a42c4b4ab089b619297c17d53cffae5d5120d82d8a92d0bb3b78f2"; got != want {
		t.Fatalf("hash %s, want %s", got, want)
	}
	k, pub, addr := key(t, "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
	for _, msg := range []string{"", "Hello World", "\x00\x01binary\xff"} {
		digest := ethereum.PersonalHash([]byte(msg))
		sig, err := ethereum.Sign(context.Background(), k, pub, digest)
		if err != nil {
			t.Fatal(err)
		}
		eth := ethereum.EthV(sig)
		if eth[64] != 27 && eth[64] != 28 {
			t.Fatalf("v = %d", eth[64])
		}
		got, err := crypto.SigToPub(digest, sig)
		if err != nil || crypto.PubkeyToAddress(*got) != addr {
			t.Fatalf("message %q does not recover to %s", msg, addr.Hex())
		}
	}
}

func TestAuthorization_AuthorityIsTheKey(t *testing.T) {
	k, pub, addr := key(t, "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
	a, err := ethereum.ParseAuthorization("params[1]", json.RawMessage(`{"chainId": "0x539", "address": "0x000000000000000000000000000000000000dEaD", "nonce": "0x7"}`))
	if err != nil {
		t.Fatal(err)
	}
	auth := a.Unsigned()
	sig, err := ethereum.Sign(context.Background(), k, pub, ethereum.AuthorizationHash(auth))
	if err != nil {
		t.Fatal(err)
	}
	signed := ethereum.WithSignature(auth, sig)
	got, err := signed.Authority()
	if err != nil {
		t.Fatal(err)
	}
	if got != addr {
		t.Fatalf("authority %s, want %s", got.Hex(), addr.Hex())
	}
}

func TestRecoveryID_FindsBothParitiesAndRefusesOtherKey(t *testing.T) {
	k, pub, _ := key(t, "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a")
	_, otherPub, _ := key(t, "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
	seen := map[byte]bool{}
	for i := 0; i < 64 && len(seen) < 2; i++ {
		digest := crypto.Keccak256([]byte{byte(i)})
		sig, err := ethereum.Sign(context.Background(), k, pub, digest)
		if err != nil {
			t.Fatal(err)
		}
		seen[sig[64]] = true
		if _, err := ethereum.RecoveryID(digest, sig[:64], otherPub); err != ethereum.ErrNoRecoveryID {
			t.Fatalf("recovery against another key: %v, want ErrNoRecoveryID", err)
		}
	}
	if !seen[0] || !seen[1] {
		t.Fatalf("recovery ids seen: %v, want both 0 and 1", seen)
	}
}

// The clique seal hash keyward computes from the RLP clique hands to
// account_signData equals clique.SealHash of the header.
func TestCliqueHeaderHash_MatchesSealHash(t *testing.T) {
	h := &types.Header{
		ParentHash: common.HexToHash("0x01"), Coinbase: common.HexToAddress("0x02"),
		Difficulty: big.NewInt(2), Number: big.NewInt(100), GasLimit: 8_000_000, Time: 1700000000,
		Extra: make([]byte, 32+65), BaseFee: big.NewInt(7),
	}
	data := clique.CliqueRLP(h)
	got, err := ethereum.CliqueHeaderHash("params[2]", data)
	if err != nil {
		t.Fatal(err)
	}
	if want := clique.SealHash(h); common.BytesToHash(got) != want {
		t.Fatalf("hash %x, want %x", got, want)
	}
	if _, err := ethereum.CliqueHeaderHash("params[2]", []byte("not rlp")); err == nil {
		t.Fatal("non-RLP accepted")
	}
}

func TestTxArgs_InfersTypeFromFields(t *testing.T) {
	base := `"from":"0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266","to":"0x000000000000000000000000000000000000dEaD","nonce":"0x0","gas":"0x5208","chainId":"0x1"`
	auth := `{"chainId":"0x1","address":"0x000000000000000000000000000000000000dEaD","nonce":"0x1","yParity":"0x0","r":"0x1","s":"0x1"}`
	tests := []struct {
		name, extra string
		want        uint8
	}{
		{"legacy", `"gasPrice":"0x1"`, types.LegacyTxType},
		{"access list", `"gasPrice":"0x1","accessList":[]`, types.AccessListTxType},
		{"dynamic fee", `"maxFeePerGas":"0x2","maxPriorityFeePerGas":"0x1"`, types.DynamicFeeTxType},
		{"dynamic fee, explicit type", `"type":"0x2","maxFeePerGas":"0x2","maxPriorityFeePerGas":"0x1"`, types.DynamicFeeTxType},
		{"blob", `"maxFeePerGas":"0x2","maxPriorityFeePerGas":"0x1","maxFeePerBlobGas":"0x1","blobVersionedHashes":["0x01` + repeat("00", 31) + `"]`, types.BlobTxType},
		{"set code", `"maxFeePerGas":"0x2","maxPriorityFeePerGas":"0x1","authorizationList":[` + auth + `]`, types.SetCodeTxType},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := ethereum.ParseTxArgs("params[0]", json.RawMessage("{"+base+","+tc.extra+"}"))
			if err != nil {
				t.Fatal(err)
			}
			tx, _, err := a.Transaction(nil)
			if err != nil {
				t.Fatal(err)
			}
			if tx.Type() != tc.want {
				t.Fatalf("type %d, want %d", tx.Type(), tc.want)
			}
		})
	}
}

func repeat(s string, n int) string {
	out := ""
	for i := 0; i < n; i++ {
		out += s
	}
	return out
}

func TestTxArgs_MissingOrMalformedFieldIsNamed(t *testing.T) {
	tests := []struct{ name, args, field string }{
		{"no nonce", `{"gas":"0x5208","gasPrice":"0x1","chainId":"0x1","to":"0x000000000000000000000000000000000000dEaD"}`, "params[0].nonce"},
		{"no gas", `{"nonce":"0x1","gasPrice":"0x1","chainId":"0x1"}`, "params[0].gas"},
		{"no chain id", `{"nonce":"0x1","gas":"0x1","gasPrice":"0x1"}`, "params[0].chainId"},
		{"no gas price", `{"nonce":"0x1","gas":"0x1","chainId":"0x1"}`, "params[0].gasPrice"},
		{"no max fee", `{"nonce":"0x1","gas":"0x1","chainId":"0x1","maxPriorityFeePerGas":"0x1"}`, "params[0].maxFeePerGas"},
		{"blob without to", `{"nonce":"0x1","gas":"0x1","chainId":"0x1","maxFeePerGas":"0x1","maxPriorityFeePerGas":"0x1","maxFeePerBlobGas":"0x1","blobVersionedHashes":[]}`, "params[0].to"},
		{"gas price in 1559", `{"type":"0x2","nonce":"0x1","gas":"0x1","chainId":"0x1","gasPrice":"0x1","maxFeePerGas":"0x1","maxPriorityFeePerGas":"0x1"}`, "params[0].gasPrice"},
		{"unknown type", `{"type":"0x9","nonce":"0x1","gas":"0x1","chainId":"0x1","gasPrice":"0x1"}`, "params[0].type"},
		{"bad hex nonce", `{"nonce":"0xZZ","gas":"0x1","chainId":"0x1","gasPrice":"0x1"}`, "params[0].nonce"},
		{"nonce without 0x", `{"nonce":"12","gas":"0x1","chainId":"0x1","gasPrice":"0x1"}`, "params[0].nonce"},
		{"nonce above 64 bits", `{"nonce":"0x10000000000000000","gas":"0x1","chainId":"0x1","gasPrice":"0x1"}`, "params[0].nonce"},
		{"value above 256 bits", `{"value":"0x1` + repeat("0", 64) + `","nonce":"0x1","gas":"0x1","chainId":"0x1","gasPrice":"0x1"}`, "params[0].value"},
		{"negative value", `{"value":-1,"nonce":"0x1","gas":"0x1","chainId":"0x1","gasPrice":"0x1"}`, "params[0].value"},
		{"value as bool", `{"value":true,"nonce":"0x1","gas":"0x1","chainId":"0x1","gasPrice":"0x1"}`, "params[0].value"},
		{"short to", `{"to":"0x1234","nonce":"0x1","gas":"0x1","chainId":"0x1","gasPrice":"0x1"}`, "params[0].to"},
		{"to as number", `{"to":5,"nonce":"0x1","gas":"0x1","chainId":"0x1","gasPrice":"0x1"}`, "params[0].to"},
		{"bad checksum", `{"to":"0x000000000000000000000000000000000000DEad","nonce":"0x1","gas":"0x1","chainId":"0x1","gasPrice":"0x1"}`, "params[0].to"},
		{"odd-length data", `{"data":"0x123","nonce":"0x1","gas":"0x1","chainId":"0x1","gasPrice":"0x1"}`, "params[0].data"},
		{"data and input differ", `{"data":"0x12","input":"0x34","nonce":"0x1","gas":"0x1","chainId":"0x1","gasPrice":"0x1"}`, "params[0].input"},
		{"bad access list", `{"accessList":{"a":1},"nonce":"0x1","gas":"0x1","chainId":"0x1","gasPrice":"0x1"}`, "params[0].accessList"},
		{"not an object", `["nonce"]`, "params[0]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := ethereum.ParseTxArgs("params[0]", json.RawMessage(tc.args))
			if err == nil {
				_, _, err = a.Transaction(nil)
			}
			var pe *ethereum.ParamError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *ParamError", err)
			}
			if pe.Field != tc.field {
				t.Fatalf("field %q, want %q (%v)", pe.Field, tc.field, err)
			}
		})
	}
}

func TestTxArgs_DefaultChainIDFillsOnlyWhenAbsent(t *testing.T) {
	a, err := ethereum.ParseTxArgs("p", json.RawMessage(`{"nonce":"0x1","gas":"0x5208","gasPrice":"0x1","to":"0x000000000000000000000000000000000000dEaD"}`))
	if err != nil {
		t.Fatal(err)
	}
	tx, cid, err := a.Transaction(big.NewInt(5))
	if err != nil {
		t.Fatal(err)
	}
	if cid.Int64() != 5 || tx.Type() != types.LegacyTxType {
		t.Fatalf("chain %v type %d", cid, tx.Type())
	}
	if v, _ := hexutil.DecodeBig("0x5"); v.Cmp(cid) != 0 {
		t.Fatal("chain id")
	}
}

func FuzzParseTxArgs(f *testing.F) {
	f.Add([]byte(`{"nonce":"0x9","gasPrice":"0x4a817c800","gas":"0x5208","to":"0x3535353535353535353535353535353535353535","value":"0xde0b6b3a7640000","chainId":"0x1"}`))
	f.Add([]byte(`{"type":"0x2","maxFeePerGas":"0x2","maxPriorityFeePerGas":"0x1","nonce":"0x0","gas":"0x1","chainId":"0x1","accessList":[{"address":"0x000000000000000000000000000000000000dEaD","storageKeys":[]}]}`))
	f.Add([]byte(`{"authorizationList":[{"chainId":"0x1","address":"0x000000000000000000000000000000000000dEaD","nonce":"0x1","yParity":"0x0","r":"0x1","s":"0x1"}]}`))
	f.Add([]byte(`{"blobVersionedHashes":["0x0100000000000000000000000000000000000000000000000000000000000000"],"maxFeePerBlobGas":"0x1"}`))
	f.Add([]byte(`{"nonce":"0x0","gasPrice":"0x1","gas":"0x1","value":"0x-5","chainId":"0x-1"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := ethereum.ParseTxArgs("params[0]", data)
		if err != nil {
			var pe *ethereum.ParamError
			if !errors.As(err, &pe) {
				t.Fatalf("decode error is not a *ParamError: %v", err)
			}
			return
		}
		tx, cid, err := a.Transaction(big.NewInt(1))
		if err != nil {
			var pe *ethereum.ParamError
			if !errors.As(err, &pe) {
				t.Fatalf("build error is not a *ParamError: %v", err)
			}
			return
		}
		_ = ethereum.TxDigest(tx, cid)
		if _, err := tx.MarshalBinary(); err != nil {
			t.Fatalf("built transaction does not encode: %v", err)
		}
	})
}

func FuzzParseTypedData(f *testing.F) {
	f.Add([]byte(mailTypedData))
	f.Add([]byte(`"{}"`))
	f.Add([]byte(`{"types":{"EIP712Domain":[]},"primaryType":"EIP712Domain","domain":{},"message":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		td, err := ethereum.ParseTypedData("p", data)
		if err != nil {
			return
		}
		_, _ = ethereum.TypedDataHash("p", td) // must not panic
	})
}

// highS wraps a key and returns the high-S twin of every signature, as some
// KMS and HSM backends do.
type highS struct{ *local.PrivateKey }

func (k highS) Sign(ctx context.Context, digest []byte) ([]byte, error) {
	sig, err := k.PrivateKey.Sign(ctx, digest)
	if err != nil {
		return nil, err
	}
	n := crypto.S256().Params().N
	s := new(big.Int).SetBytes(sig[32:])
	if s.Cmp(new(big.Int).Rsh(n, 1)) <= 0 {
		s.Sub(n, s)
	}
	out := append([]byte(nil), sig[:32]...)
	return append(out, s.FillBytes(make([]byte, 32))...), nil
}

func TestSign_HighSBackendIsNormalizedAndRecovers(t *testing.T) {
	k, pub, addr := key(t, "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
	for i := 0; i < 16; i++ {
		digest := crypto.Keccak256([]byte{byte(i), 1})
		sig, err := ethereum.Sign(context.Background(), highS{k}, pub, digest)
		if err != nil {
			t.Fatal(err)
		}
		if !crypto.ValidateSignatureValues(sig[64], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:64]), true) {
			t.Fatal("signature is not low-S")
		}
		got, err := crypto.SigToPub(digest, sig)
		if err != nil || crypto.PubkeyToAddress(*got) != addr {
			t.Fatal("normalized signature does not recover to the key")
		}
	}
}

func TestSign_WrongKeyBackendIsRefused(t *testing.T) {
	k, pub, _ := key(t, "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
	other, _, _ := key(t, "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
	swapped := swappedKey{Key: other, pub: k.PublicKey()}
	if _, err := ethereum.Sign(context.Background(), swapped, pub, crypto.Keccak256([]byte("x"))); !errors.Is(err, signer.ErrBadSignature) {
		t.Fatalf("err %v, want signer.ErrBadSignature", err)
	}
}

// swappedKey claims one public key and signs with another.
type swappedKey struct {
	signer.Key
	pub signer.PublicKey
}

func (k swappedKey) PublicKey() signer.PublicKey { return k.pub }
