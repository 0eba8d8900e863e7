package policy

// BenchChanges returns the changes that load benchSnapshot(n), for the
// benchmarks of package policy_test (which may import packages that import
// this one, such as policyprom).
func BenchChanges(n int) []Change { return benchSnapshot(n).changes() }
