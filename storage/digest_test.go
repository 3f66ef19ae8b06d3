package storage

import (
	"errors"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errcode"
)

func TestParseDigest(t *testing.T) {
	good := []string{
		"sha256:" + strings.Repeat("a", 64),
		"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"sha512:" + strings.Repeat("0", 128),
	}
	for _, s := range good {
		if _, err := ParseDigest(s); err != nil {
			t.Errorf("ParseDigest(%q) = %v, want nil", s, err)
		}
	}
	bad := map[string]string{
		"":                                     "separator",
		"sha256":                               "separator",
		":" + strings.Repeat("a", 64):          "empty algorithm",
		"md5:d41d8cd98f00b204e9800998ecf8427e": "unsupported",
		"sha256:" + strings.Repeat("a", 63):    "64 hex",
		"sha256:" + strings.Repeat("A", 64):    "lower-case",
		"sha256:" + strings.Repeat("g", 64):    "lower-case",
		"sha512:" + strings.Repeat("a", 64):    "128 hex",
		"SHA256:" + strings.Repeat("a", 64):    "unsupported",
		"sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564": "unsupported",
	}
	for s, want := range bad {
		_, err := ParseDigest(s)
		var de *InvalidDigestError
		if !errors.As(err, &de) {
			t.Errorf("ParseDigest(%q) = %v, want *InvalidDigestError", s, err)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("ParseDigest(%q) = %q, want it to mention %q", s, err, want)
		}
		if errcode.Of(err) != errcode.InvalidArgument {
			t.Errorf("code = %v", errcode.Of(err))
		}
	}
}

func FuzzParseDigest(f *testing.F) {
	f.Add("sha256:" + strings.Repeat("a", 64))
	f.Add("sha512:" + strings.Repeat("f", 128))
	f.Add("sha256:")
	f.Add(":")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDigest(s)
		if err != nil {
			if d != "" {
				t.Fatalf("digest %q returned with error", d)
			}
			return
		}
		// Anything accepted must be valid for go-digest too and hashable.
		if err := d.Validate(); err != nil {
			t.Fatalf("ParseDigest accepted %q but go-digest rejects it: %v", s, err)
		}
		if _, err := newHash(d.Algorithm()); err != nil {
			t.Fatal(err)
		}
	})
}
