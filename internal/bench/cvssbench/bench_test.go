package cvssbench

import (
	"testing"

	"github.com/berth-dev/berth/cvss"
	gocvss20 "github.com/pandatix/go-cvss/20"
	gocvss31 "github.com/pandatix/go-cvss/31"
	gocvss40 "github.com/pandatix/go-cvss/40"
)

// Side-by-side parse+score benchmarks: each pair parses the same vector
// and computes the score a caller would use (v3.1: base score, which is
// also berth's Score for this vector; v4.0: Score).

const (
	benchV2  = "AV:N/AC:L/Au:N/C:P/I:P/A:P"
	benchV31 = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
	benchV40 = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"
	// A v4.0 vector with every metric group, scored over all of them.
	benchV40All = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/E:P/CR:L/IR:M/AR:H/MAV:A/MAC:H/MAT:P/MPR:L/MUI:P/MVC:L/MVI:L/MVA:L/MSC:L/MSI:L/MSA:L/S:P/AU:Y/R:I/V:C/RE:H/U:Clear"
)

var sink float64

func BenchmarkV2Berth(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		v, err := cvss.Parse(benchV2)
		if err != nil {
			b.Fatal(err)
		}
		sink = v.BaseScore()
	}
}

func BenchmarkV2Pandatix(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		v, err := gocvss20.ParseVector(benchV2)
		if err != nil {
			b.Fatal(err)
		}
		sink = v.BaseScore()
	}
}

func BenchmarkV31Berth(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		v, err := cvss.Parse(benchV31)
		if err != nil {
			b.Fatal(err)
		}
		sink = v.BaseScore()
	}
}

func BenchmarkV31Pandatix(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		v, err := gocvss31.ParseVector(benchV31)
		if err != nil {
			b.Fatal(err)
		}
		sink = v.BaseScore()
	}
}

func BenchmarkV40Berth(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		v, err := cvss.Parse(benchV40)
		if err != nil {
			b.Fatal(err)
		}
		sink = v.Score()
	}
}

func BenchmarkV40Pandatix(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		v, err := gocvss40.ParseVector(benchV40)
		if err != nil {
			b.Fatal(err)
		}
		sink = v.Score()
	}
}

func BenchmarkV40AllBerth(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		v, err := cvss.Parse(benchV40All)
		if err != nil {
			b.Fatal(err)
		}
		sink = v.Score()
	}
}

func BenchmarkV40AllPandatix(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		v, err := gocvss40.ParseVector(benchV40All)
		if err != nil {
			b.Fatal(err)
		}
		sink = v.Score()
	}
}
