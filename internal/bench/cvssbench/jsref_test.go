package cvssbench

// jsScore is a direct float64 transcription of cvss_score.js from the FIRST
// reference calculator (github.com/FIRSTdotorg/cvss-v4-calculator), used
// only to adjudicate disagreements between berth and pandatix. epsilon
// selects the current rounding, Math.round((value + 1e-6) * 10) / 10; with
// epsilon false it is the earlier Math.round(value * 10) / 10.

import (
	"math"
	"strconv"
	"strings"
)

var jsLookup = map[string]float64{}

func init() {
	for _, e := range lookupEntries {
		jsLookup[e.mv] = e.score
	}
}

var jsLevels = map[string]map[string]float64{
	"AV": {"N": 0.0, "A": 0.1, "L": 0.2, "P": 0.3},
	"PR": {"N": 0.0, "L": 0.1, "H": 0.2},
	"UI": {"N": 0.0, "P": 0.1, "A": 0.2},
	"AC": {"L": 0.0, "H": 0.1},
	"AT": {"N": 0.0, "P": 0.1},
	"VC": {"H": 0.0, "L": 0.1, "N": 0.2},
	"VI": {"H": 0.0, "L": 0.1, "N": 0.2},
	"VA": {"H": 0.0, "L": 0.1, "N": 0.2},
	"SC": {"H": 0.1, "L": 0.2, "N": 0.3},
	"SI": {"S": 0.0, "H": 0.1, "L": 0.2, "N": 0.3},
	"SA": {"S": 0.0, "H": 0.1, "L": 0.2, "N": 0.3},
	"CR": {"H": 0.0, "M": 0.1, "L": 0.2},
	"IR": {"H": 0.0, "M": 0.1, "L": 0.2},
	"AR": {"H": 0.0, "M": 0.1, "L": 0.2},
}

var jsMaxComposed = map[string]map[string][]string{
	"eq1":   {"0": {"AV:N/PR:N/UI:N/"}, "1": {"AV:A/PR:N/UI:N/", "AV:N/PR:L/UI:N/", "AV:N/PR:N/UI:P/"}, "2": {"AV:P/PR:N/UI:N/", "AV:A/PR:L/UI:P/"}},
	"eq2":   {"0": {"AC:L/AT:N/"}, "1": {"AC:H/AT:N/", "AC:L/AT:P/"}},
	"eq3_0": {"0": {"VC:H/VI:H/VA:H/CR:H/IR:H/AR:H/"}, "1": {"VC:H/VI:H/VA:L/CR:M/IR:M/AR:H/", "VC:H/VI:H/VA:H/CR:M/IR:M/AR:M/"}},
	"eq3_1": {"0": {"VC:L/VI:H/VA:H/CR:H/IR:H/AR:H/", "VC:H/VI:L/VA:H/CR:H/IR:H/AR:H/"}, "1": {"VC:L/VI:H/VA:L/CR:H/IR:M/AR:H/", "VC:L/VI:H/VA:H/CR:H/IR:M/AR:M/", "VC:H/VI:L/VA:H/CR:M/IR:H/AR:M/", "VC:H/VI:L/VA:L/CR:M/IR:H/AR:H/", "VC:L/VI:L/VA:H/CR:H/IR:H/AR:M/"}},
	"eq3_2": {"1": {"VC:L/VI:L/VA:L/CR:H/IR:H/AR:H/"}},
	"eq4":   {"0": {"SC:H/SI:S/SA:S/"}, "1": {"SC:H/SI:H/SA:H/"}, "2": {"SC:L/SI:L/SA:L/"}},
	"eq5":   {"0": {"E:A/"}, "1": {"E:P/"}, "2": {"E:U/"}},
}

var jsMaxSeverity = map[string]float64{
	"eq1_0": 1, "eq1_1": 4, "eq1_2": 5,
	"eq2_0": 1, "eq2_1": 2,
	"eq3eq6_00": 7, "eq3eq6_01": 6, "eq3eq6_10": 8, "eq3eq6_11": 8, "eq3eq6_21": 10,
	"eq4_0": 6, "eq4_1": 5, "eq4_2": 4,
}

func jsParse(vec string) map[string]string {
	sel := map[string]string{}
	for _, k := range []string{"E", "CR", "IR", "AR", "MAV", "MAC", "MAT", "MPR", "MUI", "MVC", "MVI", "MVA", "MSC", "MSI", "MSA"} {
		sel[k] = "X"
	}
	for _, p := range strings.Split(strings.TrimPrefix(vec, "CVSS:4.0/"), "/") {
		k, v, _ := strings.Cut(p, ":")
		sel[k] = v
	}
	return sel
}

func jsM(sel map[string]string, metric string) string {
	selected := sel[metric]
	if metric == "E" && selected == "X" {
		return "A"
	}
	if (metric == "CR" || metric == "IR" || metric == "AR") && selected == "X" {
		return "H"
	}
	if mod, ok := sel["M"+metric]; ok && mod != "X" {
		return mod
	}
	return selected
}

func jsMacroVector(sel map[string]string) string {
	m := func(k string) string { return jsM(sel, k) }
	var eq1, eq2, eq3, eq4, eq5, eq6 int
	switch {
	case m("AV") == "N" && m("PR") == "N" && m("UI") == "N":
		eq1 = 0
	case (m("AV") == "N" || m("PR") == "N" || m("UI") == "N") && m("AV") != "P":
		eq1 = 1
	default:
		eq1 = 2
	}
	if !(m("AC") == "L" && m("AT") == "N") {
		eq2 = 1
	}
	switch {
	case m("VC") == "H" && m("VI") == "H":
		eq3 = 0
	case m("VC") == "H" || m("VI") == "H" || m("VA") == "H":
		eq3 = 1
	default:
		eq3 = 2
	}
	switch {
	case m("MSI") == "S" || m("MSA") == "S":
		eq4 = 0
	case m("SC") == "H" || m("SI") == "H" || m("SA") == "H":
		eq4 = 1
	default:
		eq4 = 2
	}
	switch m("E") {
	case "P":
		eq5 = 1
	case "U":
		eq5 = 2
	}
	if !(m("CR") == "H" && m("VC") == "H" || m("IR") == "H" && m("VI") == "H" || m("AR") == "H" && m("VA") == "H") {
		eq6 = 1
	}
	return strconv.Itoa(eq1) + strconv.Itoa(eq2) + strconv.Itoa(eq3) + strconv.Itoa(eq4) + strconv.Itoa(eq5) + strconv.Itoa(eq6)
}

func jsExtract(metric, s string) string {
	ex := s[strings.Index(s, metric)+len(metric)+1:]
	if i := strings.Index(ex, "/"); i > 0 {
		return ex[:i]
	}
	return ex
}

func jsScore(vec string, epsilon bool) float64 {
	value := jsUnrounded(vec)
	if epsilon {
		return math.Floor((value+1e-6)*10+0.5) / 10
	}
	return math.Floor(value*10+0.5) / 10
}

// jsUnrounded is the score before the final rounding, clamped to [0, 10].
func jsUnrounded(vec string) float64 {
	sel := jsParse(vec)
	m := func(k string) string { return jsM(sel, k) }
	allN := true
	for _, k := range []string{"VC", "VI", "VA", "SC", "SI", "SA"} {
		if m(k) != "N" {
			allN = false
		}
	}
	if allN {
		return 0
	}
	mv := jsMacroVector(sel)
	value := jsLookup[mv]
	d := func(i int) int { return int(mv[i] - '0') }
	eq1, eq2, eq3, eq4, eq5, eq6 := d(0), d(1), d(2), d(3), d(4), d(5)
	key := func(a ...int) string {
		var b strings.Builder
		for _, x := range a {
			b.WriteString(strconv.Itoa(x))
		}
		return b.String()
	}
	look := func(k string) float64 {
		if v, ok := jsLookup[k]; ok {
			return v
		}
		return math.NaN()
	}
	s1 := look(key(eq1+1, eq2, eq3, eq4, eq5, eq6))
	s2 := look(key(eq1, eq2+1, eq3, eq4, eq5, eq6))
	var s36 float64
	switch {
	case eq3 == 1 && eq6 == 1, eq3 == 0 && eq6 == 1:
		s36 = look(key(eq1, eq2, eq3+1, eq4, eq5, eq6))
	case eq3 == 1 && eq6 == 0:
		s36 = look(key(eq1, eq2, eq3, eq4, eq5, eq6+1))
	case eq3 == 0 && eq6 == 0:
		l := look(key(eq1, eq2, eq3, eq4, eq5, eq6+1))
		r := look(key(eq1, eq2, eq3+1, eq4, eq5, eq6))
		if l > r {
			s36 = l
		} else {
			s36 = r
		}
	default:
		s36 = look(key(eq1, eq2, eq3+1, eq4, eq5, eq6+1))
	}
	s4 := look(key(eq1, eq2, eq3, eq4+1, eq5, eq6))
	s5 := look(key(eq1, eq2, eq3, eq4, eq5+1, eq6))

	var maxVectors []string
	for _, a := range jsMaxComposed["eq1"][strconv.Itoa(eq1)] {
		for _, b := range jsMaxComposed["eq2"][strconv.Itoa(eq2)] {
			for _, c := range jsMaxComposed["eq3_"+strconv.Itoa(eq3)][strconv.Itoa(eq6)] {
				for _, e := range jsMaxComposed["eq4"][strconv.Itoa(eq4)] {
					for _, f := range jsMaxComposed["eq5"][strconv.Itoa(eq5)] {
						maxVectors = append(maxVectors, a+b+c+e+f)
					}
				}
			}
		}
	}
	dist := map[string]float64{}
	for _, mx := range maxVectors {
		neg := false
		for k, lv := range jsLevels {
			dist[k] = lv[m(k)] - lv[jsExtract(k, mx)]
			if dist[k] < 0 {
				neg = true
			}
		}
		if !neg {
			break
		}
	}
	cur1 := dist["AV"] + dist["PR"] + dist["UI"]
	cur2 := dist["AC"] + dist["AT"]
	cur36 := dist["VC"] + dist["VI"] + dist["VA"] + dist["CR"] + dist["IR"] + dist["AR"]
	cur4 := dist["SC"] + dist["SI"] + dist["SA"]
	const step = 0.1
	n := 0
	var n1, n2, n36, n4 float64
	ms1 := jsMaxSeverity["eq1_"+strconv.Itoa(eq1)] * step
	ms2 := jsMaxSeverity["eq2_"+strconv.Itoa(eq2)] * step
	ms36 := jsMaxSeverity["eq3eq6_"+strconv.Itoa(eq3)+strconv.Itoa(eq6)] * step
	ms4 := jsMaxSeverity["eq4_"+strconv.Itoa(eq4)] * step
	if a := value - s1; !math.IsNaN(a) {
		n++
		n1 = a * (cur1 / ms1)
	}
	if a := value - s2; !math.IsNaN(a) {
		n++
		n2 = a * (cur2 / ms2)
	}
	if a := value - s36; !math.IsNaN(a) {
		n++
		n36 = a * (cur36 / ms36)
	}
	if a := value - s4; !math.IsNaN(a) {
		n++
		n4 = a * (cur4 / ms4)
	}
	if a := value - s5; !math.IsNaN(a) {
		n++
	}
	mean := 0.0
	if n != 0 {
		mean = (n1 + n2 + n36 + n4 + 0) / float64(n)
	}
	value -= mean
	return max(min(value, 10), 0)
}

// jsIsTie reports whether the unrounded score is within float64 error of
// an x.x5 tie.
func jsIsTie(vec string) bool {
	v := jsUnrounded(vec) * 10
	return math.Abs(v-math.Floor(v)-0.5) < 1e-9
}
