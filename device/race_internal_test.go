//go:build race

package device

// raceOn: the race detector drops pooled values at random, so allocation
// counts are not asserted under it.
const raceOn = true
