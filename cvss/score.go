package cvss

// BaseScore returns the base score: v2 and v3 base score, or for v4.0 the
// CVSS-B score (base metrics only, threat and environmental metrics
// ignored). It returns 0 for the zero Vector.
func (v Vector) BaseScore() float64 { return tenthsToFloat(v.baseTenths()) }

// TemporalScore returns the v2/v3 temporal score, which equals BaseScore
// when no temporal metric is set. For v4.0, which has no temporal group, it
// returns the CVSS-BT score (base and threat metrics). It returns 0 for
// the zero Vector.
func (v Vector) TemporalScore() float64 {
	switch v.ver {
	case V2:
		return tenthsToFloat(v.temporal2(v.baseTenths2()))
	case V3_0, V3_1:
		return tenthsToFloat(v.temporal3(v.baseTenths3()))
	case V4_0:
		return tenthsToFloat(v.score4(v4Threat))
	}
	return 0
}

// EnvironmentalScore returns the v2/v3 environmental score computed with
// the specification's environmental formula, which also takes the
// temporal metrics into account. Metrics that are not defined take the
// values the specification gives them (requirements 1.0, modified metrics
// equal to the base metrics; in v2 CDP 0 and TD 1.0), so that with no
// environmental metric set the result equals TemporalScore, and BaseScore
// when no temporal metric is set either.
//
// For vectors with no environmental metric this is enforced, because two
// formulas taken literally disagree with it: the v3.1 Scope:Changed
// modified impact (MISS × 0.9731 and a 13th power) gives 10.0 for
// CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H, whose base score is 9.9;
// and v2 caps only AdjustedImpact at 10, which gives 7.1 for
// AV:L/AC:L/Au:N/C:C/I:C/A:C, whose base score is 7.2. As soon as one
// environmental metric is set, the formulas apply as written.
//
// For v4.0 it returns the CVSS-BE score (base and environmental metrics,
// threat metrics ignored). It returns 0 for the zero Vector.
func (v Vector) EnvironmentalScore() float64 {
	switch v.ver {
	case V2:
		return tenthsToFloat(v.envTenths2())
	case V3_0, V3_1:
		return tenthsToFloat(v.envTenths3())
	case V4_0:
		return tenthsToFloat(v.score4(v4Env))
	}
	return 0
}

// Score returns the most specific score of v: for v2 and v3 the
// environmental score (which takes every metric into account); for v4.0
// the score over every metric present, that is CVSS-B, CVSS-BT, CVSS-BE
// or CVSS-BTE as reported by [Vector.Nomenclature]. It returns 0 for the
// zero Vector.
func (v Vector) Score() float64 { return tenthsToFloat(v.scoreTenths()) }

// Severity returns SeverityOf(v.Score()).
func (v Vector) Severity() Severity { return severityOfTenths(v.scoreTenths()) }

func (v *Vector) baseTenths() int64 {
	switch v.ver {
	case V2:
		return v.baseTenths2()
	case V3_0, V3_1:
		return v.baseTenths3()
	case V4_0:
		return v.score4(0)
	}
	return 0
}

func (v *Vector) scoreTenths() int64 {
	switch v.ver {
	case V2:
		return v.envTenths2()
	case V3_0, V3_1:
		return v.envTenths3()
	case V4_0:
		return v.score4(v4Threat | v4Env)
	}
	return 0
}

// Nomenclature returns the CVSS v4.0 nomenclature of the score returned by
// Score: "CVSS-B" when only base metrics are set, "CVSS-BT" with threat
// metrics, "CVSS-BE" with environmental metrics and "CVSS-BTE" with both.
// Supplemental metrics do not count. It returns "" for other versions.
func (v Vector) Nomenclature() string {
	if v.ver != V4_0 {
		return ""
	}
	t := v.at(v4E) != 0
	e := false
	for i := v4CR; i <= v4MSA; i++ {
		if v.at(i) != 0 {
			e = true
			break
		}
	}
	switch {
	case t && e:
		return "CVSS-BTE"
	case t:
		return "CVSS-BT"
	case e:
		return "CVSS-BE"
	}
	return "CVSS-B"
}
