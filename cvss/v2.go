package cvss

import "math/bits"

// CVSS v2 weights indexed by stored metric code (0 = not defined), from
// section 3.2 of the v2 guide. The scale of each table is noted.
var (
	w2AV  = [...]int64{0, 395, 646, 1000}    // L A N, ×1000
	w2AC  = [...]int64{0, 35, 61, 71}        // H M L, ×100
	w2Au  = [...]int64{0, 450, 560, 704}     // M S N, ×1000
	w2CIA = [...]int64{0, 0, 275, 660}       // N P C, ×1000
	w2E   = [...]int64{100, 85, 90, 95, 100} // ND U POC F H, ×100
	w2RL  = [...]int64{100, 87, 90, 95, 100} // ND OF TF W U, ×100
	w2RC  = [...]int64{100, 90, 95, 100}     // ND UC UR C, ×100
	w2CDP = [...]int64{0, 0, 10, 30, 40, 50} // ND N L LM MH H, ×100
	w2TD  = [...]int64{100, 0, 25, 75, 100}  // ND N L M H, ×100
	w2Req = [...]int64{100, 50, 100, 151}    // ND L M H, ×100
)

// exploitability2 returns 20 × AV × AC × Au at scale 10^8.
func (v *Vector) exploitability2() int64 {
	return 20 * w2AV[v.at(v2AV)] * w2AC[v.at(v2AC)] * w2Au[v.at(v2Au)]
}

// baseTenths2 is
//
//	BaseScore = round_to_1_decimal(((0.6×Impact) + (0.4×Exploitability) − 1.5) × f(Impact))
//	Impact    = 10.41 × (1 − (1 − C)(1 − I)(1 − A))
func (v *Vector) baseTenths2() int64 {
	prod := (1000 - w2CIA[v.at(v2C)]) * (1000 - w2CIA[v.at(v2I)]) * (1000 - w2CIA[v.at(v2A)]) // 10^9
	impact := 1041 * (1e9 - prod)                                                             // 10^11
	if impact == 0 {
		return 0 // f(Impact) = 0
	}
	x := 6*impact + 4*v.exploitability2()*1e3 - 15e11 // 10^12
	return tenthsHalfUp(x*1176, 15)
}

func (v *Vector) temporal2(score int64) int64 {
	return tenthsHalfUp(score*w2E[v.at(v2E)]*w2RL[v.at(v2RL)]*w2RC[v.at(v2RC)], 7)
}

// envTenths2 is
//
//	EnvironmentalScore = round_to_1_decimal((AdjustedTemporal + (10 − AdjustedTemporal) × CDP) × TD)
//	AdjustedTemporal   = TemporalScore with Impact replaced by AdjustedImpact
//	AdjustedImpact     = min(10, 10.41 × (1 − (1 − C×CR)(1 − I×IR)(1 − A×AR)))
//
// AdjustedImpact has 17 decimals, so the adjusted base score is rounded
// with 128-bit arithmetic. With a low AdjustedImpact the adjusted base
// score is negative (for example AV:L/AC:H/Au:M/C:P/I:N/A:N/CR:L gives
// −0.2); the guide gives scores a range of 0 to 10, so the final score is
// clamped at 0.
//
// With no environmental metric defined the result is the temporal score.
// The formula taken literally differs from it when the impact exceeds 10,
// since only AdjustedImpact is capped: AV:L/AC:L/Au:N/C:C/I:C/A:C has
// base score 7.2 (Impact 10.0008) but would get 7.1.
func (v *Vector) envTenths2() int64 {
	if v.lo>>(4*v2CDP) == 0 {
		return v.temporal2(v.baseTenths2())
	}
	c := w2CIA[v.at(v2C)] * w2Req[v.at(v2CR)] // 10^5
	i := w2CIA[v.at(v2I)] * w2Req[v.at(v2IR)]
	a := w2CIA[v.at(v2A)] * w2Req[v.at(v2AR)]
	ai := min(1041*(1e15-(1e5-c)*(1e5-i)*(1e5-a)), 1e18) // 10^17
	var adjBase int64
	if ai != 0 {
		// 0.6×AI + 0.4×Exploitability − 1.5 at scale 10^18, as sign and
		// magnitude: the positive part reaches 10^19 and overflows int64.
		pos := uint64(6*ai) + uint64(4*v.exploitability2())*1e9
		neg := false
		var mag uint64
		if pos >= 15e17 {
			mag = pos - 15e17
		} else {
			neg, mag = true, 15e17-pos
		}
		adjBase = roundTenths128(neg, mag, 1176, 21) // × 1.176 (scale 10^3)
	}
	at := v.temporal2(adjBase)
	// (AT + (10 − AT) × CDP) × TD: AT at 10^1, CDP and TD at 10^2.
	n := (at*100 + (100-at)*w2CDP[v.at(v2CDP)]) * w2TD[v.at(v2TD)] // 10^5
	return max(tenthsHalfUp(n, 5), 0)
}

// roundTenths128 returns the value ±mag×mul/10^p rounded half up to one
// decimal, in tenths. p must be in [11, 28].
func roundTenths128(neg bool, mag, mul uint64, p int) int64 {
	k := uint64(pow10[p-11])
	t := mul128(mag, mul)        // the value in tenths is ±t / D,
	d := mul128(1e10, k)         // with D = 10^(p−1) = 10^10 × k.
	t2, d2 := t.add(t), d.add(d) // 2t, 2D
	if !neg {
		return int64(t2.add(d).div(k)) // floor((2t + D) / 2D)
	}
	// floor((D − 2t) / 2D) = −ceil((2t − D) / 2D), and 0 when 2t ≤ D.
	if !d.less(t2) {
		return 0
	}
	x := t2.sub(d).add(d2).sub(u128{lo: 1}) // ceil(y/2D) = floor((y + 2D − 1)/2D)
	return -int64(x.div(k))
}

// u128 is an unsigned 128-bit integer.
type u128 struct{ hi, lo uint64 }

func mul128(a, b uint64) u128 {
	hi, lo := bits.Mul64(a, b)
	return u128{hi, lo}
}

func (a u128) add(b u128) u128 {
	lo, c := bits.Add64(a.lo, b.lo, 0)
	hi, _ := bits.Add64(a.hi, b.hi, c)
	return u128{hi, lo}
}

func (a u128) sub(b u128) u128 {
	lo, c := bits.Sub64(a.lo, b.lo, 0)
	hi, _ := bits.Sub64(a.hi, b.hi, c)
	return u128{hi, lo}
}

func (a u128) less(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

// divBy divides by a 64-bit y; the quotient must fit in 128 bits.
func (a u128) divBy(y uint64) u128 {
	qhi := a.hi / y
	qlo, _ := bits.Div64(a.hi%y, a.lo, y)
	return u128{qhi, qlo}
}

// div returns floor(a / (2 × 10^10 × k)), which must fit in 64 bits.
// Nested floors of positive divisions equal the floor of the product.
func (a u128) div(k uint64) uint64 {
	return a.divBy(2).divBy(1e10).divBy(k).lo
}
