package cvss_test

import (
	"errors"
	"fmt"

	"github.com/berth-dev/berth/cvss"
)

func ExampleParse() {
	v, err := cvss.Parse("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(v.Version(), v.BaseScore(), v.Severity())
	// Output: 3.1 9.8 Critical
}

func ExampleParse_error() {
	_, err := cvss.Parse("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:Q")
	var pe *cvss.ParseError
	if errors.As(err, &pe) {
		fmt.Println(pe.Metric, pe.Reason)
	}
	fmt.Println(errors.Is(err, cvss.ErrInvalidVector))
	fmt.Println(err)
	// Output:
	// A invalid value "Q"
	// true
	// cvss: invalid vector "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:Q": metric "A": invalid value "Q"
}

func ExampleVector_Score() {
	// A v2 vector from the v2 guide with temporal and environmental
	// metrics: Score is the environmental score.
	v2, _ := cvss.Parse("AV:N/AC:L/Au:N/C:N/I:N/A:C/E:F/RL:OF/RC:C/CDP:H/TD:H/CR:M/IR:M/AR:H")
	fmt.Println(v2.BaseScore(), v2.TemporalScore(), v2.EnvironmentalScore(), v2.Score())

	// A v4.0 vector with a threat metric: Score is CVSS-BT.
	v4, _ := cvss.Parse("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:U")
	fmt.Println(v4.BaseScore(), v4.Score(), v4.Nomenclature())
	// Output:
	// 7.8 6.4 9.2 9.2
	// 9.3 8.1 CVSS-BT
}

func ExampleVector_String() {
	// Not-defined metrics are dropped and the specification's order is
	// restored.
	v, _ := cvss.Parse("CVSS:3.0/S:U/AV:N/AC:L/PR:N/UI:N/C:H/I:H/A:H/E:X/CR:H")
	fmt.Println(v)
	// Output: CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/CR:H
}

func ExampleSeverityOf() {
	for _, s := range []float64{0, 0.1, 3.9, 4.0, 6.9, 7.0, 8.9, 9.0, 10} {
		fmt.Print(cvss.SeverityOf(s), " ")
	}
	fmt.Println()
	// Output: None Low Low Medium Medium High High Critical Critical
}

func ExampleHighest() {
	mustParse := func(s string) cvss.Vector {
		v, err := cvss.Parse(s)
		if err != nil {
			panic(err)
		}
		return v
	}
	res, err := cvss.Highest(
		cvss.Rating{Source: cvss.SourceNVD, Vector: mustParse("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N")},
		cvss.Rating{Source: "vendor", Vector: mustParse("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N")},
		cvss.Rating{Source: cvss.SourceGHSA, Vector: mustParse("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:N/VA:N/SC:N/SI:N/SA:N")},
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("winner:", res.Source, res.Score, res.Severity)
	for _, r := range res.Ratings {
		fmt.Println(r.Source, r.Vector.Version(), r.Score)
	}
	// Output:
	// winner: ghsa 8.7 High
	// ghsa 4.0 8.7
	// nvd 3.1 7.5
	// vendor 3.1 5.9
}
