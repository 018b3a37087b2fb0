#!/usr/bin/env bash
# Installs what keyward's tests need when it is missing: SoftHSM2,
# PostgreSQL and chattr from Debian, and the npm packages of the JavaScript
# client tests.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need_apt=()
[ -e /usr/lib/softhsm/libsofthsm2.so ] && command -v softhsm2-util >/dev/null || need_apt+=(softhsm2)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
command -v node >/dev/null || need_apt+=(nodejs npm)
# chattr: tests running as root make a directory unwritable with +i (testutil.ReadOnlyDir).
command -v chattr >/dev/null || need_apt+=(e2fsprogs)
if [ ${#need_apt[@]} -gt 0 ]; then
	echo "installing: ${need_apt[*]}"
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	$SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

for dir in test/*/; do
	# Also when package-lock.json changed since the last install (a package was added).
	if [ -f "$dir/package.json" ] && { [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; }; then
		echo "npm ci in $dir"
		(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
	fi
done

# Test-only Go tools (the KMS emulator) live in their own module.
if [ -f internal/tools/go.mod ]; then
	(cd internal/tools && go mod download)
fi
