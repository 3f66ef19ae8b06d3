package cvss

import (
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// These tests recompute scores with math/big rationals straight from the
// specification formulas and compare them with the package's integer and
// float64 arithmetic.

// heavy reports whether the long exhaustive tests run: not with -short
// and not under the race detector.
func heavy() bool { return !testing.Short() && !raceEnabled }

func rat(s string) *big.Rat {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		panic(s)
	}
	return r
}

var (
	ratZero = new(big.Rat)
	ratOne  = big.NewRat(1, 1)
	ratTen  = big.NewRat(10, 1)
)

// powCache memoizes ratPow: the v3 tests raise the same few hundred
// impact values to the 13th and 15th power many times. Tests using it do
// not run in parallel.
var powCache = map[string]*big.Rat{}

// mimpCache memoizes the modified impact of exactV3 by version, scope and
// MISS.
var mimpCache = map[string]*big.Rat{}

func ratPow(x *big.Rat, n int) *big.Rat {
	key := x.RatString() + "^" + string(rune('0'+n))
	if r, ok := powCache[key]; ok {
		return r
	}
	r := big.NewRat(1, 1)
	for range n {
		r.Mul(r, x)
	}
	powCache[key] = r
	return r
}

func ratMin(a, b *big.Rat) *big.Rat {
	if a.Cmp(b) < 0 {
		return a
	}
	return b
}

// ratFloor returns floor(x) for x >= 0 or x < 0.
func ratFloor(x *big.Rat) int64 {
	q := new(big.Int).Quo(x.Num(), x.Denom()) // truncates
	if x.Sign() < 0 && new(big.Int).Mul(q, x.Denom()).Cmp(x.Num()) != 0 {
		q.Sub(q, big.NewInt(1))
	}
	return q.Int64()
}

// exactRoundup returns the version's Roundup of x, in tenths.
func exactRoundup(ver Version, x *big.Rat) int64 {
	if ver == V3_0 {
		return -ratFloor(new(big.Rat).Mul(x, big.NewRat(-10, 1)))
	}
	// Appendix A: round to 5 decimals (halves up), then up to 1 decimal.
	i5 := ratFloor(new(big.Rat).Add(new(big.Rat).Mul(x, big.NewRat(100000, 1)), big.NewRat(1, 2)))
	if i5%10000 == 0 {
		return i5 / 10000
	}
	return i5/10000 + 1
}

func exactHalfUp(x *big.Rat) int64 {
	return ratFloor(new(big.Rat).Add(new(big.Rat).Mul(x, ratTen), big.NewRat(1, 2)))
}

var (
	r3AV  = map[string]string{"N": "0.85", "A": "0.62", "L": "0.55", "P": "0.2"}
	r3AC  = map[string]string{"L": "0.77", "H": "0.44"}
	r3PRU = map[string]string{"N": "0.85", "L": "0.62", "H": "0.27"}
	r3PRC = map[string]string{"N": "0.85", "L": "0.68", "H": "0.5"}
	r3UI  = map[string]string{"N": "0.85", "R": "0.62"}
	r3CIA = map[string]string{"H": "0.56", "L": "0.22", "N": "0"}
	r3E   = map[string]string{"X": "1", "H": "1", "F": "0.97", "P": "0.94", "U": "0.91"}
	r3RL  = map[string]string{"X": "1", "U": "1", "W": "0.97", "T": "0.96", "O": "0.95"}
	r3RC  = map[string]string{"X": "1", "C": "1", "R": "0.96", "U": "0.92"}
	r3Req = map[string]string{"X": "1", "H": "1.5", "M": "1", "L": "0.5"}
)

// exactV3 scores a v3 vector given as metric map (all metrics present,
// X where not defined) per section 7 of the v3.0/v3.1 specifications.
func exactV3(ver Version, m map[string]string) (base, env int64) {
	get := func(t map[string]string, k string) *big.Rat { return rat(t[m[k]]) }
	mod := func(k string) string {
		if v := m["M"+k]; v != "X" {
			return v
		}
		return m[k]
	}
	exploit := func(av, ac, pr, ui string, changed bool) *big.Rat {
		prT := r3PRU
		if changed {
			prT = r3PRC
		}
		x := rat("8.22")
		x.Mul(x, rat(r3AV[av]))
		x.Mul(x, rat(r3AC[ac]))
		x.Mul(x, rat(prT[pr]))
		return x.Mul(x, rat(r3UI[ui]))
	}
	// Base.
	iss := new(big.Rat).Sub(ratOne, new(big.Rat).Mul(new(big.Rat).Mul(
		new(big.Rat).Sub(ratOne, get(r3CIA, "C")),
		new(big.Rat).Sub(ratOne, get(r3CIA, "I"))),
		new(big.Rat).Sub(ratOne, get(r3CIA, "A"))))
	changed := m["S"] == "C"
	var imp *big.Rat
	if !changed {
		imp = new(big.Rat).Mul(rat("6.42"), iss)
	} else {
		imp = new(big.Rat).Sub(
			new(big.Rat).Mul(rat("7.52"), new(big.Rat).Sub(iss, rat("0.029"))),
			new(big.Rat).Mul(rat("3.25"), ratPow(new(big.Rat).Sub(iss, rat("0.02")), 15)))
	}
	ex := exploit(m["AV"], m["AC"], m["PR"], m["UI"], changed)
	if imp.Cmp(ratZero) > 0 {
		sum := new(big.Rat).Add(imp, ex)
		if changed {
			sum.Mul(sum, rat("1.08"))
		}
		base = exactRoundup(ver, ratMin(sum, ratTen))
	}
	// Environmental.
	mchanged := mod("S") == "C"
	miss := ratOne
	for _, k := range []string{"C", "I", "A"} {
		f := new(big.Rat).Mul(rat(r3Req[m[k+"R"]]), rat(r3CIA[mod(k)]))
		miss = new(big.Rat).Mul(miss, new(big.Rat).Sub(ratOne, f))
	}
	miss = ratMin(new(big.Rat).Sub(ratOne, miss), rat("0.915"))
	mimpKey := ver.String() + strconv.FormatBool(mchanged) + miss.RatString()
	mimp, cached := mimpCache[mimpKey]
	switch {
	case cached:
	case !mchanged:
		mimp = new(big.Rat).Mul(rat("6.42"), miss)
	case ver == V3_0:
		mimp = new(big.Rat).Sub(
			new(big.Rat).Mul(rat("7.52"), new(big.Rat).Sub(miss, rat("0.029"))),
			new(big.Rat).Mul(rat("3.25"), ratPow(new(big.Rat).Sub(miss, rat("0.02")), 15)))
	default:
		mimp = new(big.Rat).Sub(
			new(big.Rat).Mul(rat("7.52"), new(big.Rat).Sub(miss, rat("0.029"))),
			new(big.Rat).Mul(rat("3.25"), ratPow(new(big.Rat).Sub(new(big.Rat).Mul(miss, rat("0.9731")), rat("0.02")), 13)))
	}
	mimpCache[mimpKey] = mimp
	if mimp.Cmp(ratZero) <= 0 {
		return base, 0
	}
	mex := exploit(mod("AV"), mod("AC"), mod("PR"), mod("UI"), mchanged)
	sum := new(big.Rat).Add(mimp, mex)
	if mchanged {
		sum.Mul(sum, rat("1.08"))
	}
	r := exactRoundup(ver, ratMin(sum, ratTen))
	t := big.NewRat(r, 10)
	t.Mul(t, rat(r3E[m["E"]]))
	t.Mul(t, rat(r3RL[m["RL"]]))
	t.Mul(t, rat(r3RC[m["RC"]]))
	return base, exactRoundup(ver, t)
}

func v3String(ver Version, m map[string]string) string {
	var b strings.Builder
	b.WriteString(schemaOf(ver).prefix)
	for i, md := range schemaOf(ver).metrics {
		if i > 0 {
			b.WriteByte('/')
		}
		b.WriteString(md.name + ":" + m[md.name])
	}
	return b.String()
}

// TestV3ScopeChangedExact checks every Scope:Changed computation, the only
// ones done in float64, against exact arithmetic: all base vectors with
// S:C, and every combination of modified impact (requirements × modified
// C/I/A) and modified exploitability with MS:C.
func TestV3ScopeChangedExact(t *testing.T) {
	vals := func(ks ...string) []string { return ks }
	for _, ver := range []Version{V3_0, V3_1} {
		n := 0
		m := map[string]string{}
		for _, md := range v3Metrics {
			m[md.name] = "X"
		}
		m["S"] = "C"
		for _, av := range vals("N", "A", "L", "P") {
			for _, ac := range vals("L", "H") {
				for _, pr := range vals("N", "L", "H") {
					for _, ui := range vals("N", "R") {
						for _, c := range vals("H", "L", "N") {
							for _, i := range vals("H", "L", "N") {
								for _, a := range vals("H", "L", "N") {
									m["AV"], m["AC"], m["PR"], m["UI"], m["C"], m["I"], m["A"] = av, ac, pr, ui, c, i, a
									v, err := Parse(v3String(ver, m))
									if err != nil {
										t.Fatal(err)
									}
									base, _ := exactV3(ver, m)
									if got := v.baseTenths3(); got != base {
										t.Errorf("%s: base %d, exact %d", v, got, base)
									}
									n++
								}
							}
						}
					}
				}
			}
		}
		if !heavy() {
			continue
		}
		// Environmental: base metrics fixed (they do not matter once every
		// modified metric is set), MS:C.
		m["AV"], m["AC"], m["PR"], m["UI"], m["C"], m["I"], m["A"] = "N", "L", "N", "N", "H", "H", "H"
		m["MS"] = "C"
		for _, mav := range vals("N", "A", "L", "P") {
			for _, mac := range vals("L", "H") {
				for _, mpr := range vals("N", "L", "H") {
					for _, mui := range vals("N", "R") {
						m["MAV"], m["MAC"], m["MPR"], m["MUI"] = mav, mac, mpr, mui
						for _, cr := range vals("H", "M", "L") {
							for _, ir := range vals("H", "M", "L") {
								for _, ar := range vals("H", "M", "L") {
									for _, mc := range vals("H", "L", "N") {
										for _, mi := range vals("H", "L", "N") {
											for _, ma := range vals("H", "L", "N") {
												m["CR"], m["IR"], m["AR"], m["MC"], m["MI"], m["MA"] = cr, ir, ar, mc, mi, ma
												v, err := Parse(v3String(ver, m))
												if err != nil {
													t.Fatal(err)
												}
												_, env := exactV3(ver, m)
												if got := v.envTenths3(); got != env {
													t.Errorf("%s: environmental %d, exact %d", v, got, env)
												}
												n++
											}
										}
									}
								}
							}
						}
					}
				}
			}
		}
		t.Logf("v%s: %d Scope:Changed computations checked", ver, n)
	}
}

// TestV3RandomExact compares random full v3 vectors with exact arithmetic.
func TestV3RandomExact(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	count := 20000
	if !heavy() {
		count = 500
	}
	for range count {
		for _, ver := range []Version{V3_0, V3_1} {
			m := map[string]string{}
			for _, md := range v3Metrics {
				vs := md.values
				if !md.required {
					vs = append([]string{"X"}, vs...)
				}
				m[md.name] = vs[r.IntN(len(vs))]
			}
			if r.IntN(4) == 0 { // some vectors without environmental metrics
				for _, md := range v3Metrics[v3CR:] {
					m[md.name] = "X"
				}
			}
			v, err := Parse(v3String(ver, m))
			if err != nil {
				t.Fatal(err)
			}
			base, env := exactV3(ver, m)
			if !v.hasEnv3() {
				env = v.temporal3(base) // documented choice
			}
			if got := v.baseTenths3(); got != base {
				t.Errorf("%s: base %d, exact %d", v, got, base)
			}
			if got := v.envTenths3(); got != env {
				t.Errorf("%s: environmental %d, exact %d", v, got, env)
			}
		}
	}
}

var (
	r2AV  = map[string]string{"L": "0.395", "A": "0.646", "N": "1"}
	r2AC  = map[string]string{"H": "0.35", "M": "0.61", "L": "0.71"}
	r2Au  = map[string]string{"M": "0.45", "S": "0.56", "N": "0.704"}
	r2CIA = map[string]string{"N": "0", "P": "0.275", "C": "0.66"}
	r2E   = map[string]string{"ND": "1", "U": "0.85", "POC": "0.9", "F": "0.95", "H": "1"}
	r2RL  = map[string]string{"ND": "1", "OF": "0.87", "TF": "0.9", "W": "0.95", "U": "1"}
	r2RC  = map[string]string{"ND": "1", "UC": "0.9", "UR": "0.95", "C": "1"}
	r2CDP = map[string]string{"ND": "0", "N": "0", "L": "0.1", "LM": "0.3", "MH": "0.4", "H": "0.5"}
	r2TD  = map[string]string{"ND": "1", "N": "0", "L": "0.25", "M": "0.75", "H": "1"}
	r2Req = map[string]string{"ND": "1", "L": "0.5", "M": "1", "H": "1.51"}
)

// exactV2 scores a v2 vector per section 3.2 of the v2 guide.
func exactV2(m map[string]string) (base, temporal, env int64) {
	ex := rat("20")
	ex.Mul(ex, rat(r2AV[m["AV"]]))
	ex.Mul(ex, rat(r2AC[m["AC"]]))
	ex.Mul(ex, rat(r2Au[m["Au"]]))
	score := func(impact *big.Rat) int64 {
		if impact.Sign() == 0 {
			return 0
		}
		x := new(big.Rat).Mul(rat("0.6"), impact)
		x.Add(x, new(big.Rat).Mul(rat("0.4"), ex))
		x.Sub(x, rat("1.5"))
		return exactHalfUp(x.Mul(x, rat("1.176")))
	}
	temporalOf := func(b int64) int64 {
		x := big.NewRat(b, 10)
		x.Mul(x, rat(r2E[m["E"]]))
		x.Mul(x, rat(r2RL[m["RL"]]))
		return exactHalfUp(x.Mul(x, rat(r2RC[m["RC"]])))
	}
	impact := func(req bool) *big.Rat {
		p := big.NewRat(1, 1)
		for _, k := range []string{"C", "I", "A"} {
			f := rat(r2CIA[m[k]])
			if req {
				f.Mul(f, rat(r2Req[m[k+"R"]]))
			}
			p.Mul(p, new(big.Rat).Sub(ratOne, f))
		}
		imp := new(big.Rat).Mul(rat("10.41"), new(big.Rat).Sub(ratOne, p))
		if req { // only AdjustedImpact is capped at 10
			imp = ratMin(imp, ratTen)
		}
		return imp
	}
	base = score(impact(false))
	temporal = temporalOf(base)
	at := big.NewRat(temporalOf(score(impact(true))), 10)
	x := new(big.Rat).Sub(ratTen, at)
	x.Mul(x, rat(r2CDP[m["CDP"]]))
	x.Add(x, at)
	env = max(exactHalfUp(x.Mul(x, rat(r2TD[m["TD"]]))), 0) // clamped, as documented
	return base, temporal, env
}

func TestV2Exact(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	count := 50000
	if !heavy() {
		count = 1000
	}
	for i := range count {
		m := map[string]string{}
		var b strings.Builder
		for j, md := range schemaV2.metrics {
			vs := md.values
			if !md.required {
				vs = append([]string{"ND"}, vs...)
			}
			// Half of the vectors with low requirements and impacts, where
			// negative adjusted scores and ties concentrate.
			m[md.name] = vs[r.IntN(len(vs))]
			if i%2 == 0 && (md.name == "CR" || md.name == "IR" || md.name == "AR") {
				m[md.name] = "L"
			}
			if j > 0 {
				b.WriteByte('/')
			}
			b.WriteString(md.name + ":" + m[md.name])
		}
		v, err := Parse(b.String())
		if err != nil {
			t.Fatal(err)
		}
		base, temporal, env := exactV2(m)
		if got := v.baseTenths2(); got != base {
			t.Errorf("%s: base %d, exact %d", v, got, base)
		}
		if got := v.temporal2(v.baseTenths2()); got != temporal {
			t.Errorf("%s: temporal %d, exact %d", v, got, temporal)
		}
		if m["CDP"]+m["TD"]+m["CR"]+m["IR"]+m["AR"] == "NDNDNDNDND" {
			env = temporal // documented choice
		}
		if got := v.envTenths2(); got != env {
			t.Errorf("%s: environmental %d, exact %d", v, got, env)
		}
	}
}
