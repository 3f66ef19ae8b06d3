package auth

import (
	"errors"
	"path"
	"strings"
)

// Match reports whether name matches pattern, a scope name pattern:
// path.Match syntax applied per '/'-separated segment, so that "*", "?"
// and character classes never match a '/', plus "**" as a whole segment,
// which matches zero or more whole segments. A malformed pattern matches
// nothing. Match runs in time proportional to the product of the segment
// counts, whatever the pattern.
func Match(pattern, name string) bool {
	if !strings.Contains(pattern, "**") {
		ok, err := path.Match(pattern, name)
		return err == nil && ok
	}
	p := strings.Split(pattern, "/")
	n := strings.Split(name, "/")
	// m[j] reports whether p[i:] matches n[j:], computed from the last
	// pattern segment backwards.
	m := make([]bool, len(n)+1)
	m[len(n)] = true
	for i := len(p) - 1; i >= 0; i-- {
		next := m
		m = make([]bool, len(n)+1)
		if p[i] == "**" {
			// ** matches n[j:k] for any k ≥ j.
			acc := false
			for j := len(n); j >= 0; j-- {
				acc = acc || next[j]
				m[j] = acc
			}
			continue
		}
		for j := 0; j < len(n); j++ {
			if !next[j+1] {
				continue
			}
			ok, err := path.Match(p[i], n[j])
			if err != nil {
				return false
			}
			m[j] = ok
		}
	}
	return m[0]
}

// ErrBadPattern reports a malformed scope name pattern.
var ErrBadPattern = errors.New("auth: malformed name pattern")

// ValidatePattern returns ErrBadPattern when pattern is not a valid scope
// name pattern (see Match): an empty pattern or segment, or a malformed
// path.Match segment.
func ValidatePattern(pattern string) error {
	if pattern == "" {
		return ErrBadPattern
	}
	for seg := range strings.SplitSeq(pattern, "/") {
		if seg == "" {
			return ErrBadPattern
		}
		if _, err := path.Match(seg, ""); err != nil {
			return ErrBadPattern
		}
	}
	return nil
}

// IsPattern reports whether name contains pattern syntax ('*', '?', '['
// or '\\'), that is whether it may match more than itself.
func IsPattern(name string) bool { return strings.ContainsAny(name, `*?[\`) }

// Covers reports whether the scopes held allow action on the resource
// named name (a literal name, not a pattern) of type typ.
func Covers(held []Scope, typ, name, action string) bool {
	for _, s := range held {
		if s.Type == typ && s.Allows(action) && Match(s.Name, name) {
			return true
		}
	}
	return false
}
