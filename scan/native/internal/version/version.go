// Package version compares package versions by the rules of each
// ecosystem: Debian (dpkg), Alpine (apk), semantic versioning (Go, npm)
// and PEP 440 (PyPI).
//
// Every comparison function accepts any string: inputs that do not follow
// the ecosystem's syntax still get a total, deterministic order (their
// Valid function reports them), so that a malformed version in an image
// or a feed cannot crash a scan.
package version

import "strings"

// Compare compares a and b with the ordering of the OSV ecosystem eco
// ("Debian:12", "Ubuntu:22.04", "Alpine:v3.19", "Go", "npm", "PyPI", …),
// returning -1, 0 or +1. Unknown ecosystems use Semver.
func Compare(eco, a, b string) int {
	return ComparerFor(eco)(a, b)
}

// ComparerFor returns the comparison function for the OSV ecosystem eco.
func ComparerFor(eco string) func(a, b string) int {
	base, _, _ := strings.Cut(eco, ":")
	switch strings.ToLower(base) {
	case "debian", "ubuntu":
		return Dpkg
	case "alpine", "wolfi", "chainguard":
		return Apk
	case "pypi":
		return PEP440
	case "rocky linux", "almalinux", "red hat", "opensuse", "suse", "mageia", "openeuler", "azure linux":
		return RPM
	}
	return Semver
}

func sign(x int) int {
	switch {
	case x < 0:
		return -1
	case x > 0:
		return 1
	}
	return 0
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// cmpNum compares two strings of decimal digits as numbers of any length.
func cmpNum(a, b string) int {
	a = strings.TrimLeft(a, "0")
	b = strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		return sign(len(a) - len(b))
	}
	return strings.Compare(a, b)
}
