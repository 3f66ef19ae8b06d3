package version

import "strings"

// apk token types, in the order apk-tools compares them.
const (
	tokInvalid = iota - 1
	tokDigitOrZero
	tokDigit
	tokLetter
	tokSuffix
	tokSuffixNo
	tokRevisionNo
	tokEnd
)

var (
	preSuffixes  = []string{"alpha", "beta", "pre", "rc"}
	postSuffixes = []string{"cvs", "svn", "git", "hg", "p"}
)

type apkToken struct {
	typ int
	num string // digits for digit, suffix number and revision tokens
	val int    // letter or suffix value
}

type apkLexer struct {
	s   string
	typ int // type of the next token
}

func (l *apkLexer) next() apkToken {
	t := apkToken{typ: l.typ}
	if l.typ == tokEnd || l.typ == tokInvalid {
		return t
	}
	if l.s == "" {
		l.typ = tokEnd
		t.typ = tokEnd
		return t
	}
	switch l.typ {
	case tokDigitOrZero, tokDigit, tokSuffixNo, tokRevisionNo:
		i := 0
		for i < len(l.s) && isDigit(l.s[i]) {
			i++
		}
		if i == 0 {
			t.typ = tokInvalid
			l.typ = tokInvalid
			return t
		}
		t.num, l.s = l.s[:i], l.s[i:]
	case tokLetter:
		t.val = int(l.s[0])
		l.s = l.s[1:]
	case tokSuffix:
		i := 0
		for i < len(l.s) && 'a' <= l.s[i] && l.s[i] <= 'z' {
			i++
		}
		word := l.s[:i]
		l.s = l.s[i:]
		t.val = 0
		found := false
		for k, p := range preSuffixes {
			if word == p {
				t.val, found = k-len(preSuffixes), true
			}
		}
		for k, p := range postSuffixes {
			if word == p {
				t.val, found = k+1, true
			}
		}
		if !found {
			t.typ = tokInvalid
			l.typ = tokInvalid
			return t
		}
	}
	// Decide the type of the following token.
	switch {
	case l.s == "":
		l.typ = tokEnd
	case l.s[0] == '.' && (t.typ == tokDigitOrZero || t.typ == tokDigit):
		l.s = l.s[1:]
		l.typ = tokDigitOrZero
	case isAlpha(l.s[0]) && 'a' <= l.s[0] && l.s[0] <= 'z' && (t.typ == tokDigitOrZero || t.typ == tokDigit):
		l.typ = tokLetter
	case isDigit(l.s[0]) && t.typ == tokSuffix:
		l.typ = tokSuffixNo
	case l.s[0] == '_' && t.typ != tokRevisionNo:
		l.s = l.s[1:]
		l.typ = tokSuffix
	case strings.HasPrefix(l.s, "-r") && t.typ != tokRevisionNo:
		l.s = l.s[2:]
		l.typ = tokRevisionNo
	default:
		l.typ = tokInvalid
	}
	return t
}

// Apk compares Alpine package versions as apk-tools does:
// number{.number}[letter]{_suffix[number]}[-rN]. Pre-release suffixes
// (_alpha < _beta < _pre < _rc) sort before the plain version, post-release
// ones (_cvs < _svn < _git < _hg < _p) after it; numeric components after
// the first that start with '0' compare as decimal fractions; -rN is the
// package revision.
func Apk(a, b string) int {
	la := apkLexer{s: strings.TrimSpace(a), typ: tokDigit}
	lb := apkLexer{s: strings.TrimSpace(b), typ: tokDigit}
	var ta, tb apkToken
	for {
		ta, tb = la.next(), lb.next()
		if ta.typ != tb.typ || ta.typ == tokEnd || ta.typ == tokInvalid {
			break
		}
		if c := cmpApkValue(ta, tb); c != 0 {
			return c
		}
	}
	if ta.typ == tb.typ {
		if ta.typ == tokInvalid {
			// Both malformed at the same place: fall back to byte order
			// of what is left, for a deterministic total order.
			return strings.Compare(la.s, lb.s)
		}
		return 0
	}
	// One version continues where the other ends or differs in kind: the
	// longer one is greater unless it continues with a pre-release
	// suffix.
	if ta.typ == tokSuffix && ta.val < 0 {
		return -1
	}
	if tb.typ == tokSuffix && tb.val < 0 {
		return 1
	}
	if ta.typ > tb.typ {
		return -1
	}
	return 1
}

func cmpApkValue(a, b apkToken) int {
	switch a.typ {
	case tokDigitOrZero:
		if (len(a.num) > 0 && a.num[0] == '0') || (len(b.num) > 0 && b.num[0] == '0') {
			// Fractional comparison: "1.02" < "1.1".
			x, y := strings.TrimRight(a.num, "0"), strings.TrimRight(b.num, "0")
			return strings.Compare(x, y)
		}
		return cmpNum(a.num, b.num)
	case tokDigit, tokSuffixNo, tokRevisionNo:
		return cmpNum(a.num, b.num)
	}
	return sign(a.val - b.val)
}

// ApkValid reports whether v is a syntactically valid apk version.
func ApkValid(v string) bool {
	l := apkLexer{s: strings.TrimSpace(v), typ: tokDigit}
	for {
		t := l.next()
		switch t.typ {
		case tokEnd:
			return true
		case tokInvalid:
			return false
		}
	}
}
