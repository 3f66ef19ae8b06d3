package ociname

import (
	"regexp"
	"strings"
	"testing"
)

var nameRE = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
var tagRE = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)

func TestNames(t *testing.T) {
	good := []string{"a", "library/ubuntu", "a/b/c", "a.b", "a_b", "a__b", "a---b", "team-1/app.v2_x__y", strings.Repeat("a", 255)}
	bad := []string{"", "A", "a/", "/a", "a//b", "a..b", "a___b", "-a", "a-", "a/.b", "a.", "a b", "ä", strings.Repeat("a", 256), "a/B"}
	for _, n := range good {
		if err := ValidateName(n); err != nil {
			t.Errorf("ValidateName(%q) = %v", n, err)
		}
	}
	for _, n := range bad {
		if err := ValidateName(n); err == nil {
			t.Errorf("ValidateName(%q) = nil", n)
		}
	}
}

func TestTags(t *testing.T) {
	for _, s := range []string{"latest", "v1.0", "_x", "A-b.c_d", strings.Repeat("t", 128)} {
		if err := ValidateTag(s); err != nil {
			t.Errorf("ValidateTag(%q) = %v", s, err)
		}
	}
	for _, s := range []string{"", ".x", "-x", "a/b", "a:b", strings.Repeat("t", 129), "sha256:abc"} {
		if err := ValidateTag(s); err == nil {
			t.Errorf("ValidateTag(%q) = nil", s)
		}
	}
}

// The hand-written validators agree with the specification's regular
// expressions on every input.
func FuzzName(f *testing.F) {
	for _, s := range []string{"a/b", "a__b", "a___b", "a-b", "a.-b", "x/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := nameRE.MatchString(s) && len(s) <= MaxNameLength
		if got := ValidateName(s) == nil; got != want {
			t.Fatalf("ValidateName(%q) valid=%v, the grammar says %v", s, got, want)
		}
	})
}

func FuzzTag(f *testing.F) {
	for _, s := range []string{"latest", ".x", "a.b-c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := ValidateTag(s) == nil, tagRE.MatchString(s); got != want {
			t.Fatalf("ValidateTag(%q) valid=%v, the grammar says %v", s, got, want)
		}
	})
}
