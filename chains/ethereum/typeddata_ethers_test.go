package ethereum_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/keyward/keyward/chains/ethereum"
	"github.com/keyward/keyward/internal/testutil"
)

// Finding 9 of issue 11: typed data with an empty domain (every EIP-712
// domain field is optional) was refused as "domain is undefined"
// (go-ethereum's TypedDataDomain.validate), while ethers 6, viem and
// eth-sig-util sign it. keyward's digest and signature equal ethers 6
// Wallet.signTypedData's for the same key, byte for byte (both RFC 6979).
func TestTypedDataHash_EmptyDomainSignsAsEthers(t *testing.T) {
	const secret = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
	k, pub, addr := key(t, secret)
	for name, td := range map[string]string{
		"the finding": `{"types":{"EIP712Domain":[],"Message":[{"name":"data","type":"string"}]},"primaryType":"Message","domain":{},"message":{"data":"Hello!"}}`,
		"nested, empty domain": `{"types":{"EIP712Domain":[],"Person":[{"name":"name","type":"string"},{"name":"wallet","type":"address"}],
			"Mail":[{"name":"from","type":"Person"},{"name":"to","type":"Person[]"},{"name":"amount","type":"uint256"}]},"primaryType":"Mail","domain":{},
			"message":{"from":{"name":"Cow","wallet":"0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},"to":[{"name":"Bob","wallet":"0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"}],"amount":"1606938044258990275541962092341162602522202993782792835301377"}}`,
		"full domain": `{"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"version","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"},{"name":"salt","type":"bytes32"}],
			"Message":[{"name":"data","type":"string"},{"name":"tags","type":"bytes32[]"}]},"primaryType":"Message",
			"domain":{"name":"Ether Mail","version":"1","chainId":1,"verifyingContract":"0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC","salt":"0x0000000000000000000000000000000000000000000000000000000000000007"},
			"message":{"data":"Hello!","tags":["0x0000000000000000000000000000000000000000000000000000000000000001"]}}`,
	} {
		t.Run(name, func(t *testing.T) {
			want := testutil.RunJS(t, "ethjs", "ethers", "wallet.mjs", "signTypedData", secret, td)
			if want["address"] != addr.Hex() {
				t.Fatalf("ethers address %v, want %s", want["address"], addr.Hex())
			}
			parsed, err := ethereum.ParseTypedData("params[1]", []byte(td))
			if err != nil {
				t.Fatal(err)
			}
			digest, err := ethereum.TypedDataHash("params[1]", parsed)
			if err != nil {
				t.Fatal(err)
			}
			sig, err := ethereum.Sign(context.Background(), k, pub, digest)
			if err != nil {
				t.Fatal(err)
			}
			if got := hexutil.Encode(digest); got != want["digest"] {
				t.Errorf("digest %s, ethers %v", got, want["digest"])
			}
			if got := hexutil.Encode(ethereum.EthV(sig)); got != fmt.Sprint(want["signature"]) {
				t.Errorf("signature %s, ethers %v", got, want["signature"])
			}
		})
	}
}
