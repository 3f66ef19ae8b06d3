package cvss

import "math"

// Scores are carried as integers in tenths ("tenths" below) and converted
// to float64 only when returned, so that 7.5 is always the float64 nearest
// to 7.5.
//
// The formulas of CVSS v2 and v3 use decimal weights. Wherever a value is
// a finite decimal it is computed exactly with scaled integers: a value n at
// scale 10^p stands for n / 10^p. Only the v3 Scope:Changed impact, whose
// 15th/13th power is not a short decimal, is computed in float64; the tests
// prove against math/big that no such value lies close enough to a rounding
// boundary for float64 error to matter.

var pow10 = [...]int64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18}

// floorDiv returns floor(a / b) for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// tenthsHalfUp rounds n / 10^p to one decimal, halves up (towards +Inf),
// and returns the result in tenths. p must be at least 1.
func tenthsHalfUp(n int64, p int) int64 {
	d := pow10[p-1] // n / d is the value in tenths
	return floorDiv(2*n+d, 2*d)
}

// roundupV3 is the version's Roundup of the non-negative value n / 10^p,
// where d = 10^(p−1) and d5 = 10^(p−5); it returns tenths. Callers pass
// constants so that the divisions compile to multiplications.
//
// v3.0: the smallest number, specified to one decimal place, that is
// equal to or higher than its input. v3.1 (Appendix A): round to five
// decimals, halves up, then up to one decimal.
func roundupV3(ver Version, n, d, d5 int64) int64 {
	if ver == V3_0 {
		return (n + d - 1) / d
	}
	i5 := (2*n + d5) / (2 * d5)
	return (i5 + 9999) / 10000
}

// roundupFloat applies the version's Roundup to a float64 value. For v3.1
// it is Appendix A verbatim. For v3.0 it is a plain ceiling, which is exact
// for the values it is used on (see the comment at the top of this file).
func roundupFloat(ver Version, x float64) int64 {
	if ver == V3_0 {
		return int64(math.Ceil(x * 10))
	}
	i5 := int64(math.Floor(x*1e5 + 0.5))
	if i5%10000 == 0 {
		return i5 / 10000
	}
	return i5/10000 + 1
}

func tenthsToFloat(t int64) float64 { return float64(t) / 10 }
