// Package ptytest opens pseudo-terminals for tests of code that talks to
// serial ports: the slave side stands for the port, the master side for the
// device at the other end of the line. It is implemented on Linux only;
// tests that use it live in _linux_test.go files.
package ptytest
