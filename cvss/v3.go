package cvss

import "math"

// CVSS v3.0 and v3.1 weights, scaled by 100 and indexed by the stored
// metric code (0 = not defined). Section 7.4 of both specifications.
var (
	w3AV  = [...]int64{0, 85, 62, 55, 20}    // N A L P
	w3AC  = [...]int64{0, 77, 44}            // L H
	w3PRU = [...]int64{0, 85, 62, 27}        // N L H, scope unchanged
	w3PRC = [...]int64{0, 85, 68, 50}        // N L H, scope changed
	w3UI  = [...]int64{0, 85, 62}            // N R
	w3CIA = [...]int64{0, 56, 22, 0}         // H L N
	w3E   = [...]int64{100, 100, 97, 94, 91} // X H F P U
	w3RL  = [...]int64{100, 100, 97, 96, 95} // X U W T O
	w3RC  = [...]int64{100, 100, 96, 92}     // X C R U
	w3Req = [...]int64{100, 150, 100, 50}    // X H M L
)

const v3ScopeChanged = 2 // stored code of S:C / MS:C

// exploitability3 returns 8.22 × AV × AC × PR × UI at scale 10^10.
func exploitability3(av, ac, pr, ui uint8, changed bool) int64 {
	w := w3PRU[pr]
	if changed {
		w = w3PRC[pr]
	}
	return 822 * w3AV[av] * w3AC[ac] * w * w3UI[ui]
}

// changedImpact3 is the Scope:Changed impact formula for a (modified)
// impact sub-score iss. v3.1's environmental formula differs from all the
// others (section 7.3 of the v3.1 specification).
func changedImpact3(iss float64, v31env bool) float64 {
	if v31env {
		return 7.52*(iss-0.029) - 3.25*math.Pow(iss*0.9731-0.02, 13)
	}
	return 7.52*(iss-0.029) - 3.25*math.Pow(iss-0.02, 15)
}

func (v *Vector) baseTenths3() int64 {
	changed := v.at(v3S) == v3ScopeChanged
	// ISS = 1 − (1 − C)(1 − I)(1 − A), at scale 10^6.
	iss := 1e6 - (100-w3CIA[v.at(v3C)])*(100-w3CIA[v.at(v3I)])*(100-w3CIA[v.at(v3A)])
	if iss == 0 {
		return 0
	}
	expl := exploitability3(v.at(v3AV), v.at(v3AC), v.at(v3PR), v.at(v3UI), changed)
	if !changed {
		// Impact = 6.42 × ISS at scale 10^8, brought to 10^10.
		sum := min(642*iss*100+expl, 10*pow10[10])
		return roundupV3(v.ver, sum, 1e9, 1e5) // scale 10^10
	}
	imp := changedImpact3(float64(iss)/1e6, false)
	if imp <= 0 {
		return 0
	}
	x := min(1.08*(imp+float64(expl)/1e10), 10)
	return roundupFloat(v.ver, x)
}

// temporal3 returns Roundup(score × E × RL × RC) in tenths.
func (v *Vector) temporal3(score int64) int64 {
	n := score * w3E[v.at(v3E)] * w3RL[v.at(v3RL)] * w3RC[v.at(v3RC)] // scale 10^7
	return roundupV3(v.ver, n, 1e6, 1e2)
}

// hasEnv3 reports whether any v3 environmental metric is defined.
func (v *Vector) hasEnv3() bool {
	return v.lo>>(4*v3CR) != 0 || v.hi != 0
}

// envTenths3 is the environmental score of section 7.3 of the v3.0 and
// v3.1 specifications. When no environmental metric is defined it is the
// temporal score: with every metric "not defined" the v3.0 formula gives
// that value anyway, but v3.1 changed the Scope:Changed modified impact
// (MISS × 0.9731, 13th power) so that the literal formula can exceed the
// base score (CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H has base score
// 9.9 and would get 10.0), which would make Score disagree with the
// published score of every unmodified v3.1 vector concerned.
func (v *Vector) envTenths3() int64 {
	if !v.hasEnv3() {
		return v.temporal3(v.baseTenths3())
	}
	mod := func(base, modified int) uint8 {
		if c := v.at(modified); c != 0 {
			return c
		}
		return v.at(base)
	}
	changed := mod(v3S, v3MS) == v3ScopeChanged
	// MISS = min(1 − (1 − CR×MC)(1 − IR×MI)(1 − AR×MA), 0.915) at scale 10^12.
	c := w3Req[v.at(v3CR)] * w3CIA[mod(v3C, v3MC)]
	i := w3Req[v.at(v3IR)] * w3CIA[mod(v3I, v3MI)]
	a := w3Req[v.at(v3AR)] * w3CIA[mod(v3A, v3MA)]
	miss := min(1e12-(1e4-c)*(1e4-i)*(1e4-a), 915*pow10[9])
	if miss <= 0 {
		return 0
	}
	expl := exploitability3(mod(v3AV, v3MAV), mod(v3AC, v3MAC), mod(v3PR, v3MPR), mod(v3UI, v3MUI), changed)
	var r int64
	if !changed {
		// 6.42 × MISS at scale 10^14; exploitability brought to 10^14.
		sum := min(642*miss+expl*1e4, 10*pow10[14])
		r = roundupV3(v.ver, sum, 1e13, 1e9) // scale 10^14
	} else {
		imp := changedImpact3(float64(miss)/1e12, v.ver == V3_1)
		if imp <= 0 {
			return 0
		}
		r = roundupFloat(v.ver, min(1.08*(imp+float64(expl)/1e10), 10))
	}
	return v.temporal3(r)
}
