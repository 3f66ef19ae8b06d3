//go:build !race

package cvss

const raceEnabled = false
