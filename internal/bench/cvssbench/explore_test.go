package cvssbench

import (
	"strings"
	"testing"

	"github.com/berth-dev/berth/cvss"
	gocvss20 "github.com/pandatix/go-cvss/20"
	gocvss30 "github.com/pandatix/go-cvss/30"
	gocvss31 "github.com/pandatix/go-cvss/31"
	gocvss40 "github.com/pandatix/go-cvss/40"
)

func TestExplore(t *testing.T) {
	count := map[string]int{}
	shown := map[string]int{}
	report := func(kind, s string, got, want float64) {
		count[kind]++
		if shown[kind] < 5 {
			shown[kind]++
			t.Logf("%s %s: berth %v pandatix %v", kind, s, got, want)
		}
	}
	each("CVSS:3.1/", concat(v3Base, v3Temporal), func(s string) {
		v, err := cvss.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		p, err := gocvss31.ParseVector(s)
		if err != nil {
			t.Fatal(err)
		}
		if v.BaseScore() != p.BaseScore() {
			report("3.1 base", s, v.BaseScore(), p.BaseScore())
		}
		if v.TemporalScore() != p.TemporalScore() {
			report("3.1 temporal", s, v.TemporalScore(), p.TemporalScore())
		}
		if v.EnvironmentalScore() != p.EnvironmentalScore() {
			report("3.1 env", s, v.EnvironmentalScore(), p.EnvironmentalScore())
		}
	})
	each("CVSS:3.0/", concat(v3Base, v3Temporal), func(s string) {
		v, _ := cvss.Parse(s)
		p, _ := gocvss30.ParseVector(s)
		if v.BaseScore() != p.BaseScore() {
			report("3.0 base", s, v.BaseScore(), p.BaseScore())
		}
		if v.TemporalScore() != p.TemporalScore() {
			report("3.0 temporal", s, v.TemporalScore(), p.TemporalScore())
		}
		if v.EnvironmentalScore() != p.EnvironmentalScore() {
			report("3.0 env", s, v.EnvironmentalScore(), p.EnvironmentalScore())
		}
	})
	each("", concat(v2Base, v2Temporal), func(s string) {
		v, err := cvss.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		p, err := gocvss20.ParseVector(s)
		if err != nil {
			t.Fatal(err)
		}
		if v.BaseScore() != p.BaseScore() {
			report("2 base", s, v.BaseScore(), p.BaseScore())
		}
		if v.TemporalScore() != p.TemporalScore() {
			report("2 temporal", s, v.TemporalScore(), p.TemporalScore())
		}
	})
	each("", concat(v2Base, ndGroup(v2Temporal)[:0], v2EnvND), func(s string) {
		s = strings.Replace(s, "/CDP:", "/E:ND/RL:ND/RC:ND/CDP:", 1)
		v, _ := cvss.Parse(s)
		p, _ := gocvss20.ParseVector(s)
		if v.EnvironmentalScore() != p.EnvironmentalScore() {
			report("2 env", s, v.EnvironmentalScore(), p.EnvironmentalScore())
		}
	})
	each("CVSS:4.0/", v4Base, func(s string) {
		v, err := cvss.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		p, err := gocvss40.ParseVector(s)
		if err != nil {
			t.Fatal(err)
		}
		if v.Score() != p.Score() {
			report("4 base", s, v.Score(), p.Score())
		}
	})
	t.Log(count)
}

func ndGroup(s []metricSpace) []metricSpace { return s }

var v2EnvND = []metricSpace{
	{"CDP", []string{"ND", "N", "L", "LM", "MH", "H"}},
	{"TD", []string{"ND", "N", "L", "M", "H"}},
	{"CR", []string{"ND", "L", "M", "H"}},
	{"IR", []string{"ND", "L", "M", "H"}},
	{"AR", []string{"ND", "L", "M", "H"}},
}
