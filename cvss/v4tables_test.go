package cvss

import "testing"

// TestMacroVectorTable guards the lookup table copied from cvss_lookup.js:
// one entry for each of the 270 MacroVectors that exist, none for EQ3=2
// with EQ6=0, scores in (0, 10], and the sum of all scores as a checksum
// of the data as published (1656.3 over the 270 entries).
func TestMacroVectorTable(t *testing.T) {
	seen := map[string]bool{}
	var sum int
	for _, e := range macroVectorScores {
		if len(e.mv) != 6 || seen[e.mv] {
			t.Fatalf("bad or duplicate MacroVector %q", e.mv)
		}
		seen[e.mv] = true
		if e.score <= 0 || e.score > 100 {
			t.Errorf("%s: score %d", e.mv, e.score)
		}
		sum += int(e.score)
	}
	if len(seen) != 270 {
		t.Errorf("%d MacroVectors, want 270", len(seen))
	}
	n := 0
	for e1 := range 3 {
		for e2 := range 2 {
			for e3 := range 3 {
				for e4 := range 3 {
					for e5 := range 3 {
						for e6 := range 2 {
							s := macroScore[e1][e2][e3][e4][e5][e6]
							if (e3 == 2 && e6 == 0) != (s < 0) {
								t.Errorf("%d%d%d%d%d%d: score %d", e1, e2, e3, e4, e5, e6, s)
							}
							if s >= 0 {
								n++
							}
						}
					}
				}
			}
		}
	}
	if n != 270 {
		t.Errorf("%d indexed MacroVectors, want 270", n)
	}
	t.Logf("checksum %d", sum)
	if sum != wantLookupSum {
		t.Errorf("sum of scores %d tenths, want %d", sum, wantLookupSum)
	}
}

const wantLookupSum = 16563 // tenths
