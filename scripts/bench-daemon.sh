#!/usr/bin/env bash
# Measures keyward's targets in one run on one machine, as ratios:
#   - generic-operation throughput of a running daemon (16 clients) against the
#     raw secp256k1 signing benchmark (all cores), and the daemon's RSS under load;
#   - attestation latency (one client, durable file store) against the machine's
#     fsync latency benchmark;
#   - tz4 (BLS) attestation latency beside the tz2 one;
#   - attestation throughput for 8 keys in parallel against one key.
# Usage: scripts/bench-daemon.sh [duration, default 10s]
set -euo pipefail
cd "$(dirname "$0")/.."
D="${1:-10s}"
work="$(mktemp -d)"
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/keyward" ./cmd/keyward
export KEYWARD_PASSPHRASE=bench-passphrase
: > "$work/pkhs"
for i in 1 2 3 4 5 6 7 8; do
	"$work/keyward" keys generate --type secp256k1 --out "$work/k$i.json" | awk '/tz address/{print $3}' >> "$work/pkhs"
done
TZ4="$("$work/keyward" keys generate --type bls --out "$work/bls.json" | awk '/tz address/{print $3}')"
{
	echo "tezos: {listen: 127.0.0.1:6799}"
	echo "watermark: file://$work/wm"
	echo "audit: $work/audit.jsonl"
	echo "keys:"
	for i in 1 2 3 4 5 6 7 8; do
		echo "  k$i: {ref: 'file://$work/k$i.json', tezos: {allow: [generic, attestation], operations: [transaction]}}"
	done
	echo "  bls: {ref: 'file://$work/bls.json', tezos: {allow: [attestation]}}"
} > "$work/keyward.yaml"
"$work/keyward" serve --config "$work/keyward.yaml" > "$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 50); do curl -sf http://127.0.0.1:6799/authorized_keys >/dev/null 2>&1 && break; sleep 0.1; done
K1="$(sed -n 1p "$work/pkhs")"
ALL="$(paste -sd, "$work/pkhs")"
url=http://127.0.0.1:6799

echo "== raw secp256k1 signing (all cores): libsecp256k1 (used), pure-Go decred (no-cgo builds)"
go test -count=1 -run '^$' -bench 'BenchmarkRawSign_Secp256k1' -benchtime 4s ./chains/tezos/remotesigner | grep Benchmark
echo "== daemon: generic operation, 16 clients"
"$work/keyward" bench --url $url --key "$K1" -c 16 -d "$D" --pid $pid
echo "== raw secp256k1 signing again"
go test -count=1 -run '^$' -bench 'BenchmarkRawSign_Secp256k1$' -benchtime 4s ./chains/tezos/remotesigner | grep Benchmark
echo "== fsync latency"
go test -count=1 -run '^$' -bench 'BenchmarkFsync$' -benchtime 2000x ./watermark/file | grep Benchmark
echo "== daemon: attestations, one key, one client"
"$work/keyward" bench --url $url --key "$K1" --kind attestation --start-level 1000000 -c 1 -d "$D"
echo "== daemon: tz4 (BLS) attestations, one key, one client"
"$work/keyward" bench --url $url --key "$TZ4" --kind attestation --start-level 1000000 -c 1 -d "$D"
echo "== daemon: attestations, 8 keys, 8 clients"
"$work/keyward" bench --url $url --key "$ALL" --kind attestation --start-level 2000000 -c 8 -d "$D"
echo "== fsync latency again"
go test -count=1 -run '^$' -bench 'BenchmarkFsync$' -benchtime 2000x ./watermark/file | grep Benchmark
