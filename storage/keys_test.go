package storage_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/storage"
)

func TestLoadOrCreateKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "kek")
	k1, id1, err := storage.LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v", fi.Mode().Perm(), err)
	}
	ct, err := k1.Encrypt(context.Background(), []byte("data key"))
	if err != nil {
		t.Fatal(err)
	}
	k2, id2, err := storage.LoadOrCreateKeyFile(path)
	if err != nil || id1 != id2 || !strings.HasPrefix(id1, "local-") {
		t.Fatalf("reload: ids %q %q, %v", id1, id2, err)
	}
	if pt, err := k2.Decrypt(context.Background(), ct); err != nil || string(pt) != "data key" {
		t.Fatalf("reloaded key does not decrypt: %v", err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := storage.LoadOrCreateKeyFile(path); err == nil {
		t.Fatal("a world-readable key file was accepted")
	}
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, []byte("not a key"), 0o600)
	if _, _, err := storage.LoadOrCreateKeyFile(bad); err == nil {
		t.Fatal("a malformed key file was accepted")
	}
}

func TestOpenKeeperRedacts(t *testing.T) {
	const secret = "smGbjm71Nxd1Ig5FS0wj9SlbzAIrnolCz9bQQ6uAhl4="
	_, _, err := storage.OpenKeeper(context.Background(), "base64key://"+secret+"?nonsense=1")
	if err == nil {
		t.Fatal("invalid keeper URL accepted")
	}
	if strings.Contains(err.Error(), "smGbjm") {
		t.Fatalf("error reveals the key: %v", err)
	}
	k, id, err := storage.OpenKeeper(context.Background(), "base64key://"+secret)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	if strings.Contains(id, "smGbjm") || !strings.HasPrefix(id, "local-") {
		t.Fatalf("key ID %q reveals the key", id)
	}
}
