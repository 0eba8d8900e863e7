//go:build race

package policy

// raceEnabled makes the tests that count allocations through a sync.Pool
// skip: with the race detector, the pool drops items at random.
const raceEnabled = true
