package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/go-jose/go-jose/v4"
)

// Key is a signing key of the token service: an ECDSA P-256 key (ES256) or
// an Ed25519 key (EdDSA), with its key ID.
type Key struct {
	priv crypto.Signer
	alg  jose.SignatureAlgorithm
	kid  string
}

// GenerateKey returns a new ECDSA P-256 (ES256) key.
func GenerateKey() (*Key, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return NewKey(priv)
}

// NewKey wraps a private key: an *ecdsa.PrivateKey on P-256 (ES256) or an
// ed25519.PrivateKey (EdDSA). Other keys are refused.
func NewKey(priv crypto.Signer) (*Key, error) {
	var alg jose.SignatureAlgorithm
	switch k := priv.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, errors.New("token: ECDSA keys must be on P-256")
		}
		alg = jose.ES256
	case ed25519.PrivateKey:
		alg = jose.EdDSA
	default:
		return nil, fmt.Errorf("token: unsupported key type %T (want ECDSA P-256 or Ed25519)", priv)
	}
	kid, err := KeyID(priv.Public())
	if err != nil {
		return nil, err
	}
	return &Key{priv: priv, alg: alg, kid: kid}, nil
}

// KeyID returns the key ID of a public key: the unpadded base64url
// RFC 7638 SHA-256 thumbprint of its JWK.
func KeyID(pub crypto.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("token: key thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// ID returns the key ID, sent as the "kid" header of every token.
func (k *Key) ID() string { return k.kid }

// Algorithm returns the JWS algorithm, "ES256" or "EdDSA".
func (k *Key) Algorithm() string { return string(k.alg) }

// Public returns the public key.
func (k *Key) Public() crypto.PublicKey { return k.priv.Public() }

// JWKS returns the JSON Web Key Set of the public keys, for publishing to
// verifiers elsewhere (auth/jwks accepts it).
func JWKS(keys ...*Key) ([]byte, error) {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"})
	}
	return json.Marshal(set)
}

// MarshalPEM returns the private key as a PKCS #8 PEM block.
func (k *Key) MarshalPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.priv)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseKeyPEM parses a PKCS #8 ("PRIVATE KEY") or SEC 1 ("EC PRIVATE
// KEY") PEM block holding an ECDSA P-256 or Ed25519 key.
func ParseKeyPEM(data []byte) (*Key, error) {
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, errors.New("token: no PEM block in key")
	}
	var priv any
	var err error
	switch b.Type {
	case "PRIVATE KEY":
		priv, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		priv, err = x509.ParseECPrivateKey(b.Bytes)
	default:
		return nil, fmt.Errorf("token: unsupported PEM block %q", b.Type)
	}
	if err != nil {
		return nil, errors.New("token: malformed private key")
	}
	s, ok := priv.(crypto.Signer)
	if !ok {
		return nil, errors.New("token: unsupported private key")
	}
	return NewKey(s)
}

// LoadOrCreateKeyFile reads the PEM key at path, or, when the file does not
// exist, generates an ES256 key and writes it there with mode 0600. The
// file appears atomically and complete (written to a temporary file, synced,
// then hard-linked into place), so that nodes starting together agree on
// one key. A key file readable by group or others is refused.
func LoadOrCreateKeyFile(path string) (*Key, error) {
	for range 2 {
		data, err := os.ReadFile(path)
		if err == nil {
			if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
				return nil, fmt.Errorf("token: key file %s is accessible by others (mode %v); chmod 600 it", path, st.Mode().Perm())
			}
			return ParseKeyPEM(data)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		k, err := GenerateKey()
		if err != nil {
			return nil, err
		}
		pemData, err := k.MarshalPEM()
		if err != nil {
			return nil, err
		}
		if err := createExclusive(path, pemData); errors.Is(err, fs.ErrExist) {
			continue
		} else if err != nil {
			return nil, err
		}
		return k, nil
	}
	return nil, fmt.Errorf("token: could not create or read key file %s", path)
}

// createExclusive writes data to path only if path does not exist, so that
// path is never seen partly written.
func createExclusive(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".token-key-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Link(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
