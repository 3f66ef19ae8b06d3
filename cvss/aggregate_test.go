package cvss_test

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/berth-dev/berth/cvss"
)

func mustParse(t testing.TB, s string) cvss.Vector {
	t.Helper()
	v, err := cvss.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestHighest(t *testing.T) {
	v31 := mustParse(t, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N") // 7.5
	v30 := mustParse(t, "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N") // 7.5
	v2 := mustParse(t, "AV:N/AC:L/Au:N/C:P/I:P/A:P")                    // 7.5
	v4 := mustParse(t, "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:N/VA:N/SC:N/SI:N/SA:N")
	low := mustParse(t, "CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N")

	cases := []struct {
		name    string
		ratings []cvss.Rating
		winner  string
		order   []string
	}{
		{"single", []cvss.Rating{{"nvd", v31}}, "nvd", []string{"nvd"}},
		{"higher score wins", []cvss.Rating{{"nvd", low}, {"vendor", v31}}, "vendor", []string{"vendor", "nvd"}},
		{"newer version breaks ties", []cvss.Rating{{"a", v2}, {"b", v30}, {"c", v31}}, "c", []string{"c", "b", "a"}},
		{"v4 wins on score", []cvss.Rating{{"nvd", v31}, {"ghsa", v4}}, "ghsa", []string{"ghsa", "nvd"}},
		{"source precedence", []cvss.Rating{{"vendor", v31}, {"osv", v31}, {"GHSA", v31}, {"NVD", v31}}, "NVD", []string{"NVD", "GHSA", "osv", "vendor"}},
		{"then source name", []cvss.Rating{{"zeta", v31}, {"Alpha", v31}, {"beta", v31}}, "Alpha", []string{"Alpha", "beta", "zeta"}},
		{"then argument order", []cvss.Rating{{"x", v31}, {"x", v31}}, "x", []string{"x", "x"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := cvss.Highest(c.ratings...)
			if err != nil {
				t.Fatal(err)
			}
			if res.Source != c.winner {
				t.Errorf("winner %q, want %q", res.Source, c.winner)
			}
			if len(res.Ratings) != len(c.ratings) {
				t.Fatalf("%d ratings, want %d", len(res.Ratings), len(c.ratings))
			}
			for i, r := range res.Ratings {
				if r.Source != c.order[i] {
					t.Errorf("rank %d: %q, want %q", i, r.Source, c.order[i])
				}
				if r.Score != r.Vector.Score() || r.Severity != r.Vector.Severity() {
					t.Errorf("%s: score not recomputed", r.Source)
				}
			}
			if res.Scored != res.Ratings[0] {
				t.Error("winner differs from first rating")
			}
		})
	}
}

// TestHighestDeterministic checks that the ranking does not depend on the
// order of the arguments.
func TestHighestDeterministic(t *testing.T) {
	vs := []string{
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N",
		"CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N",
		"AV:N/AC:L/Au:N/C:P/I:P/A:P",
		"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:N/VA:N/SC:N/SI:N/SA:N",
		"CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N",
	}
	var ratings []cvss.Rating
	for i, s := range vs {
		for _, src := range []string{"nvd", "ghsa", "vendor", "Red Hat"} {
			ratings = append(ratings, cvss.Rating{Source: src, Vector: mustParse(t, vs[(i+len(src))%len(vs)])})
		}
		_ = s
	}
	want, err := cvss.Highest(ratings...)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 1))
	for range 50 {
		r.Shuffle(len(ratings), func(i, j int) { ratings[i], ratings[j] = ratings[j], ratings[i] })
		got, _ := cvss.Highest(ratings...)
		for i := range got.Ratings {
			if got.Ratings[i] != want.Ratings[i] {
				t.Fatalf("rank %d differs after shuffle: %+v vs %+v", i, got.Ratings[i], want.Ratings[i])
			}
		}
	}
}

func TestHighestErrors(t *testing.T) {
	if _, err := cvss.Highest(); !errors.Is(err, cvss.ErrNoRatings) {
		t.Errorf("no ratings: %v", err)
	}
	if _, err := cvss.Highest(cvss.Rating{Source: "nvd"}); err == nil {
		t.Error("zero vector accepted")
	}
	if _, err := cvss.Highest(cvss.Rating{Vector: mustParse(t, "AV:N/AC:L/Au:N/C:P/I:P/A:P")}); err == nil {
		t.Error("empty source accepted")
	}
}
