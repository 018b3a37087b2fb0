// Package e2e runs the built keyward binary end to end against real clients (Taquito, go-ethereum, ethers.js) and real stores.
package e2e
