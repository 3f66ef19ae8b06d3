package manage_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// TestFragments checks that every /api/v1 operation and response status
// that another package documents in its own openapi.yaml (lifecycle,
// auth/tokens, the vulnerability routes) is in the whole API's document,
// so that the two do not drift apart.
func TestFragments(t *testing.T) {
	d := loadDoc(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	err = filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() && (e.Name() == ".git" || e.Name() == "testdata" || p == filepath.Join(root, "registry", "manage")) {
			return filepath.SkipDir
		}
		if e.Name() == "openapi.yaml" {
			found = append(found, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) == 0 {
		t.Fatal("no openapi.yaml fragments found")
	}
	for _, p := range found {
		rel, _ := filepath.Rel(root, p)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		frag, err := openapi3.NewLoader().LoadFromData(b)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			continue
		}
		for path, item := range frag.Paths.Map() {
			if !strings.HasPrefix(path, "/api/v1/") {
				continue
			}
			mine := d.Paths.Value(path)
			if mine == nil {
				t.Errorf("%s documents %s, which the API's document does not", rel, path)
				continue
			}
			for method, op := range item.Operations() {
				myOp := mine.GetOperation(method)
				if myOp == nil {
					t.Errorf("%s documents %s %s, which the API's document does not", rel, method, path)
					continue
				}
				for status := range op.Responses.Map() {
					if myOp.Responses.Value(status) == nil {
						t.Errorf("%s documents %s %s → %s, which the API's document does not", rel, method, path, status)
					}
				}
			}
		}
	}
	t.Logf("compared %d fragments", len(found))
}
