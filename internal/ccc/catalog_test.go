package ccc_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/ccc"
)

// The catalog matches shared/CCC.md: 23 requirements, each with both IDs
// and a test named after them; by classification, 10 apply at clear, 15 at
// green, 21 at amber and all 23 at red.
func TestCatalog(t *testing.T) {
	if len(ccc.Catalog) != 23 {
		t.Fatalf("%d requirements, want 23", len(ccc.Catalog))
	}
	reNew := regexp.MustCompile(`^CCC\.(Core|CntrReg)\.CN(\d\d)\.AR(\d\d)$`)
	reOld := regexp.MustCompile(`^CCC\.(Core|CntrReg)\.C(\d\d)\.TR(\d\d)$`)
	seen := map[string]bool{}
	count := map[ccc.TLP]int{}
	for _, q := range ccc.Catalog {
		n, o := reNew.FindStringSubmatch(q.ID), reOld.FindStringSubmatch(q.LegacyID)
		if n == nil || o == nil || n[1] != o[1] || n[2] != o[2] || n[3] != o[3] {
			t.Errorf("%s / %s: the IDs do not correspond", q.ID, q.LegacyID)
			continue
		}
		want := "TestCCC_" + n[1] + "_CN" + n[2] + "_AR" + n[3] + "_C" + o[2] + "_TR" + o[3] + "_"
		if !strings.HasPrefix(q.Test, want) {
			t.Errorf("%s: test %s, want a name starting %s", q.ID, q.Test, want)
		}
		if seen[q.ID] || seen[q.Test] {
			t.Errorf("%s: duplicate", q.ID)
		}
		seen[q.ID], seen[q.Test] = true, true
		for _, l := range q.TLP {
			count[l]++
		}
		if got, ok := ccc.Lookup(q.LegacyID); !ok || got.ID != q.ID {
			t.Errorf("Lookup(%s) = %v, %v", q.LegacyID, got.ID, ok)
		}
	}
	for l, want := range map[ccc.TLP]int{ccc.Clear: 10, ccc.Green: 15, ccc.Amber: 21, ccc.Red: 23} {
		if count[l] != want {
			t.Errorf("%d requirements apply at %s, want %d", count[l], l, want)
		}
	}
}

func TestReportFiles(t *testing.T) {
	rep := &ccc.Report{Catalog: "test", Profile: ccc.Amber, Target: "t", GeneratedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	for i, q := range ccc.Catalog[:3] {
		rep.Records = append(rep.Records, ccc.Record{Requirement: q, Result: []ccc.Result{ccc.Passed, ccc.Failed, ccc.NeedsReview}[i], Evidence: []string{"a | b", "line\nbreak"}})
	}
	dir := t.TempDir()
	if err := rep.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	back, err := ccc.ReadFile(filepath.Join(dir, ccc.JSONName))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(rep)
	b, _ := json.Marshal(back)
	if !bytes.Equal(a, b) {
		t.Errorf("JSON round trip:\n%s\n%s", a, b)
	}
	md, err := os.ReadFile(filepath.Join(dir, ccc.MarkdownName))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| [CCC.Core.CN01.AR01](#ccccorecn01ar01) | CCC.Core.C01.TR01 |",
		"`TestCCC_Core_CN01_AR01_C01_TR01_TLS13Only` | **Passed** |",
		"**Failed** |", "1 Passed, 1 Failed, 1 NeedsReview, 0 NotApplicable (of 3)",
		"- a \\| b\n- line break\n", "### CCC.Core.CN01.AR03",
	} {
		if !bytes.Contains(md, []byte(want)) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
}
