# keyward: `make test` installs what the tests need when it is missing, then runs them all.
SHELL := /bin/bash
GO ?= go
FUZZTIME ?= 100000x
export GOFLAGS ?= -buildvcs=false

.PHONY: test deps go-test fuzz bench build lint

# The version keyward prints (keyward version, keyward_build_info).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo "(devel)")

build:
	$(GO) build -ldflags "-X github.com/keyward/keyward/server.Version=$(VERSION)" -o bin/keyward ./cmd/keyward

test: deps lint go-test fuzz

deps:
	@scripts/install-test-deps.sh

# go vet and staticcheck; staticcheck is pinned in internal/tools/go.mod so the
# product's go.mod lists no lint tools.
lint:
	$(GO) vet ./...
	$(GO) tool -modfile=internal/tools/go.mod staticcheck ./...

go-test:
	$(GO) test -count=1 -timeout 25m ./...
	CGO_ENABLED=0 $(GO) build -o /dev/null ./cmd/keyward
	CGO_ENABLED=0 $(GO) test -count=1 ./signer/pkcs11 ./signer/local

# Every FuzzXxx target runs for $(FUZZTIME).
fuzz:
	@scripts/fuzz.sh $(FUZZTIME)

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
