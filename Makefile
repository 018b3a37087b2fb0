# keyward: `make test` installs what the tests need when it is missing, then runs them all.
SHELL := /bin/bash
GO ?= go
FUZZTIME ?= 100000x
export GOFLAGS ?= -buildvcs=false

.PHONY: test deps go-test fuzz bench build lint

build:
	$(GO) build -o bin/keyward ./cmd/keyward

test: deps go-test fuzz

deps:
	@scripts/install-test-deps.sh

go-test:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 25m ./...
	CGO_ENABLED=0 $(GO) build -o /dev/null ./cmd/keyward
	CGO_ENABLED=0 $(GO) test -count=1 ./signer/pkcs11 ./signer/local

# Every FuzzXxx target runs for $(FUZZTIME).
fuzz:
	@scripts/fuzz.sh $(FUZZTIME)

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
