package version

import "strings"

// Semver compares semantic versions (https://semver.org): a leading "v"
// is ignored, missing minor and patch components count as 0, a
// pre-release sorts before its release, pre-release identifiers compare
// numerically when both are numeric and otherwise in ASCII order (numeric
// before alphanumeric), and build metadata is ignored.
func Semver(a, b string) int {
	ca, pa := splitSemver(a)
	cb, pb := splitSemver(b)
	for i := 0; i < max(len(ca), len(cb)); i++ {
		x, y := "0", "0"
		if i < len(ca) {
			x = ca[i]
		}
		if i < len(cb) {
			y = cb[i]
		}
		if c := cmpIdent(x, y); c != 0 {
			return c
		}
	}
	switch {
	case pa == "" && pb == "":
		return 0
	case pa == "":
		return 1
	case pb == "":
		return -1
	}
	xa, xb := strings.Split(pa, "."), strings.Split(pb, ".")
	for i := 0; i < min(len(xa), len(xb)); i++ {
		if c := cmpIdent(xa[i], xb[i]); c != 0 {
			return c
		}
	}
	return sign(len(xa) - len(xb))
}

// SemverValid reports whether v (with or without a leading "v") is a
// valid semantic version MAJOR.MINOR.PATCH[-pre][+build].
func SemverValid(v string) bool {
	c, _ := splitSemver(v)
	if len(c) != 3 {
		return false
	}
	for _, x := range c {
		if !allDigits(x) || (len(x) > 1 && x[0] == '0') {
			return false
		}
	}
	return true
}

func splitSemver(v string) (core []string, pre string) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	v, _, _ = strings.Cut(v, "+")
	v, pre, _ = strings.Cut(v, "-")
	return strings.Split(v, "."), pre
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// cmpIdent compares numeric identifiers numerically, numeric before
// non-numeric, and the rest in ASCII order.
func cmpIdent(a, b string) int {
	na, nb := allDigits(a), allDigits(b)
	switch {
	case na && nb:
		return cmpNum(a, b)
	case na:
		return -1
	case nb:
		return 1
	}
	return strings.Compare(a, b)
}
