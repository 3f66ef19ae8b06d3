package cvss_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/berth-dev/berth/cvss"
)

// FuzzParse checks that Parse never panics, that every error is a
// *ParseError, and that accepted vectors round-trip through String with
// the same scores. Seeds live in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
		"CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H/E:F/RL:O/RC:C/CR:H/MS:U",
		"AV:N/AC:L/Au:N/C:N/I:N/A:C/E:F/RL:OF/RC:C/CDP:H/TD:H/CR:M/IR:M/AR:H",
		"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:U/MSI:S/U:Clear",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := cvss.Parse(s)
		if err != nil {
			var pe *cvss.ParseError
			if !errors.As(err, &pe) || !errors.Is(err, cvss.ErrInvalidVector) || pe.Vector != s {
				t.Fatalf("Parse(%q): unexpected error %#v", s, err)
			}
			if !strings.HasPrefix(err.Error(), "cvss: ") {
				t.Fatalf("Parse(%q): message %q", s, err)
			}
			if v != (cvss.Vector{}) {
				t.Fatalf("Parse(%q): non-zero vector with error", s)
			}
			return
		}
		c := v.String()
		w, err := cvss.Parse(c)
		if err != nil {
			t.Fatalf("Parse(%q).String() = %q does not parse: %v", s, c, err)
		}
		if w != v || w.String() != c {
			t.Fatalf("round trip of %q: %q -> %q", s, c, w.String())
		}
		for _, x := range []float64{v.BaseScore(), v.TemporalScore(), v.EnvironmentalScore(), v.Score()} {
			if !(x >= 0 && x <= 10) {
				t.Fatalf("%q: score %v out of range", s, x)
			}
		}
		if v.Score() != w.Score() || v.BaseScore() != w.BaseScore() ||
			v.TemporalScore() != w.TemporalScore() || v.EnvironmentalScore() != w.EnvironmentalScore() {
			t.Fatalf("%q and %q score differently", s, c)
		}
		if v.Severity() != cvss.SeverityOf(v.Score()) {
			t.Fatalf("%q: severity mismatch", s)
		}
		b, _ := v.MarshalText()
		var u cvss.Vector
		if err := u.UnmarshalText(b); err != nil || u != v {
			t.Fatalf("%q: text round trip: %v", s, err)
		}
	})
}
