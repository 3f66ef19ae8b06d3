package native_test

import (
	"archive/zip"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/scan/native"
)

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestLoadDB(t *testing.T) {
	a, err := native.LoadDB("testdata/osv")
	if err != nil {
		t.Fatal(err)
	}
	if a.Len() != 8 { // nine files, one withdrawn
		t.Errorf("Len = %d", a.Len())
	}
	if a.Records("Debian:12") != 4 || a.Records("debian:12") != 4 || a.Records("Go") != 4 || a.Records("Alpine:v3.19") != 0 {
		t.Errorf("Records: Debian:12 %d, Go %d", a.Records("Debian:12"), a.Records("Go"))
	}

	// The same data elsewhere has the same version; a change changes it.
	dir := t.TempDir()
	copyDir(t, "testdata/osv", dir)
	b, err := native.LoadDB(dir)
	if err != nil {
		t.Fatal(err)
	}
	if a.Version() != b.Version() {
		t.Errorf("copied data: version %s, want %s", b.Version(), a.Version())
	}
	os.WriteFile(filepath.Join(dir, "go", "BERTH-TEST-GO-0002.json"), []byte(`{"id":"BERTH-TEST-GO-0002"}`), 0o644)
	c, err := native.LoadDB(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Version() == a.Version() {
		t.Error("changed data kept its version")
	}

	// A zip of records (osv.dev's all.zip) and an array file load too.
	zpath := filepath.Join(t.TempDir(), "all.zip")
	f, _ := os.Create(zpath)
	zw := zip.NewWriter(f)
	w, _ := zw.Create("DEBIAN-CVE-2005-2541.json")
	w.Write(readFile(t, "testdata/osv/debian/DEBIAN-CVE-2005-2541.json"))
	zw.Close()
	f.Close()
	arr := filepath.Join(t.TempDir(), "more.json")
	os.WriteFile(arr, []byte(`[{"id":"X-1","affected":[{"package":{"ecosystem":"npm","name":"x"}}]},{"id":"X-2"}]`), 0o644)
	d, err := native.LoadDB(zpath, arr)
	if err != nil || d.Len() != 3 || d.Records("Debian:12") != 1 || d.Records("npm") != 1 {
		t.Errorf("zip+array: %v, Len %d", err, d.Len())
	}

	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"id": 5}`), 0o644)
	if _, err := native.LoadDB(bad); err == nil {
		t.Error("loaded an invalid record")
	}
	if _, err := native.LoadDB(); err == nil {
		t.Error("LoadDB without paths succeeded")
	}
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, "testdata/osv", dir)
	db, err := native.LoadDB(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := newScanner(t, db)
	if changed, err := s.Reload(dir); changed || err != nil {
		t.Errorf("unchanged data: %v, %v", changed, err)
	}
	os.Remove(filepath.Join(dir, "go", "BERTH-TEST-GO-0002.json"))
	if changed, err := s.Reload(dir); !changed || err != nil || s.DB().Len() != db.Len()-1 {
		t.Errorf("changed data: %v, %v, Len %d", changed, err, s.DB().Len())
	}
	v := s.DB().Version()
	if _, err := s.Reload(filepath.Join(dir, "missing")); err == nil || s.DB().Version() != v {
		t.Errorf("failed reload: %v; version %s, want %s", err, s.DB().Version(), v)
	}
}
