package cvssbench

import "strings"

type metricSpace struct {
	name   string
	values []string // "" = omit the metric
}

// each calls f with every vector string built from the prefix and the
// Cartesian product of the spaces, in order.
func each(prefix string, spaces []metricSpace, f func(string)) {
	idx := make([]int, len(spaces))
	var b strings.Builder
	for {
		b.Reset()
		b.WriteString(prefix)
		first := true
		for i, s := range spaces {
			v := s.values[idx[i]]
			if v == "" {
				continue
			}
			if !first {
				b.WriteByte('/')
			}
			first = false
			b.WriteString(s.name)
			b.WriteByte(':')
			b.WriteString(v)
		}
		f(b.String())
		i := len(spaces) - 1
		for ; i >= 0; i-- {
			idx[i]++
			if idx[i] < len(spaces[i].values) {
				break
			}
			idx[i] = 0
		}
		if i < 0 {
			return
		}
	}
}

var v3Base = []metricSpace{
	{"AV", []string{"N", "A", "L", "P"}},
	{"AC", []string{"L", "H"}},
	{"PR", []string{"N", "L", "H"}},
	{"UI", []string{"N", "R"}},
	{"S", []string{"U", "C"}},
	{"C", []string{"H", "L", "N"}},
	{"I", []string{"H", "L", "N"}},
	{"A", []string{"H", "L", "N"}},
}

var v3Temporal = []metricSpace{
	{"E", []string{"", "X", "H", "F", "P", "U"}},
	{"RL", []string{"", "U", "W", "T", "O"}},
	{"RC", []string{"", "C", "R", "U"}},
}

var v3Env = []metricSpace{
	{"CR", []string{"", "H", "M", "L"}},
	{"IR", []string{"", "H", "M", "L"}},
	{"AR", []string{"", "H", "M", "L"}},
	{"MAV", []string{"", "N", "A", "L", "P"}},
	{"MAC", []string{"", "L", "H"}},
	{"MPR", []string{"", "N", "L", "H"}},
	{"MUI", []string{"", "N", "R"}},
	{"MS", []string{"", "U", "C"}},
	{"MC", []string{"", "H", "L", "N"}},
	{"MI", []string{"", "H", "L", "N"}},
	{"MA", []string{"", "H", "L", "N"}},
}

var v2Base = []metricSpace{
	{"AV", []string{"L", "A", "N"}},
	{"AC", []string{"H", "M", "L"}},
	{"Au", []string{"M", "S", "N"}},
	{"C", []string{"N", "P", "C"}},
	{"I", []string{"N", "P", "C"}},
	{"A", []string{"N", "P", "C"}},
}

var v2Temporal = []metricSpace{
	{"E", []string{"ND", "U", "POC", "F", "H"}},
	{"RL", []string{"ND", "OF", "TF", "W", "U"}},
	{"RC", []string{"ND", "UC", "UR", "C"}},
}

var v2Env = []metricSpace{
	{"CDP", []string{"", "N", "L", "LM", "MH", "H"}},
	{"TD", []string{"", "N", "L", "M", "H"}},
	{"CR", []string{"", "L", "M", "H"}},
	{"IR", []string{"", "L", "M", "H"}},
	{"AR", []string{"", "L", "M", "H"}},
}

var v4Base = []metricSpace{
	{"AV", []string{"N", "A", "L", "P"}},
	{"AC", []string{"L", "H"}},
	{"AT", []string{"N", "P"}},
	{"PR", []string{"N", "L", "H"}},
	{"UI", []string{"N", "P", "A"}},
	{"VC", []string{"H", "L", "N"}},
	{"VI", []string{"H", "L", "N"}},
	{"VA", []string{"H", "L", "N"}},
	{"SC", []string{"H", "L", "N"}},
	{"SI", []string{"H", "L", "N"}},
	{"SA", []string{"H", "L", "N"}},
}

var v4Optional = []metricSpace{
	{"E", []string{"", "A", "P", "U"}},
	{"CR", []string{"", "H", "M", "L"}},
	{"IR", []string{"", "H", "M", "L"}},
	{"AR", []string{"", "H", "M", "L"}},
	{"MAV", []string{"", "N", "A", "L", "P"}},
	{"MAC", []string{"", "L", "H"}},
	{"MAT", []string{"", "N", "P"}},
	{"MPR", []string{"", "N", "L", "H"}},
	{"MUI", []string{"", "N", "P", "A"}},
	{"MVC", []string{"", "H", "L", "N"}},
	{"MVI", []string{"", "H", "L", "N"}},
	{"MVA", []string{"", "H", "L", "N"}},
	{"MSC", []string{"", "H", "L", "N"}},
	{"MSI", []string{"", "S", "H", "L", "N"}},
	{"MSA", []string{"", "S", "H", "L", "N"}},
}

func concat(s ...[]metricSpace) []metricSpace {
	var out []metricSpace
	for _, x := range s {
		out = append(out, x...)
	}
	return out
}
