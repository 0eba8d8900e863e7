// Package atomicfile replaces files so that a crash leaves either the old or
// the new content, never a mix: the file stores of trust, device and policy
// all write through it, and remove the temporary files a crash leaves
// behind with RemoveTemps when they open.
//
// The package is internal: its API may change at any time.
package atomicfile
