// Package tezos encodes Tezos keys, addresses and signatures (base58check) and decodes the payloads a Tezos remote signer is asked to sign.
package tezos
