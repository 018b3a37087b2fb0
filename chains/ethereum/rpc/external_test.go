package rpc_test

import (
	"crypto/sha256"
	"math/big"
	"sort"
	"testing"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/accounts/external"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/consensus/clique"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/crypto/kzg4844"
	"github.com/holiman/uint256"
)

// go-ethereum's own clef client (what geth --signer uses) against keyward.
func newExternal(t *testing.T) (*env, *external.ExternalSigner) {
	t.Helper()
	e := newEnv(t)
	s, err := external.NewExternalSigner(e.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return e, s
}

func TestExternalSigner_AccountsListsOnlyEthereumKeys(t *testing.T) {
	e, s := newExternal(t)
	var got []string
	for _, a := range s.Accounts() {
		got = append(got, a.Address.Hex())
	}
	var want []string
	for _, name := range []string{"open", "strict", "eip155", "mail"} {
		want = append(want, e.addr[name].Hex())
	}
	sort.Strings(got)
	sort.Strings(want)
	if len(got) != len(want) {
		t.Fatalf("accounts %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("accounts %v, want %v", got, want)
		}
	}
}

func blobSidecar(t *testing.T) (*types.BlobTxSidecar, []common.Hash) {
	t.Helper()
	var blob kzg4844.Blob
	blob[5] = 7
	c, err := kzg4844.BlobToCommitment(&blob)
	if err != nil {
		t.Fatal(err)
	}
	p, err := kzg4844.ComputeBlobProof(&blob, c)
	if err != nil {
		t.Fatal(err)
	}
	h := kzg4844.CalcBlobHashV1(sha256.New(), &c)
	return types.NewBlobTxSidecar(types.BlobSidecarVersion0, []kzg4844.Blob{blob}, []kzg4844.Commitment{c}, []kzg4844.Proof{p}), []common.Hash{h}
}

func TestExternalSigner_SignTxEveryTypeRecoversToKey(t *testing.T) {
	e, s := newExternal(t)
	from := e.addr["open"]
	chainID := big.NewInt(1337)
	sidecar, hashes := blobSidecar(t)
	al := types.AccessList{{Address: dead, StorageKeys: []common.Hash{{1}}}}
	tests := []struct {
		name string
		tx   types.TxData
	}{
		{"legacy", &types.LegacyTx{Nonce: 1, GasPrice: big.NewInt(1e9), Gas: 21000, To: &dead, Value: big.NewInt(5)}},
		{"access list", &types.AccessListTx{ChainID: chainID, Nonce: 2, GasPrice: big.NewInt(1e9), Gas: 30000, To: &dead, AccessList: al}},
		{"dynamic fee", &types.DynamicFeeTx{ChainID: chainID, Nonce: 3, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(2e9), Gas: 21000, To: &dead, Value: big.NewInt(9), Data: []byte{1, 2}}},
		{"blob", &types.BlobTx{ChainID: uint256.NewInt(1337), Nonce: 4, GasTipCap: uint256.NewInt(1), GasFeeCap: uint256.NewInt(2e9), Gas: 21000, To: dead,
			BlobFeeCap: uint256.NewInt(3), BlobHashes: hashes, Sidecar: sidecar}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			unsigned := types.NewTx(tc.tx)
			signed, err := s.SignTx(accounts.Account{Address: from}, unsigned, chainID)
			if err != nil {
				t.Fatal(err)
			}
			if signed.Type() != unsigned.Type() {
				t.Fatalf("type %d, want %d", signed.Type(), unsigned.Type())
			}
			sender, err := types.Sender(types.LatestSignerForChainID(chainID), signed)
			if err != nil {
				t.Fatal(err)
			}
			if sender != from {
				t.Fatalf("sender %s, want %s", sender.Hex(), from.Hex())
			}
			if types.LatestSignerForChainID(chainID).Hash(signed) != types.LatestSignerForChainID(chainID).Hash(unsigned) {
				t.Fatal("keyward signed a different transaction than asked")
			}
			if rec := e.audit.Last(t); rec.Outcome != "signed" || rec.Key != "open" || rec.Method != "account_signTransaction" {
				t.Fatalf("audit record %+v", rec)
			}
		})
	}
}

func TestExternalSigner_SignTextRecoversToKey(t *testing.T) {
	e, s := newExternal(t)
	from := e.addr["open"]
	text := []byte("keyward clef text")
	sig, err := s.SignText(accounts.Account{Address: from}, text)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := crypto.SigToPub(accounts.TextHash(text), sig)
	if err != nil {
		t.Fatal(err)
	}
	if crypto.PubkeyToAddress(*pub) != from {
		t.Fatal("text signature does not recover to the key")
	}
}

func TestExternalSigner_SignDataCliqueHeader(t *testing.T) {
	e, s := newExternal(t)
	from := e.addr["open"]
	h := &types.Header{Difficulty: big.NewInt(2), Number: big.NewInt(42), GasLimit: 8_000_000, Time: 1_700_000_000,
		Extra: make([]byte, 32+65), Coinbase: from}
	sig, err := s.SignData(accounts.Account{Address: from}, accounts.MimetypeClique, clique.CliqueRLP(h))
	if err != nil {
		t.Fatal(err)
	}
	if sig[64] > 1 {
		t.Fatalf("clique v = %d, want 0 or 1", sig[64])
	}
	// What clique's ecrecover does with the sealed header.
	seal := clique.SealHash(h)
	pub, err := crypto.Ecrecover(seal[:], sig)
	if err != nil {
		t.Fatal(err)
	}
	var signerAddr common.Address
	copy(signerAddr[:], crypto.Keccak256(pub[1:])[12:])
	if signerAddr != from {
		t.Fatalf("seal recovers to %s, want %s", signerAddr.Hex(), from.Hex())
	}
	if rec := e.audit.Last(t); rec.Kind != "clique_header" || rec.Outcome != "signed" {
		t.Fatalf("audit record %+v", rec)
	}
}

func TestExternalSigner_RefusalNamesTheRule(t *testing.T) {
	e, s := newExternal(t)
	from := e.addr["strict"]
	other := common.HexToAddress("0x2222222222222222222222222222222222222222")
	tx := types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(1), Nonce: 1, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(2), Gas: 21000, To: &other})
	if _, err := s.SignTx(accounts.Account{Address: from}, tx, big.NewInt(1)); code(err) != -32003 {
		t.Fatalf("err %v (code %d), want a -32003 refusal", err, code(err))
	}
	if rec := e.audit.Last(t); rec.Outcome != "refused" || rec.Rule != "ethereum.to" {
		t.Fatalf("audit record %+v", rec)
	}
}
