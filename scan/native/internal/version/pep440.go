package version

import (
	"regexp"
	"strings"
)

// pep440Re is the version pattern of PEP 440 appendix B (packaging's
// VERSION_PATTERN), matched case-insensitively.
var pep440Re = regexp.MustCompile(`(?i)^\s*v?(?:(?:([0-9]+)!)?([0-9]+(?:\.[0-9]+)*)` +
	`(?:[-_\.]?(alpha|a|beta|b|preview|pre|c|rc)[-_\.]?([0-9]+)?)?` +
	`(?:(?:-([0-9]+))|(?:[-_\.]?(post|rev|r)[-_\.]?([0-9]+)?))?` +
	`(?:[-_\.]?(dev)[-_\.]?([0-9]+)?)?)(?:\+([a-z0-9]+(?:[-_\.][a-z0-9]+)*))?\s*$`)

type pep440 struct {
	valid   bool
	epoch   string
	release []string
	// pre: phase 0 = none; 1 a, 2 b, 3 rc.
	prePhase int
	preNum   string
	hasPost  bool
	postNum  string
	hasDev   bool
	devNum   string
	local    []string
	raw      string
}

func parsePEP440(s string) pep440 {
	m := pep440Re.FindStringSubmatch(s)
	if m == nil {
		return pep440{raw: s}
	}
	v := pep440{valid: true, epoch: m[1], release: strings.Split(m[2], ".")}
	if v.epoch == "" {
		v.epoch = "0"
	}
	for len(v.release) > 1 && strings.Trim(v.release[len(v.release)-1], "0") == "" {
		v.release = v.release[:len(v.release)-1]
	}
	switch strings.ToLower(m[3]) {
	case "a", "alpha":
		v.prePhase = 1
	case "b", "beta":
		v.prePhase = 2
	case "rc", "c", "pre", "preview":
		v.prePhase = 3
	}
	v.preNum = orZero(m[4])
	if m[5] != "" {
		v.hasPost, v.postNum = true, m[5]
	} else if m[6] != "" {
		v.hasPost, v.postNum = true, orZero(m[7])
	}
	if m[8] != "" {
		v.hasDev, v.devNum = true, orZero(m[9])
	}
	if m[10] != "" {
		v.local = strings.FieldsFunc(strings.ToLower(m[10]), func(r rune) bool { return r == '.' || r == '-' || r == '_' })
	}
	return v
}

func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}

// PEP440 compares Python package versions as PEP 440 (and the packaging
// library) order them: epoch, release (trailing zeros ignored), then
// X.devN < X.aN < X.bN < X.rcN < X < X.postN, a dev release sorting just
// before the release it precedes, and finally the local version label.
// Strings that are not PEP 440 versions sort before all valid versions, in
// byte order.
func PEP440(a, b string) int {
	x, y := parsePEP440(a), parsePEP440(b)
	switch {
	case !x.valid && !y.valid:
		return strings.Compare(a, b)
	case !x.valid:
		return -1
	case !y.valid:
		return 1
	}
	if c := cmpNum(x.epoch, y.epoch); c != 0 {
		return c
	}
	for i := 0; i < max(len(x.release), len(y.release)); i++ {
		p, q := "0", "0"
		if i < len(x.release) {
			p = x.release[i]
		}
		if i < len(y.release) {
			q = y.release[i]
		}
		if c := cmpNum(p, q); c != 0 {
			return c
		}
	}
	if c := cmpPre(x, y); c != 0 {
		return c
	}
	// Post: absent sorts lowest.
	if c := cmpOptional(x.hasPost, x.postNum, y.hasPost, y.postNum, -1); c != 0 {
		return c
	}
	// Dev: absent sorts highest.
	if c := cmpOptional(x.hasDev, x.devNum, y.hasDev, y.devNum, 1); c != 0 {
		return c
	}
	return cmpLocal(x.local, y.local)
}

// preKey: a dev release without pre or post sorts before any pre-release
// (-inf); no pre-release sorts after all (+inf).
func preKey(v pep440) (rank int, num string) {
	switch {
	case v.prePhase == 0 && !v.hasPost && v.hasDev:
		return -1, "0"
	case v.prePhase == 0:
		return 4, "0"
	}
	return v.prePhase, v.preNum
}

func cmpPre(x, y pep440) int {
	rx, nx := preKey(x)
	ry, ny := preKey(y)
	if rx != ry {
		return sign(rx - ry)
	}
	return cmpNum(nx, ny)
}

func cmpOptional(hx bool, nx string, hy bool, ny string, absent int) int {
	switch {
	case hx && hy:
		return cmpNum(nx, ny)
	case hx == hy:
		return 0
	case !hx:
		return absent
	}
	return -absent
}

func cmpLocal(x, y []string) int {
	for i := 0; i < min(len(x), len(y)); i++ {
		if c := cmpLocalSeg(x[i], y[i]); c != 0 {
			return c
		}
	}
	return sign(len(x) - len(y))
}

func cmpLocalSeg(a, b string) int {
	na, nb := allDigits(a), allDigits(b)
	switch {
	case na && nb:
		return cmpNum(a, b)
	case na:
		return 1 // numeric segments sort after alphanumeric ones
	case nb:
		return -1
	}
	return strings.Compare(a, b)
}

// PEP440Valid reports whether v is a PEP 440 version.
func PEP440Valid(v string) bool { return parsePEP440(v).valid }

// NormalizePyPIName normalises a Python project name as PEP 503 does:
// lower case, runs of '-', '_' and '.' replaced by one '-'.
func NormalizePyPIName(name string) string {
	var b strings.Builder
	sep := false
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '-' || c == '_' || c == '.' {
			sep = true
			continue
		}
		if sep && b.Len() > 0 {
			b.WriteByte('-')
		}
		sep = false
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}
