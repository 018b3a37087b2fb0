//go:build !linux

package file

// exchange is Linux only; elsewhere the store always renames a fresh temp file.
func exchange(a, b string) error { return errExchangeUnsupported }
