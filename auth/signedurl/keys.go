package signedurl

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"
)

// ParseKeys parses a key file: one key per line, "ID SECRET" with the
// secret in base64 (standard or URL alphabet, padded or not), oldest
// first, so that the last line signs. Blank lines and lines starting with
// '#' are ignored. Rotate by appending a line; retire a key by deleting
// its line once the URLs it signed have expired.
func ParseKeys(data []byte) ([]Key, error) {
	var keys []Key
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("signedurl: key file line %d: want \"ID SECRET\"", n)
		}
		secret, err := decode(f[1])
		if err != nil {
			return nil, fmt.Errorf("signedurl: key file line %d: the secret is not base64", n)
		}
		keys = append(keys, Key{ID: f[0], Secret: secret})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("signedurl: key file: %w", err)
	}
	if len(keys) == 0 {
		return nil, errors.New("signedurl: the key file holds no key")
	}
	return keys, nil
}

func decode(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if strings.ContainsAny(s, "+/") {
		return base64.RawStdEncoding.DecodeString(s)
	}
	return base64.RawURLEncoding.DecodeString(s)
}

// NewKeyLine returns a key file line with a fresh 32-byte secret, named
// by the date (and a random suffix).
func NewKeyLine(now time.Time) (string, error) {
	var secret [32]byte
	var suffix [3]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return "", err
	}
	if _, err := rand.Read(suffix[:]); err != nil {
		return "", err
	}
	id := now.UTC().Format("20060102") + "-" + base64.RawURLEncoding.EncodeToString(suffix[:])
	return id + " " + base64.RawURLEncoding.EncodeToString(secret[:]) + "\n", nil
}

// LoadOrCreateKeyFile reads the key file at path (see ParseKeys),
// creating it with one fresh key, mode 0600, when it does not exist. It
// refuses a file readable by others. Servers sharing URLs share the file.
func LoadOrCreateKeyFile(path string) ([]Key, error) {
	for range 2 {
		data, err := os.ReadFile(path)
		if err == nil {
			if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
				return nil, fmt.Errorf("signedurl: key file %s is accessible by others (mode %v); chmod 600 it", path, st.Mode().Perm())
			}
			return ParseKeys(data)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("signedurl: %w", err)
		}
		line, err := NewKeyLine(time.Now())
		if err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue // created concurrently: read it
		}
		if err != nil {
			return nil, fmt.Errorf("signedurl: %w", err)
		}
		_, err = f.WriteString("# Signed-URL keys, oldest first; the last one signs.\n" + line)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			_ = os.Remove(path)
			return nil, fmt.Errorf("signedurl: write key file: %w", err)
		}
		return ParseKeys([]byte(line))
	}
	return nil, fmt.Errorf("signedurl: could not create or read key file %s", path)
}
