package signedurl_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/auth/signedurl"
)

func TestKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	keys, err := signedurl.LoadOrCreateKeyFile(path)
	if err != nil || len(keys) != 1 || len(keys[0].Secret) != 32 {
		t.Fatalf("created %v, %v", len(keys), err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode().Perm())
	}
	again, err := signedurl.LoadOrCreateKeyFile(path)
	if err != nil || again[0].ID != keys[0].ID || string(again[0].Secret) != string(keys[0].Secret) {
		t.Fatalf("reloaded %v, %v", again, err)
	}
	// Rotation: append a line; the new key signs, both verify.
	line, _ := signedurl.NewKeyLine(time.Now())
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	_, _ = f.WriteString(line)
	_ = f.Close()
	keys, err = signedurl.LoadOrCreateKeyFile(path)
	if err != nil || len(keys) != 2 {
		t.Fatalf("after rotation: %d keys, %v", len(keys), err)
	}
	s, err := signedurl.NewSigner(keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ids := s.KeyIDs(); ids[1] != strings.Fields(line)[0] {
		t.Fatalf("signing key %v, want the appended one", ids)
	}
	_ = os.Chmod(path, 0o644)
	if _, err := signedurl.LoadOrCreateKeyFile(path); err == nil {
		t.Fatal("a world-readable key file was accepted")
	}
	for _, bad := range []string{"", "# only a comment\n", "k1\n", "k1 !!!\n", "k1 a b\n"} {
		if _, err := signedurl.ParseKeys([]byte(bad)); err == nil {
			t.Errorf("ParseKeys(%q) succeeded", bad)
		}
	}
}
