package rpc_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	"github.com/keyward/keyward/audit/audittest"
	"github.com/keyward/keyward/chains/ethereum"
	"github.com/keyward/keyward/chains/ethereum/rpc"
	"github.com/keyward/keyward/config"
	"github.com/keyward/keyward/keyring"
	limitsfile "github.com/keyward/keyward/limits/file"
	"github.com/keyward/keyward/pipeline"
	"github.com/keyward/keyward/pipeline/pipelinetest"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/signer"
	"github.com/keyward/keyward/signer/local"
)

// Test keys (Hardhat's well-known development accounts and EIP vectors' keys).
const (
	secretOpen   = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80" // 0xf39F…2266
	secretStrict = "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d" // 0x7099…79C8
	secretTezos  = "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a" // no ethereum section
	secretEIP155 = "4646464646464646464646464646464646464646464646464646464646464646"
)

var (
	dead    = common.HexToAddress("0x000000000000000000000000000000000000dEaD")
	mailKey = "c85ef7d79691fe79573b1a7064c19c1a9819ebdbd1faaab1a8ec92344438aaf4" // keccak256("cow")
)

// openRules allow everything keyward can sign.
var openRules = &policy.EthereumRules{ChainIDs: []uint64{1, 1337}, AllowCreate: true, SignMessages: true,
	SignTypedData: true, SignAuthorizations: true, SignCliqueHeaders: true}

// strictRules exercise every refusing rule.
var strictRules = &policy.EthereumRules{
	ChainIDs:         []uint64{1},
	To:               []string{"0x000000000000000000000000000000000000dEaD", "0x1111111111111111111111111111111111111111"},
	MaxValue:         "1 ether",
	Methods:          map[string][]string{"0x1111111111111111111111111111111111111111": {"0xa9059cbb"}},
	SignTypedData:    true,
	TypedDataDomains: []policy.TypedDataDomain{{ChainID: 1, VerifyingContract: "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"}},
}

type testKey struct {
	name   string
	secret string
	rules  *policy.EthereumRules
}

var defaultKeys = []testKey{
	{"open", secretOpen, openRules},
	{"strict", secretStrict, strictRules},
	{"tezosonly", secretTezos, nil},
	{"eip155", secretEIP155, openRules},
	{"mail", mailKey, openRules},
}

func newRing(t testing.TB, keys []testKey) (*keyring.Ring, map[string]common.Address) {
	t.Helper()
	var ks []*keyring.Key
	addrs := map[string]common.Address{}
	for _, tk := range keys {
		sk, err := local.ParseHexSecret(tk.secret)
		if err != nil {
			t.Fatal(err)
		}
		u, err := signer.ParseURI("file:///keys/" + tk.name + ".json")
		if err != nil {
			t.Fatal(err)
		}
		k, err := keyring.NewKey(tk.name, u, sk, config.KeyConfig{Ref: u.String(), Ethereum: tk.rules})
		if err != nil {
			t.Fatal(err)
		}
		ks = append(ks, k)
		if addrs[tk.name], err = ethereum.Address(sk.PublicKey()); err != nil {
			t.Fatal(err)
		}
	}
	r, err := keyring.New(ks)
	if err != nil {
		t.Fatal(err)
	}
	return r, addrs
}

type env struct {
	h     *rpc.Handler
	srv   *httptest.Server
	audit *audittest.Memory
	obs   *pipelinetest.Recorder
	addr  map[string]common.Address
	rpc   *gethrpc.Client
}

// newEnv serves the default keys with chain id 1337.
func newEnv(t testing.TB, mod ...func(*rpc.Options)) *env {
	t.Helper()
	return newEnvKeys(t, defaultKeys, append([]func(*rpc.Options){func(o *rpc.Options) { o.ChainID = 1337 }}, mod...)...)
}

// newEnvKeys serves keys through a pipeline that records its audit lines
// and decisions, with no configured chain id.
func newEnvKeys(t testing.TB, keys []testKey, mod ...func(*rpc.Options)) *env {
	t.Helper()
	ring, addrs := newRing(t, keys)
	return newEnvRing(t, ring, addrs, mod...)
}

// newEnvRing is newEnvKeys for a ring built by the test.
func newEnvRing(t testing.TB, ring *keyring.Ring, addrs map[string]common.Address, mod ...func(*rpc.Options)) *env {
	t.Helper()
	e := &env{audit: &audittest.Memory{}, obs: &pipelinetest.Recorder{}, addr: addrs}
	budgets, err := limitsfile.Open(filepath.Join(t.TempDir(), "limits"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { budgets.Close() })
	p := pipeline.New(pipeline.Options{Audit: e.audit, Budgets: budgets, Observer: e.obs, Codes: rpc.Codes(), SummaryInterval: time.Hour})
	t.Cleanup(p.Close)
	opts := rpc.Options{Ring: func() *keyring.Ring { return ring }, Pipeline: p, MaxBatch: 10, MaxBodyBytes: 1 << 20}
	for _, m := range mod {
		m(&opts)
	}
	h, err := rpc.NewHandler(opts)
	if err != nil {
		t.Fatal(err)
	}
	e.h = h
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	e.rpc = dial(t, e.srv.URL)
	return e
}

// newServer serves h on loopback and returns its URL.
func newServer(t testing.TB, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func dial(t testing.TB, url string) *gethrpc.Client {
	t.Helper()
	c, err := gethrpc.DialHTTP(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// call makes one JSON-RPC call and decodes the result into out (may be nil).
func (e *env) call(out any, method string, params ...any) error {
	return e.rpc.Call(out, method, params...)
}

// code returns the JSON-RPC error code of err, or 0.
func code(err error) int {
	var re gethrpc.Error
	if errors.As(err, &re) {
		return re.ErrorCode()
	}
	return 0
}

// post sends a raw body and returns the status and the decoded answer.
func (e *env) post(t testing.TB, body []byte, header ...string) (int, json.RawMessage) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

type rpcAnswer struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *rpc.Error      `json:"error"`
}
