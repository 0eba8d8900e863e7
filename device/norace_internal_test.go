//go:build !race

package device

const raceOn = false
