package version

import "strings"

// Dpkg compares Debian versions ([epoch:]upstream[-revision]) as dpkg
// does: epochs numerically, then upstream version and revision with
// dpkg's verrevcmp, in which '~' sorts before everything, even the end of
// the string, letters sort before other characters, and digit runs
// compare numerically.
func Dpkg(a, b string) int {
	ea, ua, ra := splitDpkg(a)
	eb, ub, rb := splitDpkg(b)
	if c := cmpNum(ea, eb); c != 0 {
		return c
	}
	if c := verrevcmp(ua, ub); c != 0 {
		return c
	}
	return verrevcmp(ra, rb)
}

// DpkgValid reports whether v is a syntactically valid Debian version.
func DpkgValid(v string) bool {
	e, u, _ := splitDpkg(v)
	if u == "" || !isDigit(u[0]) {
		return false
	}
	for i := 0; i < len(e); i++ {
		if !isDigit(e[i]) {
			return false
		}
	}
	return !strings.ContainsAny(v, " \t\n")
}

func splitDpkg(v string) (epoch, upstream, revision string) {
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, ':'); i >= 0 {
		epoch, v = v[:i], v[i+1:]
	}
	if i := strings.LastIndexByte(v, '-'); i >= 0 {
		v, revision = v[:i], v[i+1:]
	}
	if epoch == "" {
		epoch = "0"
	}
	return epoch, v, revision
}

func dpkgOrder(s string, i int) int {
	if i >= len(s) {
		return 0
	}
	c := s[i]
	switch {
	case isDigit(c):
		return 0
	case isAlpha(c):
		return int(c)
	case c == '~':
		return -1
	}
	return int(c) + 256
}

func verrevcmp(a, b string) int {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		for (i < len(a) && !isDigit(a[i])) || (j < len(b) && !isDigit(b[j])) {
			ac, bc := dpkgOrder(a, i), dpkgOrder(b, j)
			if ac != bc {
				return sign(ac - bc)
			}
			i++
			j++
		}
		i, j = min(i, len(a)), min(j, len(b))
		si := i
		for i < len(a) && isDigit(a[i]) {
			i++
		}
		sj := j
		for j < len(b) && isDigit(b[j]) {
			j++
		}
		if c := cmpNum(a[si:i], b[sj:j]); c != 0 {
			return c
		}
	}
	return 0
}
