#!/usr/bin/env bash
# Runs every go test -fuzz target of the main module for a short budget.
# The default budget is a count of executions ("100000x"), not a duration: a
# duration races the fuzz coordinator's deadline on a loaded machine and fails
# with "context deadline exceeded" and no failing input (golang/go#75804,
# fixed in Go 1.27).
set -euo pipefail
cd "$(dirname "$0")/.."
t="${1:-100000x}"
grep -rl --include='*_test.go' '^func Fuzz' . | grep -v '^./internal/tools/' | while read -r f; do
	pkg="./$(dirname "${f#./}")"
	for fn in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //'); do
		echo "fuzz $pkg $fn ($t)"
		go test -run '^$' -fuzz "^${fn}\$" -fuzztime "$t" "$pkg" >/tmp/keyward-fuzz.log 2>&1 || { cat /tmp/keyward-fuzz.log; exit 1; }
	done
done
echo "fuzz: all targets passed"
