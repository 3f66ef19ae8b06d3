package signedurl

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/internal/errcode"
	"github.com/berth-dev/berth/internal/ociname"
	"github.com/opencontainers/go-digest"
)

// The query parameters of a signed URL.
const (
	// ParamExpires is the expiry, in Unix seconds.
	ParamExpires = "expires"
	// ParamKeyID names the key that signed the URL.
	ParamKeyID = "keyid"
	// ParamSignature is the unpadded base64url HMAC-SHA256 signature. Its
	// name is on the access log's default redaction list.
	ParamSignature = "signature"
)

// Params lists the query parameters of a signed URL, for logs that
// redact by name (the signature is the secret one).
var Params = []string{ParamExpires, ParamKeyID, ParamSignature}

// Kind says what a signed URL reads.
type Kind string

// The kinds of content a URL can be signed for; each is the path segment
// of its /v2/ route.
const (
	Manifest Kind = "manifests"
	Blob     Kind = "blobs"
)

// Limits of TTLs and keys.
const (
	// DefaultMaxTTL is Options.MaxTTL when it is zero.
	DefaultMaxTTL = time.Hour
	// LimitMaxTTL is the largest Options.MaxTTL allowed.
	LimitMaxTTL = 7 * 24 * time.Hour
	// MinKeyBytes is the shortest key secret accepted.
	MinKeyBytes = 32
	// Subject is the Identity.Subject of requests authenticated by a
	// signed URL.
	Subject = "signed-url"
	// MaxClockSkew is how far past MaxTTL ahead an expiry may lie when a
	// URL is verified, so that a server whose clock is slightly behind
	// the signer's still accepts a URL signed for the longest lifetime.
	MaxClockSkew = time.Minute
)

// signing context, so that these MACs can never be confused with other
// uses of the same key.
const version = "berth-signed-url-v1"

// Key is one signing key.
type Key struct {
	// ID names the key in URLs: 1 to 64 characters of [A-Za-z0-9._-]. It
	// is public.
	ID string
	// Secret is the HMAC-SHA256 key, at least MinKeyBytes random bytes.
	Secret []byte
}

// Options configures a Signer. A nil *Options is the zero value, and the
// zero value of every field is safe.
type Options struct {
	// MaxTTL bounds how far ahead a URL's expiry may lie, when signing
	// and when verifying. Default DefaultMaxTTL; at most LimitMaxTTL.
	MaxTTL time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (o *Options) validate() error {
	if o.MaxTTL < 0 || o.MaxTTL > LimitMaxTTL {
		return fmt.Errorf("signedurl: Options.MaxTTL must be between 0 and %s", LimitMaxTTL)
	}
	return nil
}

// String describes the effective options, for start-up logs.
func (o Options) String() string {
	return fmt.Sprintf("maxTTL=%s", o.MaxTTL)
}

// Signer signs URLs and verifies them. It is safe for concurrent use.
type Signer struct {
	keys []Key // oldest first; keys[len-1] signs
	byID map[string][]byte
	opts Options
}

// NewSigner returns a Signer with keys, oldest first: the last key signs,
// any of them verifies. Key IDs must be unique. The secrets are copied.
func NewSigner(keys []Key, opts *Options) (*Signer, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.MaxTTL == 0 {
		o.MaxTTL = DefaultMaxTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if len(keys) == 0 {
		return nil, errors.New("signedurl: NewSigner needs at least one key")
	}
	s := &Signer{byID: map[string][]byte{}, opts: o}
	for _, k := range keys {
		if !validKeyID(k.ID) {
			return nil, fmt.Errorf("signedurl: key ID %q must be 1 to 64 characters of [A-Za-z0-9._-]", k.ID)
		}
		if len(k.Secret) < MinKeyBytes {
			return nil, fmt.Errorf("signedurl: key %q is shorter than %d bytes", k.ID, MinKeyBytes)
		}
		if _, dup := s.byID[k.ID]; dup {
			return nil, fmt.Errorf("signedurl: key ID %q is given twice", k.ID)
		}
		k.Secret = slices.Clone(k.Secret)
		s.byID[k.ID] = k.Secret
		s.keys = append(s.keys, k)
	}
	return s, nil
}

func validKeyID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Options returns the effective options.
func (s *Signer) Options() Options { return s.opts }

// KeyIDs returns the configured key IDs, oldest first; the last one signs.
func (s *Signer) KeyIDs() []string {
	ids := make([]string, len(s.keys))
	for i, k := range s.keys {
		ids[i] = k.ID
	}
	return ids
}

func invalid(format string, args ...any) error {
	return errcode.Newf(errcode.InvalidArgument, nil, "signedurl: "+format, args...)
}

// Sign returns the path and query of a URL that reads the manifest or blob
// d of repository repo until expires (truncated to the second), signed
// with the newest key. Join it to the registry's base URL. The expiry must
// lie in the future and at most MaxTTL ahead.
func (s *Signer) Sign(repo string, kind Kind, d digest.Digest, expires time.Time) (string, error) {
	if err := ociname.ValidateName(repo); err != nil {
		return "", invalid("invalid repository name: %v", err)
	}
	if kind != Manifest && kind != Blob {
		return "", invalid("unknown kind %q (want %q or %q)", kind, Manifest, Blob)
	}
	if err := d.Validate(); err != nil {
		return "", invalid("reference %q is not a digest (sign digests; resolve tags first)", d)
	}
	exp := expires.Unix()
	now := s.opts.Now()
	if exp <= now.Unix() {
		return "", invalid("expiry %s is not in the future", expires.UTC().Format(time.RFC3339))
	}
	if expires.Sub(now) > s.opts.MaxTTL {
		return "", invalid("expiry %s lies more than %s ahead", expires.UTC().Format(time.RFC3339), s.opts.MaxTTL)
	}
	k := s.keys[len(s.keys)-1]
	path := "/v2/" + repo + "/" + string(kind) + "/" + d.String()
	q := url.Values{}
	q.Set(ParamExpires, strconv.FormatInt(exp, 10))
	q.Set(ParamKeyID, k.ID)
	q.Set(ParamSignature, mac(k.Secret, k.ID, exp, path))
	return path + "?" + q.Encode(), nil
}

// mac is the signature of path until exp with key id.
func mac(secret []byte, id string, exp int64, path string) string {
	m := hmac.New(sha256.New, secret)
	// Each field is length-prefixed, so no two inputs share a string.
	fmt.Fprintf(m, "%s\n%d:%s\n%d\n%d:%s", version, len(id), id, exp, len(path), path)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Signed reports whether r carries any signed-URL parameter, and so is
// judged by Verify alone.
func Signed(r *http.Request) bool {
	if r.URL.RawQuery == "" {
		return false
	}
	q := r.URL.Query()
	for _, p := range Params {
		if _, ok := q[p]; ok {
			return true
		}
	}
	return false
}

func unauth(reason string) error {
	return fmt.Errorf("signedurl: %s: %w", reason, auth.ErrUnauthenticated)
}

// Verify checks the signed URL of r. It returns an identity holding pull
// on the URL's repository, expiring with the URL, or an error matching
// auth.ErrUnauthenticated. The URL must be exactly as signed: method GET
// or HEAD, the signed path, and no query parameters but the three of
// Params, each once.
func (s *Signer) Verify(r *http.Request) (*auth.Identity, error) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return nil, unauth("method " + r.Method + " is not allowed with a signed URL")
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, unauth("malformed query")
	}
	for k, v := range q {
		if !slices.Contains(Params, k) {
			return nil, unauth("unexpected query parameter")
		}
		if len(v) != 1 {
			return nil, unauth("repeated query parameter")
		}
	}
	expStr, id, sig := q.Get(ParamExpires), q.Get(ParamKeyID), q.Get(ParamSignature)
	if expStr == "" || id == "" || sig == "" {
		return nil, unauth("incomplete signed URL")
	}
	exp, err := strconv.ParseInt(expStr, 10, 64)
	if err != nil || strconv.FormatInt(exp, 10) != expStr {
		return nil, unauth("malformed expiry")
	}
	secret, ok := s.byID[id]
	if !ok {
		return nil, unauth("unknown key ID")
	}
	want := mac(secret, id, exp, r.URL.Path)
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return nil, unauth("signature mismatch")
	}
	// Only now is the expiry known to be the signer's.
	now := s.opts.Now()
	expires := time.Unix(exp, 0)
	if !now.Before(expires) {
		return nil, unauth("expired")
	}
	if expires.Sub(now) > s.opts.MaxTTL+MaxClockSkew {
		return nil, unauth("expiry lies beyond the maximum TTL")
	}
	repo, ok := repository(r.URL.Path)
	if !ok {
		return nil, unauth("not a manifest or blob path")
	}
	return &auth.Identity{
		Subject:   Subject,
		Scopes:    []auth.Scope{{Type: auth.TypeRepository, Name: repo, Actions: []string{auth.Pull}}},
		ExpiresAt: expires,
	}, nil
}

// repository returns the repository of a signed path,
// /v2/<name>/(manifests|blobs)/<digest>, when the path is one.
func repository(p string) (string, bool) {
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		return "", false
	}
	i := strings.LastIndexByte(rest, '/')
	if i < 0 {
		return "", false
	}
	ref := rest[i+1:]
	rest = rest[:i]
	j := strings.LastIndexByte(rest, '/')
	if j < 0 {
		return "", false
	}
	kind, name := Kind(rest[j+1:]), rest[:j]
	if kind != Manifest && kind != Blob {
		return "", false
	}
	if digest.Digest(ref).Validate() != nil || ociname.ValidateName(name) != nil || auth.IsPattern(name) {
		return "", false
	}
	return name, true
}

// Wrap returns an Authenticator that verifies requests carrying signed-URL
// parameters (see Signed) with Verify, and passes every other request to
// next (nil: anonymous). A request with signed-URL parameters is never
// passed on, whatever its Authorization header says, so a bad signature
// cannot fall back to other credentials.
func (s *Signer) Wrap(next auth.Authenticator) auth.Authenticator {
	return auth.AuthenticatorFunc(func(r *http.Request) (*auth.Identity, error) {
		if Signed(r) {
			return s.Verify(r)
		}
		if next == nil {
			return auth.Anonymous, nil
		}
		return next.Authenticate(r)
	})
}
