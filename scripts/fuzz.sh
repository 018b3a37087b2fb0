#!/usr/bin/env bash
# Runs every go test -fuzz target of the main module for a short time.
set -euo pipefail
cd "$(dirname "$0")/.."
t="${1:-5s}"
grep -rl --include='*_test.go' '^func Fuzz' . | grep -v '^./internal/tools/' | while read -r f; do
	pkg="./$(dirname "${f#./}")"
	for fn in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //'); do
		echo "fuzz $pkg $fn ($t)"
		go test -run '^$' -fuzz "^${fn}\$" -fuzztime "$t" "$pkg" >/tmp/keyward-fuzz.log 2>&1 || { cat /tmp/keyward-fuzz.log; exit 1; }
	done
done
echo "fuzz: all targets passed"
