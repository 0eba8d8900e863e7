// Package atomicfile replaces or creates files so that a crash leaves
// either the old or the new content, never a mix: the file stores of
// trust, device and policy all write through it (Write), and remove the
// temporary files a crash leaves behind with RemoveTemps when they open;
// key files are created with Create, which never replaces an existing
// file.
//
// The package is internal: its API may change at any time.
package atomicfile
