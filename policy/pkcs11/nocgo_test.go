//go:build !cgo

package pkcs11_test

const cgoEnabled = false
