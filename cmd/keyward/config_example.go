package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

const configExampleHelp = `Usage: keyward config example [--root DIR]

Prints a complete, annotated configuration: every setting keyward reads, with
its default or a typical value. Settings that need more than the file itself
(TLS certificates, audit_sync) are shown commented out: remove the "# " in
front of them to turn them on. "keyward config check" accepts the output once
the files it names exist (keys, passphrase, tokens). --root DIR puts every
path under DIR, to try the example in a scratch directory.
`

// configExample is the annotated example; {{ROOT}} prefixes every path.
// Convention (TestConfigExample_* keep it): a commented-out setting is
// "<indent># <name>: ..." (nested ones "<indent>#   <name>: ..."), and
// removing that "# " gives valid YAML that config check accepts; prose
// comments never start with "<name>:".
const configExample = `# keyward configuration: every setting, with its default or a typical value.
# Decoded strictly: an unknown field, a setting without a value, a merge key
# (<<), an anchor or an alias is an error naming its YAML path and line.
# Check it with "keyward config check --config FILE" (safe beside a running
# keyward); apply changes with SIGHUP (systemctl reload keyward).

tezos:                              # the Tezos remote-signer listener (octez-client/octez-baker --remote-signer)
  listen: 127.0.0.1:6732            # default; beyond loopback it needs authorized_keys or tls.client_ca,
  allow_non_loopback: false         # ... or this set to true (warned at every start)
  disabled: false                   # true: no Tezos listener at all
  authorized_keys: []               # Octez request authentication: edpk/sppk/p2pk keys (or tz2/tz3 hashes); [] = not required
  allowed_origins: []               # browser origins allowed to POST; by default a request carrying Origin is refused
  list_known_keys: false            # serve GET /known_keys (Octez's --allow-list-known-keys)
  # tls:                            # HTTPS (certificate and key reloaded by SIGHUP)
  #   cert: {{ROOT}}/etc/keyward/tls/tezos.crt
  #   key: {{ROOT}}/etc/keyward/tls/tezos.key
  #   client_ca: {{ROOT}}/etc/keyward/tls/clients-ca.crt   # mTLS: clients must show a certificate signed by it

ethereum:                           # the Ethereum JSON-RPC listener (geth --signer, ethers.js, web3signer clients); no listen: off
  listen: 127.0.0.1:8550
  tokens_file: {{ROOT}}/etc/keyward/tokens   # "client-name token" per line, mode 0600, tokens of 16+ characters; reloaded by SIGHUP
  allow_non_loopback: false         # beyond loopback without tokens_file or tls.client_ca only with true
  chain_id: 1                       # answers eth_chainId without an upstream; chain id of transactions that carry none
  upstream: ""                      # node URL: forwards the read methods and eth_sendRawTransaction, serves eth_sendTransaction
  max_body_bytes: 1048576           # request body cap (default 1 MiB; a blob transaction needs more)
  max_batch: 100                    # requests per JSON-RPC batch (default 100)
  # tls:                            # HTTPS, as on the Tezos side
  #   cert: {{ROOT}}/etc/keyward/tls/ethereum.crt
  #   key: {{ROOT}}/etc/keyward/tls/ethereum.key
  #   client_ca: {{ROOT}}/etc/keyward/tls/clients-ca.crt

server:
  metrics_listen: 127.0.0.1:9583    # /metrics, /healthz, /readyz (and /debug/pprof/ with pprof); "" = off
  shutdown_timeout: 15s             # how long a stop waits for requests in flight (default 15s)
  pprof: false                      # serve /debug/pprof/ on the metrics listener
  readyz_details: false             # /readyz prints each problem's error text (it needs no authentication)

watermark: file://{{ROOT}}/var/lib/keyward/watermarks   # required; or postgres://keyward@db.internal/keyward for several instances
watermark_replication: warn         # PostgreSQL: require-sync (sign only while a synchronous standby acknowledges commits), warn (default), ignore
audit: {{ROOT}}/var/log/keyward/audit.jsonl   # one hash-chained JSON line per decision; its anchor sits beside it (audit.jsonl.anchor)
# audit_sync: always                # fdatasync (and anchor) every line before the answer; default: write(2), on disk within a second

log:
  level: info                       # debug, info, warn, error
  format: text                      # text or json

keys:                               # a key not listed signs nothing
  baker:                            # a consensus key: blocks and (pre)attestations, guarded by the watermark
    # The ref may name any backend, for example
    #   AWS KMS   awskms:///alias/baker?region=eu-west-1
    #   PKCS#11   pkcs11:token=keyward;object=baker?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=/run/keyward/pin
    # and a key file's passphrase comes from passphrase-source (systemd LoadCredential=), else $KEYWARD_PASSPHRASE.
    ref: file://{{ROOT}}/var/lib/keyward/keys/baker.json?passphrase-source={{ROOT}}/run/credentials/keyward.service/passphrase
    tezos:
      allow: [block, preattestation, attestation]   # the default for a key without rules
      chains: [NetXdQprcVkpaWU]                     # consensus requests only on these chain ids; [] = any
      allow_proof_of_possession: false              # tz4 keys: GET /bls_prove_possession (on only while registering the key)
  oracle:                           # a Harbinger-style poster: Michelson data and one contract call
    ref: file://{{ROOT}}/var/lib/keyward/keys/oracle.json?passphrase-source={{ROOT}}/run/credentials/keyward.service/passphrase
    audit_payload: true             # write full payloads into the audit log (default false)
    tezos:
      allow: [michelson_data, generic]
      operations: [transaction]     # operation kinds a generic request may hold (Octez names); [] = none
      to: ["KT1AdbYiPYb5hDuEuVrfxmFehtnBCXv4Np7r%update", "KT1PWx2mnDueood7fEmfbBDKx1D9BAnnXitn"]   # destinations (and entrypoints); [] = any
      max_amount: "0 tez"           # cap per transaction (tez or mutez)
      max_fee: "0.5 tez"            # cap per operation
      max_storage_limit: 100        # bytes per operation (bounds the storage burn)
      max_gas_limit: 40000          # per operation
      max_batch_fee: "0.5 tez"      # sum of the fees of one request
      max_batch_amount: "0 tez"     # sum of the tez amounts of one request
      max_operations: 1             # operations per request
      tokens:                       # FA1.2 / FA2 contracts whose calls are decoded and capped (raw units, or whole tokens with decimals)
        KT1PWx2mnDueood7fEmfbBDKx1D9BAnnXitn: {standard: fa2, max_amount: "0", decimals: 0, operators: []}
      limits:                       # rolling budgets: never more than this within any window
        - {window: 24h, max_amount: "0 tez", max_fee: "1 tez", max_requests: 300, max_token_amount: {KT1PWx2mnDueood7fEmfbBDKx1D9BAnnXitn: "0"}}
  poster:                           # an Ethereum service key (secp256k1)
    ref: file://{{ROOT}}/var/lib/keyward/keys/poster.json?passphrase-source={{ROOT}}/run/credentials/keyward.service/passphrase
    clients: [poster-bot]           # who may use the key: token names, authorized-key hashes (tz…), "cert:CN=…"; [] = any caller
    ethereum:                       # without this section the key is not served on Ethereum
      chain_ids: [1, 11155111]      # [] = any; set, typed data must name a listed chainId
      to: ["0x000000000000000000000000000000000000dEaD", "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"]   # [] = any
      allow_create: false           # contract creation (a transaction without to)
      max_value: "1 ether"          # cap per transaction (wei, gwei or ether)
      max_fee: "0.01 ether"         # the most one transaction can pay in fees (gas × price, plus blob gas)
      max_gas_price: "100 gwei"     # gasPrice or maxFeePerGas
      max_gas: 500000
      tokens:                       # ERC-20 contracts whose transfer/transferFrom/approve are decoded and capped
        "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48": {max_amount: "1000", decimals: 6}
      limits:
        - {window: 24h, max_value: "2 ether", max_fee: "0.1 ether", max_requests: 500, max_token_amount: {"0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48": "5000"}}
      methods:                      # a recipient listed here may only be called with these 4-byte selectors
        "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48": ["0xa9059cbb"]
      sign_messages: true           # eth_sign, personal_sign, account_signData text/plain (default false)
      sign_typed_data: true         # EIP-712 (default false)
      typed_data_domains:           # EIP-712 domains allowed; [] = any (a zero field matches anything)
        - {chain_id: 1, verifying_contract: "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"}
      sign_authorizations: false    # EIP-7702 authorizations (delegating the account's code)
      sign_clique_headers: false    # account_signData application/x-clique-header (proof-of-authority seals)
`

// exampleConfig returns the example with every path under root ("" for /).
func exampleConfig(root string) string {
	return strings.ReplaceAll(configExample, "{{ROOT}}", strings.TrimRight(root, "/"))
}

func cmdConfigExample(stdout, stderr io.Writer) func([]string) error {
	return func(a []string) error {
		fs := newFlags("config example", configExampleHelp, stdout)
		root := fs.String("root", "", "directory to put every path under (absolute)")
		if _, err := parse(fs, a, stderr); err != nil {
			return err
		}
		if *root != "" && !filepath.IsAbs(*root) {
			return errors.New("--root must be an absolute directory")
		}
		_, err := fmt.Fprint(stdout, exampleConfig(*root))
		return err
	}
}
