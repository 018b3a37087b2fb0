//go:build !linux

package durable

// exchange is Linux only; elsewhere Replace always renames the temp file.
func exchange(a, b string) error { return errExchangeUnsupported }
