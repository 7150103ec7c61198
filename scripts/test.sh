#!/usr/bin/env bash
# Runs latch's whole test suite on a fresh machine: installs what the tests
# need (git, OpenSSH client, PostgreSQL 15 server binaries, a C compiler for
# the software security key of the SSH tests) when missing, then
# runs every Go test with PostgreSQL required, so that its tests run rather
# than skip.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v git >/dev/null || need+=(git)
command -v ssh >/dev/null || need+=(openssh-client)
command -v gcc >/dev/null || need+=(gcc libc6-dev)
if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  need+=(postgresql)
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "missing packages: ${need[*]} (install them or run as root)" >&2
    exit 2
  fi
fi

export LATCH_REQUIRE_POSTGRES=1
go vet ./...
test -z "$(gofmt -l $(git ls-files '*.go'))" || { echo "gofmt would change:"; gofmt -l $(git ls-files '*.go'); exit 1; }
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
go test -count=1 -timeout 20m ./...
# The end-to-end suite once more, every server on its own PostgreSQL
# database: the same behaviour on both stores.
LATCH_E2E_DB=postgres go test -count=1 -timeout 20m ./e2e/
