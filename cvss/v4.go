package cvss

// CVSS v4.0 scoring: section 8 of the specification and the FIRST
// reference calculator (cvss_score.js). The reference computes in float64
// and rounds with Math.round((value + 1e-6) × 10) / 10. Here the same
// quantities are computed exactly, as a fraction over the common
// denominator ∏ max-severity depths × number of lower MacroVectors
// (at most 5 × 2 × 10 × 6 × 5 = 3000), and rounded half up. The result is
// the same: a fraction with such a denominator that is not a tie lies at
// least 1/60000 away from one, far beyond the 10^-6 guard, which only
// undoes float64 error at exact ties. The transcription of cvss_score.js
// in internal/bench/cvssbench agrees on every base vector and on a large
// random sample.

// Max-composed vectors (max_composed.js) as severity levels in tenths, in
// the reference's order; the first one that the scored vector does not
// exceed in any metric is used.
var (
	maxEQ1 = [3][][3]int8{ // AV PR UI
		{{0, 0, 0}},                       // AV:N/PR:N/UI:N
		{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}, // AV:A/PR:N/UI:N, AV:N/PR:L/UI:N, AV:N/PR:N/UI:P
		{{3, 0, 0}, {1, 1, 1}},            // AV:P/PR:N/UI:N, AV:A/PR:L/UI:P
	}
	maxEQ2 = [2][][2]int8{ // AC AT
		{{0, 0}},         // AC:L/AT:N
		{{1, 0}, {0, 1}}, // AC:H/AT:N, AC:L/AT:P
	}
	maxEQ3EQ6 = [3][2][][6]int8{ // VC VI VA CR IR AR
		{
			{{0, 0, 0, 0, 0, 0}},                     // VC:H/VI:H/VA:H/CR:H/IR:H/AR:H
			{{0, 0, 1, 1, 1, 0}, {0, 0, 0, 1, 1, 1}}, // VC:H/VI:H/VA:L/CR:M/IR:M/AR:H, VC:H/VI:H/VA:H/CR:M/IR:M/AR:M
		},
		{
			{{1, 0, 0, 0, 0, 0}, {0, 1, 0, 0, 0, 0}}, // VC:L/VI:H/VA:H/CR:H/IR:H/AR:H, VC:H/VI:L/VA:H/CR:H/IR:H/AR:H
			{
				{1, 0, 1, 0, 1, 0}, // VC:L/VI:H/VA:L/CR:H/IR:M/AR:H
				{1, 0, 0, 0, 1, 1}, // VC:L/VI:H/VA:H/CR:H/IR:M/AR:M
				{0, 1, 0, 1, 0, 1}, // VC:H/VI:L/VA:H/CR:M/IR:H/AR:M
				{0, 1, 1, 1, 0, 0}, // VC:H/VI:L/VA:L/CR:M/IR:H/AR:H
				{1, 1, 0, 0, 0, 1}, // VC:L/VI:L/VA:H/CR:H/IR:H/AR:M
			},
		},
		{
			nil,                  // EQ3=2 with EQ6=0 does not exist
			{{1, 1, 1, 0, 0, 0}}, // VC:L/VI:L/VA:L/CR:H/IR:H/AR:H
		},
	}
	maxEQ4 = [3][3]int8{ // SC SI SA
		{1, 0, 0}, // SC:H/SI:S/SA:S
		{1, 1, 1}, // SC:H/SI:H/SA:H
		{2, 2, 2}, // SC:L/SI:L/SA:L
	}
)

// Max severity depths (max_severity.js), in tenths.
var (
	maxSeverityEQ1    = [3]int64{1, 4, 5}
	maxSeverityEQ2    = [2]int64{1, 2}
	maxSeverityEQ3EQ6 = [3][2]int64{{7, 6}, {8, 8}, {0, 10}}
	maxSeverityEQ4    = [3]int64{6, 5, 4}
)

// v4Levels holds the effective metric values of a v4.0 vector as the
// severity levels of cvss_score.js (in tenths: AV N=0 A=1 L=2 P=3, ...).
type v4Levels struct {
	av, ac, at, pr, ui int8
	vc, vi, va         int8
	sc, si, sa         int8 // SC: H=1 L=2 N=3; SI, SA: S=0 H=1 L=2 N=3
	cr, ir, ar         int8 // H=0 M=1 L=2; not defined counts as H
	e                  int8 // A=0 P=1 U=2; not defined counts as A
}

// Metric groups used when a v4.0 vector is scored.
const (
	v4Threat = 1 << iota
	v4Env
)

func (v *Vector) levels4(groups int) v4Levels {
	eff := func(base, mod int) int8 {
		if groups&v4Env != 0 && v.at(mod) != 0 {
			return int8(v.at(mod)) - 1
		}
		return int8(v.at(base)) - 1
	}
	l := v4Levels{
		av: eff(v4AV, v4MAV), ac: eff(v4AC, v4MAC), at: eff(v4AT, v4MAT),
		pr: eff(v4PR, v4MPR), ui: eff(v4UI, v4MUI),
		vc: eff(v4VC, v4MVC), vi: eff(v4VI, v4MVI), va: eff(v4VA, v4MVA),
		sc: eff(v4SC, v4MSC) + 1,
		si: int8(v.at(v4SI)), sa: int8(v.at(v4SA)),
	}
	if groups&v4Env != 0 {
		if c := v.at(v4MSI); c != 0 {
			l.si = int8(c) - 1 // S H L N
		}
		if c := v.at(v4MSA); c != 0 {
			l.sa = int8(c) - 1
		}
		req := func(c uint8) int8 {
			if c == 0 {
				return 0
			}
			return int8(c) - 1
		}
		l.cr, l.ir, l.ar = req(v.at(v4CR)), req(v.at(v4IR)), req(v.at(v4AR))
	}
	if groups&v4Threat != 0 && v.at(v4E) != 0 {
		l.e = int8(v.at(v4E)) - 1
	}
	return l
}

// macroVector returns the EQ1..EQ6 levels (Tables 24-29).
func (l *v4Levels) macroVector() (eq1, eq2, eq3, eq4, eq5, eq6 int) {
	const n, p = 0, 3
	switch {
	case l.av == n && l.pr == n && l.ui == n:
		eq1 = 0
	case (l.av == n || l.pr == n || l.ui == n) && l.av != p:
		eq1 = 1
	default:
		eq1 = 2
	}
	if !(l.ac == 0 && l.at == 0) {
		eq2 = 1
	}
	const h = 0
	switch {
	case l.vc == h && l.vi == h:
		eq3 = 0
	case l.vc == h || l.vi == h || l.va == h:
		eq3 = 1
	default:
		eq3 = 2
	}
	switch {
	case l.si == 0 || l.sa == 0: // MSI:S or MSA:S
		eq4 = 0
	case l.sc == 1 || l.si == 1 || l.sa == 1:
		eq4 = 1
	default:
		eq4 = 2
	}
	eq5 = int(l.e)
	if !(l.cr == h && l.vc == h || l.ir == h && l.vi == h || l.ar == h && l.va == h) {
		eq6 = 1
	}
	return
}

// score4 returns the v4.0 score in tenths using the base metrics and the
// given metric groups.
func (v *Vector) score4(groups int) int64 {
	l := v.levels4(groups)
	if l.vc == 2 && l.vi == 2 && l.va == 2 && l.sc == 3 && l.si == 3 && l.sa == 3 {
		return 0 // no impact on any system
	}
	eq1, eq2, eq3, eq4, eq5, eq6 := l.macroVector()
	value := int64(macroScore[eq1][eq2][eq3][eq4][eq5][eq6])

	// Scores of the next lower MacroVectors; -1 when there is none.
	lower1 := int64(macroScore[eq1+1][eq2][eq3][eq4][eq5][eq6])
	lower2 := int64(macroScore[eq1][eq2+1][eq3][eq4][eq5][eq6])
	var lower36 int64
	switch {
	case eq3 == 0 && eq6 == 0:
		// 00 → 01 or 10: the reference takes left if left > right.
		left := int64(macroScore[eq1][eq2][eq3][eq4][eq5][eq6+1])
		right := int64(macroScore[eq1][eq2][eq3+1][eq4][eq5][eq6])
		lower36 = right
		if left > right {
			lower36 = left
		}
	case eq3 == 1 && eq6 == 0: // 10 → 11
		lower36 = int64(macroScore[eq1][eq2][eq3][eq4][eq5][eq6+1])
	case eq3 == 2 && eq6 == 1: // 21 → 32 does not exist
		lower36 = -1
	default: // 01 → 11, 11 → 21
		lower36 = int64(macroScore[eq1][eq2][eq3+1][eq4][eq5][eq6])
	}
	lower4 := int64(macroScore[eq1][eq2][eq3][eq4+1][eq5][eq6])
	lower5 := int64(macroScore[eq1][eq2][eq3][eq4][eq5+1][eq6])

	// Severity distances to the first max-composed vector that the scored
	// vector does not exceed. If there is none, the reference keeps the
	// distances to the last candidate, and so does this loop.
	var d1, d2, d36, d4 int64
	cands3 := maxEQ3EQ6[eq3][eq6]
search:
	for _, m1 := range maxEQ1[eq1] {
		for _, m2 := range maxEQ2[eq2] {
			for _, m3 := range cands3 {
				for _, m4 := range maxEQ4[eq4 : eq4+1] {
					dav, dpr, dui := l.av-m1[0], l.pr-m1[1], l.ui-m1[2]
					dac, dat := l.ac-m2[0], l.at-m2[1]
					dvc, dvi, dva := l.vc-m3[0], l.vi-m3[1], l.va-m3[2]
					dcr, dir, dar := l.cr-m3[3], l.ir-m3[4], l.ar-m3[5]
					dsc, dsi, dsa := l.sc-m4[0], l.si-m4[1], l.sa-m4[2]
					d1 = int64(dav + dpr + dui)
					d2 = int64(dac + dat)
					d36 = int64(dvc + dvi + dva + dcr + dir + dar)
					d4 = int64(dsc + dsi + dsa)
					if dav < 0 || dpr < 0 || dui < 0 || dac < 0 || dat < 0 ||
						dvc < 0 || dvi < 0 || dva < 0 || dsc < 0 || dsi < 0 || dsa < 0 ||
						dcr < 0 || dir < 0 || dar < 0 {
						continue
					}
					break search
				}
			}
		}
	}

	// value − mean over the existing lower MacroVectors of
	// (value − lower) × distance / depth, with exact rationals: every term
	// is put over the common denominator den = ∏ depths.
	ms1, ms2 := maxSeverityEQ1[eq1], maxSeverityEQ2[eq2]
	ms36, ms4 := maxSeverityEQ3EQ6[eq3][eq6], maxSeverityEQ4[eq4]
	den := ms1 * ms2 * ms36 * ms4
	var num, n int64
	if lower1 >= 0 {
		n++
		num += (value - lower1) * d1 * (den / ms1)
	}
	if lower2 >= 0 {
		n++
		num += (value - lower2) * d2 * (den / ms2)
	}
	if lower36 >= 0 {
		n++
		num += (value - lower36) * d36 * (den / ms36)
	}
	if lower4 >= 0 {
		n++
		num += (value - lower4) * d4 * (den / ms4)
	}
	if lower5 >= 0 {
		n++ // EQ5 always contributes a distance of 0
	}
	if n == 0 {
		return value
	}
	// score = value − num/(den×n), clamped to [0, 10], rounded half up.
	q := den * n
	s := value*q - num
	if s <= 0 {
		return 0
	}
	if s >= 100*q {
		return 100
	}
	return floorDiv(2*s+q, 2*q)
}
