// Package apisurface holds no code: its test keeps the exported API of the
// SDK's public packages (token, trust, policy, client, device, transport and
// their subpackages) equal to the lists in testdata, one file per package,
// so that an identifier is added to or removed from the public surface only
// on purpose, with the list changed in the same commit. After a deliberate
// change, go test ./internal/apisurface -update rewrites the lists.
package apisurface
