// Package ociname validates the names the OCI distribution specification
// defines: repository names and tags.
package ociname

import (
	"fmt"

	"github.com/berth-dev/berth/internal/errcode"
)

// MaxNameLength bounds a repository name. The specification bounds host
// plus name at 255 characters; the registry does not know the host its
// clients use, so it applies the bound to the name alone.
const MaxNameLength = 255

// Error reports an invalid name or tag.
type Error struct {
	Kind   string // "repository name" or "tag"
	Value  string
	Reason string
}

func (e *Error) Error() string {
	v := e.Value
	if len(v) > 80 {
		v = v[:80] + "…"
	}
	return fmt.Sprintf("invalid %s %q: %s", e.Kind, v, e.Reason)
}

// ErrorCode implements errcode.Coder: InvalidArgument.
func (e *Error) ErrorCode() errcode.Code { return errcode.InvalidArgument }

func isAlnum(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }

// ValidateName checks a repository name against the specification's
// grammar: path components of [a-z0-9]+ joined by "/", each possibly
// containing separators ".", "_", "__" or runs of "-" between
// alphanumerics.
//
//	[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
func ValidateName(name string) error {
	bad := func(reason string) error { return &Error{Kind: "repository name", Value: name, Reason: reason} }
	if name == "" {
		return bad("empty")
	}
	if len(name) > MaxNameLength {
		return bad(fmt.Sprintf("longer than %d characters", MaxNameLength))
	}
	i := 0
	for {
		// One path component.
		if i >= len(name) || !isAlnum(name[i]) {
			return bad("each path component must start with a lower-case letter or digit")
		}
		for i < len(name) && isAlnum(name[i]) {
			i++
		}
		for i < len(name) && name[i] != '/' {
			// A separator, then alphanumerics.
			switch {
			case name[i] == '.':
				i++
			case name[i] == '_':
				i++
				if i < len(name) && name[i] == '_' {
					i++
				}
			case name[i] == '-':
				for i < len(name) && name[i] == '-' {
					i++
				}
			default:
				return bad(fmt.Sprintf("character %q is not allowed", name[i]))
			}
			if i >= len(name) || !isAlnum(name[i]) {
				return bad("a separator must be followed by a lower-case letter or digit")
			}
			for i < len(name) && isAlnum(name[i]) {
				i++
			}
		}
		if i == len(name) {
			return nil
		}
		i++ // the '/'
	}
}

// ValidateTag checks a tag: [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}.
func ValidateTag(tag string) error {
	bad := func(reason string) error { return &Error{Kind: "tag", Value: tag, Reason: reason} }
	if tag == "" {
		return bad("empty")
	}
	if len(tag) > 128 {
		return bad("longer than 128 characters")
	}
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || i > 0 && (c == '.' || c == '-')
		if !ok {
			return bad(fmt.Sprintf("character %q is not allowed at position %d", c, i))
		}
	}
	return nil
}
