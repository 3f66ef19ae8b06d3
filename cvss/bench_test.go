package cvss_test

import (
	"testing"

	"github.com/berth-dev/berth/cvss"
)

var sink float64

func benchParseScore(b *testing.B, s string) {
	b.ReportAllocs()
	for b.Loop() {
		v, err := cvss.Parse(s)
		if err != nil {
			b.Fatal(err)
		}
		sink = v.Score()
	}
}

func BenchmarkParseScoreV2(b *testing.B) {
	benchParseScore(b, "AV:N/AC:L/Au:N/C:N/I:N/A:C/E:F/RL:OF/RC:C/CDP:H/TD:H/CR:M/IR:M/AR:H")
}

func BenchmarkParseScoreV31(b *testing.B) {
	benchParseScore(b, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")
}

func BenchmarkParseScoreV31Changed(b *testing.B) {
	benchParseScore(b, "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H")
}

func BenchmarkParseScoreV40(b *testing.B) {
	benchParseScore(b, "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N")
}

func BenchmarkParseScoreV40All(b *testing.B) {
	benchParseScore(b, "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/E:P/CR:L/IR:M/AR:H/MAV:A/MAC:H/MAT:P/MPR:L/MUI:P/MVC:L/MVI:L/MVA:L/MSC:L/MSI:L/MSA:L/S:P/AU:Y/R:I/V:C/RE:H/U:Clear")
}

func BenchmarkString(b *testing.B) {
	v, _ := cvss.Parse("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N")
	b.ReportAllocs()
	for b.Loop() {
		_ = v.String()
	}
}
