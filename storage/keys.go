package storage

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gocloud.dev/secrets"
	"gocloud.dev/secrets/localsecrets"
)

// LoadOrCreateKeyFile returns a keeper for the local key-encryption key in
// the file at path, creating the file (mode 0600, a fresh random 256-bit
// key, base64) when it does not exist, and the key's ID: "local-" followed
// by the first 16 hex digits of the SHA-256 of the key, so that a new key
// file gets a new ID and RotateKeys knows what to re-wrap.
//
// The local key file is the default for a single machine; production
// deployments keep the key in a KMS instead (see OpenKeeper).
func LoadOrCreateKeyFile(path string) (*secrets.Keeper, string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key, kerr := localsecrets.NewRandomKey()
		if kerr != nil {
			return nil, "", kerr
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, "", fmt.Errorf("storage: create key directory: %w", err)
		}
		f, ferr := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if errors.Is(ferr, os.ErrExist) {
			return LoadOrCreateKeyFile(path) // another process created it first
		}
		if ferr != nil {
			return nil, "", fmt.Errorf("storage: create key file: %w", ferr)
		}
		_, werr := f.WriteString(base64.StdEncoding.EncodeToString(key[:]) + "\n")
		serr := f.Sync()
		if cerr := f.Close(); werr == nil && serr == nil {
			werr = cerr
		}
		if werr = errors.Join(werr, serr); werr != nil {
			return nil, "", fmt.Errorf("storage: write key file: %w", werr)
		}
		return localsecrets.NewKeeper(key), localKeyID(key[:]), nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("storage: read key file: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, "", fmt.Errorf("storage: key file %s is readable by others (mode %v); chmod 600 it", path, fi.Mode().Perm())
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(raw) != 32 {
		return nil, "", fmt.Errorf("storage: key file %s does not hold a base64 256-bit key", path)
	}
	var key [32]byte
	copy(key[:], raw)
	return localsecrets.NewKeeper(key), localKeyID(raw), nil
}

func localKeyID(key []byte) string {
	sum := sha256.Sum256(key)
	return "local-" + hex.EncodeToString(sum[:8])
}

// OpenKeeper opens a gocloud.dev secrets URL (base64key://, and awskms://,
// gcpkms://, azurekeyvault:// or hashivault:// once the driver package is
// imported) and returns the keeper and a key ID for it: the URL without its
// query and without any base64 key material.
func OpenKeeper(ctx context.Context, urlstr string) (*secrets.Keeper, string, error) {
	k, err := secrets.OpenKeeper(ctx, urlstr)
	if err != nil {
		// The URL may carry key material: never echo it.
		scheme, _, _ := strings.Cut(urlstr, "://")
		return nil, "", fmt.Errorf("storage: open keeper (scheme %q): %w", scheme, redactErr(err, urlstr))
	}
	id, _, _ := strings.Cut(urlstr, "?")
	if rest, ok := strings.CutPrefix(id, "base64key://"); ok {
		raw, _ := base64.URLEncoding.DecodeString(rest)
		id = localKeyID(raw)
	}
	return k, id, nil
}

// redactErr removes s from err's message.
func redactErr(err error, s string) error {
	if s == "" || !strings.Contains(err.Error(), s) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), s, "[REDACTED]"))
}
