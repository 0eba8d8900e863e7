// Package atomicfiletest leaves behind, in a store's directory, the
// temporary files that writes interrupted by a crash leave, and checks that
// opening the store removed them and nothing else: the stores of trust,
// device and policy test their clean-up with it.
//
// The package is internal and only for tests.
package atomicfiletest
