package native

import (
	"os"
	"testing"
)

func FuzzRPMHeader(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 3, 232, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 1, 'a', 'b', 'c', 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		parseRPMHeader(b)
	})
}

func TestReadRPMSQLiteCorrupt(t *testing.T) {
	b, err := os.ReadFile("testdata/rpm/rpmdb.sqlite")
	if err != nil {
		t.Fatal(err)
	}
	for _, cut := range []int{100, 4096, len(b) / 2} {
		c := append([]byte(nil), b[:cut]...)
		if _, err := readRPMSQLite(t.Context(), c); err == nil && cut < len(b)/2 {
			t.Logf("truncated to %d bytes: no error", cut)
		}
	}
}
