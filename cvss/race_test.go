//go:build race

package cvss

// raceEnabled shrinks the exhaustive and exact-arithmetic tests, which are
// an order of magnitude slower under the race detector and test no
// concurrency.
const raceEnabled = true
