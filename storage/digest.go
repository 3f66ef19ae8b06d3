package storage

import (
	"crypto"
	_ "crypto/sha256" // register SHA-256 for digest.Algorithm.Hash
	_ "crypto/sha512" // register SHA-512 for digest.Algorithm.Hash
	"fmt"
	"hash"

	"github.com/berth-dev/berth/internal/errcode"
	"github.com/opencontainers/go-digest"
)

// Supported digest algorithms. The OCI image specification registers
// exactly these two.
const (
	SHA256 = digest.SHA256
	SHA512 = digest.SHA512
)

// InvalidDigestError reports a malformed digest or one whose algorithm the
// store does not support.
type InvalidDigestError struct {
	// Digest is the rejected input (truncated to 200 bytes).
	Digest string
	// Reason says what is wrong with it.
	Reason string
}

func (e *InvalidDigestError) Error() string {
	return fmt.Sprintf("storage: invalid digest %q: %s", e.Digest, e.Reason)
}

// ErrorCode implements errcode.Coder: InvalidArgument.
func (e *InvalidDigestError) ErrorCode() errcode.Code { return errcode.InvalidArgument }

// ParseDigest parses s strictly: the algorithm must be sha256 or sha512 and
// the encoded part lower-case hex of exactly the algorithm's length. Any
// other input is an *InvalidDigestError.
func ParseDigest(s string) (digest.Digest, error) {
	d := digest.Digest(s)
	if err := ValidateDigest(d); err != nil {
		return "", err
	}
	return d, nil
}

// ValidateDigest checks d as ParseDigest does.
func ValidateDigest(d digest.Digest) error {
	s := string(d)
	bad := func(reason string) error {
		if len(s) > 200 {
			s = s[:200]
		}
		return &InvalidDigestError{Digest: s, Reason: reason}
	}
	i := 0
	for i < len(s) && s[i] != ':' {
		i++
	}
	if i == len(s) {
		return bad("missing algorithm separator ':'")
	}
	alg, enc := digest.Algorithm(s[:i]), s[i+1:]
	var want int
	switch alg {
	case SHA256:
		want = 64
	case SHA512:
		want = 128
	case "":
		return bad("empty algorithm")
	default:
		return bad("unsupported algorithm " + quoteShort(string(alg)))
	}
	if len(enc) != want {
		return bad(fmt.Sprintf("%s needs %d hex characters, got %d", alg, want, len(enc)))
	}
	for j := 0; j < len(enc); j++ {
		c := enc[j]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return bad("encoded part is not lower-case hex")
		}
	}
	return nil
}

func quoteShort(s string) string {
	if len(s) > 40 {
		s = s[:40]
	}
	return fmt.Sprintf("%q", s)
}

// newHash returns a new hash for a supported algorithm.
func newHash(alg digest.Algorithm) (hash.Hash, error) {
	switch alg {
	case SHA256:
		return crypto.SHA256.New(), nil
	case SHA512:
		return crypto.SHA512.New(), nil
	}
	return nil, &InvalidDigestError{Digest: string(alg) + ":", Reason: "unsupported algorithm " + quoteShort(string(alg))}
}
