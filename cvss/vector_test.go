package cvss_test

import (
	"encoding/json"
	"errors"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-dev/berth/cvss"
)

// spaces of metric values used to enumerate vectors; "" omits the metric.
type space struct {
	name   string
	values []string
}

func enumerate(prefix string, spaces []space, f func(string)) {
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
			b.WriteString(s.name + ":" + v)
		}
		f(b.String())
		i := len(spaces) - 1
		for ; i >= 0; i-- {
			if idx[i]++; idx[i] < len(spaces[i].values) {
				break
			}
			idx[i] = 0
		}
		if i < 0 {
			return
		}
	}
}

var (
	v3BaseSpace = []space{
		{"AV", []string{"N", "A", "L", "P"}}, {"AC", []string{"L", "H"}},
		{"PR", []string{"N", "L", "H"}}, {"UI", []string{"N", "R"}},
		{"S", []string{"U", "C"}}, {"C", []string{"H", "L", "N"}},
		{"I", []string{"H", "L", "N"}}, {"A", []string{"H", "L", "N"}},
	}
	v3TemporalSpace = []space{
		{"E", []string{"", "X", "H", "F", "P", "U"}},
		{"RL", []string{"", "U", "W", "T", "O"}},
		{"RC", []string{"", "C", "R", "U"}},
	}
	v2BaseSpace = []space{
		{"AV", []string{"L", "A", "N"}}, {"AC", []string{"H", "M", "L"}},
		{"Au", []string{"M", "S", "N"}}, {"C", []string{"N", "P", "C"}},
		{"I", []string{"N", "P", "C"}}, {"A", []string{"N", "P", "C"}},
	}
	v2TemporalSpace = []space{
		{"E", []string{"", "ND", "U", "POC", "F", "H"}},
		{"RL", []string{"", "OF", "TF", "W", "U"}},
		{"RC", []string{"", "UC", "UR", "C"}},
	}
	v4BaseSpace = []space{
		{"AV", []string{"N", "A", "L", "P"}}, {"AC", []string{"L", "H"}},
		{"AT", []string{"N", "P"}}, {"PR", []string{"N", "L", "H"}},
		{"UI", []string{"N", "P", "A"}}, {"VC", []string{"H", "L", "N"}},
		{"VI", []string{"H", "L", "N"}}, {"VA", []string{"H", "L", "N"}},
		{"SC", []string{"H", "L", "N"}}, {"SI", []string{"H", "L", "N"}},
		{"SA", []string{"H", "L", "N"}},
	}
)

// TestExhaustiveInvariants enumerates every v2, v3.0 and v3.1 base ×
// temporal vector and every v4.0 base vector, and checks round trips and
// the relations between scores. Agreement with an independent
// implementation is checked in internal/bench/cvssbench.
func TestExhaustiveInvariants(t *testing.T) {
	stride, k := 1, 0
	if !cvss.Heavy() {
		stride = 17 // a sample under -short and -race
	}
	check := func(s string) {
		if k++; k%stride != 0 {
			return
		}
		v, err := cvss.Parse(s)
		if err != nil {
			t.Fatalf("Parse(%q): %v", s, err)
		}
		// Temporal equals base when every temporal metric is neutral (not
		// defined, or the value with weight 1).
		wantTemporalIsBase := true
		for m, neutral := range map[string]string{"E": "H", "RL": "U", "RC": "C"} {
			if x, ok := v.Metric(m); ok && x != "X" && x != "ND" && x != neutral {
				wantTemporalIsBase = false
			}
		}
		w, err := cvss.Parse(v.String())
		if err != nil || w != v {
			t.Fatalf("round trip %q -> %q: %v", s, v.String(), err)
		}
		b, tm, e := v.BaseScore(), v.TemporalScore(), v.EnvironmentalScore()
		if e != tm || v.Score() != e {
			t.Fatalf("%s: environmental %v, temporal %v, score %v without environmental metrics", s, e, tm, v.Score())
		}
		if wantTemporalIsBase && tm != b {
			t.Fatalf("%s: temporal %v != base %v without temporal metrics", s, tm, b)
		}
		if tm > b {
			t.Fatalf("%s: temporal %v > base %v", s, tm, b)
		}
	}
	n := 0
	for _, p := range []string{"CVSS:3.0/", "CVSS:3.1/"} {
		enumerate(p, append(append([]space{}, v3BaseSpace...), v3TemporalSpace...), func(s string) {
			n++
			check(s)
		})
	}
	enumerate("", append(append([]space{}, v2BaseSpace...), v2TemporalSpace...), func(s string) {
		n++
		check(s)
	})
	enumerate("CVSS:4.0/", v4BaseSpace, func(s string) {
		n++
		check(s)
		if k%stride != 0 {
			return
		}
		v, _ := cvss.Parse(s)
		if v.String() != s || v.Nomenclature() != "CVSS-B" {
			t.Fatalf("%s: String %q, nomenclature %q", s, v.String(), v.Nomenclature())
		}
	})
	t.Logf("%d vectors", n)
}

func TestAllocations(t *testing.T) {
	if !cvss.Heavy() {
		t.Skip("allocation counts are not meaningful under -short/-race")
	}
	for _, s := range []string{
		"AV:N/AC:L/Au:N/C:N/I:N/A:C/E:F/RL:OF/RC:C/CDP:H/TD:H/CR:M/IR:M/AR:H",
		"CVSS:3.0/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H/E:P/CR:L/MS:C",
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
		"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/E:P/CR:L/IR:M/AR:H/MAV:A/MSI:S/U:Clear",
	} {
		a := testing.AllocsPerRun(100, func() {
			v, err := cvss.Parse(s)
			if err != nil {
				t.Fatal(err)
			}
			_ = v.BaseScore() + v.TemporalScore() + v.EnvironmentalScore() + v.Score()
			_ = v.Severity()
		})
		if a != 0 {
			t.Errorf("%s: %v allocations per parse+score", s, a)
		}
	}
}

func TestZeroVector(t *testing.T) {
	var v cvss.Vector
	if !v.IsZero() || v.Version() != 0 || v.String() != "" || v.Score() != 0 ||
		v.BaseScore() != 0 || v.TemporalScore() != 0 || v.EnvironmentalScore() != 0 ||
		v.Severity() != cvss.None || v.Nomenclature() != "" {
		t.Error("zero Vector misbehaves")
	}
	if _, ok := v.Metric("AV"); ok {
		t.Error("zero Vector has metric AV")
	}
}

func TestMetric(t *testing.T) {
	v, _ := cvss.Parse("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/MSI:S/U:Amber")
	for _, c := range []struct{ name, want string }{
		{"AV", "N"}, {"MSI", "S"}, {"U", "Amber"}, {"E", "X"}, {"MSA", "X"},
	} {
		if got, ok := v.Metric(c.name); !ok || got != c.want {
			t.Errorf("Metric(%q) = %q, %v; want %q", c.name, got, ok, c.want)
		}
	}
	if _, ok := v.Metric("Au"); ok {
		t.Error(`Metric("Au") found in a v4.0 vector`)
	}
	v2, _ := cvss.Parse("AV:N/AC:L/Au:N/C:P/I:P/A:P")
	if got, _ := v2.Metric("E"); got != "ND" {
		t.Errorf(`v2 Metric("E") = %q, want "ND"`, got)
	}
}

func TestJSON(t *testing.T) {
	type doc struct {
		V []cvss.Vector `json:"v"`
	}
	a, _ := cvss.Parse("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")
	in := doc{V: []cvss.Vector{a, {}}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"v":["CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",""]}`; string(b) != want {
		t.Fatalf("Marshal = %s, want %s", b, want)
	}
	var out doc
	if err := json.Unmarshal(b, &out); err != nil || len(out.V) != 2 || out.V[0] != a || !out.V[1].IsZero() {
		t.Fatalf("Unmarshal = %+v, %v", out, err)
	}
	err = json.Unmarshal([]byte(`{"v":["CVSS:3.1/AV:X"]}`), &out)
	if !errors.Is(err, cvss.ErrInvalidVector) {
		t.Fatalf("Unmarshal of a bad vector: %v", err)
	}
}

func TestParseErrorMessage(t *testing.T) {
	long := "CVSS:3.1/" + strings.Repeat("AV:N/", 200)
	_, err := cvss.Parse(long)
	if err == nil || len(err.Error()) > 200 || !strings.Contains(err.Error(), "too long") {
		t.Errorf("long vector: %v", err)
	}
	_, err = cvss.Parse("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:\x1b[31m")
	if err == nil || strings.ContainsRune(err.Error(), 0x1b) {
		t.Errorf("control characters not quoted: %q", err)
	}
}

func TestSeverity(t *testing.T) {
	for _, c := range []struct {
		score float64
		want  cvss.Severity
	}{
		{-1, cvss.None}, {0, cvss.None}, {0.04, cvss.None}, {0.05, cvss.Low}, {0.1, cvss.Low},
		{3.9, cvss.Low}, {3.94, cvss.Low}, {3.95, cvss.Medium}, {4, cvss.Medium}, {6.9, cvss.Medium},
		{7, cvss.High}, {8.9, cvss.High}, {9, cvss.Critical}, {10, cvss.Critical}, {11, cvss.Critical},
	} {
		if got := cvss.SeverityOf(c.score); got != c.want {
			t.Errorf("SeverityOf(%v) = %v, want %v", c.score, got, c.want)
		}
	}
	names := []string{"None", "Low", "Medium", "High", "Critical"}
	for i, n := range names {
		if got := cvss.Severity(i).String(); got != n {
			t.Errorf("Severity(%d) = %q", i, got)
		}
	}
	if got := cvss.Severity(9).String(); got != "Severity(9)" {
		t.Errorf("Severity(9) = %q", got)
	}
}

func TestSeverityText(t *testing.T) {
	b, err := json.Marshal(map[string]cvss.Severity{"s": cvss.High})
	if err != nil || string(b) != `{"s":"High"}` {
		t.Fatalf("Marshal = %s, %v", b, err)
	}
	var m map[string]cvss.Severity
	if err := json.Unmarshal([]byte(`{"a":"critical","b":"None"}`), &m); err != nil || m["a"] != cvss.Critical || m["b"] != cvss.None {
		t.Fatalf("Unmarshal = %v, %v", m, err)
	}
	if err := json.Unmarshal([]byte(`{"a":"severe"}`), &m); err == nil {
		t.Fatal("unknown severity accepted")
	}
	if _, err := cvss.Severity(7).MarshalText(); err == nil {
		t.Fatal("invalid severity marshalled")
	}
}

func TestVersionString(t *testing.T) {
	for v, want := range map[cvss.Version]string{0: "", cvss.V2: "2.0", cvss.V3_0: "3.0", cvss.V3_1: "3.1", cvss.V4_0: "4.0"} {
		if v.String() != want {
			t.Errorf("%d: %q", v, v.String())
		}
	}
	if !(cvss.V4_0 > cvss.V3_1 && cvss.V3_1 > cvss.V3_0 && cvss.V3_0 > cvss.V2) {
		t.Error("versions not ordered")
	}
}

// TestImportsOnlyStdlib is the dependency fence: the package (tests
// excluded) imports only the standard library.
func TestImportsOnlyStdlib(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if first, _, _ := strings.Cut(p, "/"); strings.Contains(first, ".") {
				t.Errorf("%s imports %s, outside the standard library", f, p)
			}
		}
	}
}
