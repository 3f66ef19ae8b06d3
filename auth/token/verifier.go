package token

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/berth-dev/berth/auth"
)

// DefaultLeeway is the clock skew verifiers tolerate on exp, nbf and iat.
const DefaultLeeway = 30 * time.Second

// maxAccessEntries bounds the access claim of a verified token.
const maxAccessEntries = 256

// VerifierOptions configures a Verifier. The zero value of every field is
// safe.
type VerifierOptions struct {
	// Service is the audience tokens must name. Default "berth".
	Service string
	// Issuer is the issuer tokens must name. Default "berth".
	Issuer string
	// Leeway is the tolerated clock skew. Default DefaultLeeway; at most
	// 5 minutes.
	Leeway time.Duration
	// UploadGrace is how long after expiry a token may still finish an
	// upload session it started (see auth.WithUploadGrace). Default
	// auth.DefaultUploadGrace; negative disables.
	UploadGrace time.Duration
	// CacheBytes bounds the memory of the cache of verified tokens. A token
	// whose signature, key, issuer and audience were checked once is
	// recognised by its SHA-256 until it expires, so that its signature is
	// not verified again on every request; the checks that depend on the
	// time (expiry, not-before, issued-at, upload grace) still run on
	// every use. Default DefaultCacheBytes; negative disables the cache.
	CacheBytes int64
	// Revalidator, when set, is asked whether the subject of a token may
	// still use it (for a registry token: not revoked, not expired), so
	// that revoking credentials stops the tokens issued for them within
	// RevalidateEvery rather than when they expire. Tokens without a
	// subject (anonymous) are not checked. Service.Verifier uses the
	// Service's Revalidator.
	Revalidator Revalidator
	// RevalidateEvery is how long the answer of the Revalidator for a
	// subject is remembered: the bound on how long a token keeps working
	// after its subject is revoked, and at most one Revalidate call per
	// subject per interval. Default DefaultRevalidateEvery; at most 1
	// minute; negative asks on every request.
	RevalidateEvery time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (o *VerifierOptions) setDefaults() error {
	if o.Leeway < 0 || o.Leeway > 5*time.Minute {
		return errors.New("token: VerifierOptions.Leeway must be between 0 and 5 minutes")
	}
	if o.RevalidateEvery > time.Minute {
		return errors.New("token: VerifierOptions.RevalidateEvery must be at most 1 minute")
	}
	if o.Service == "" {
		o.Service = DefaultService
	}
	if o.Issuer == "" {
		o.Issuer = DefaultIssuer
	}
	if o.Leeway == 0 {
		o.Leeway = DefaultLeeway
	}
	if o.RevalidateEvery == 0 {
		o.RevalidateEvery = DefaultRevalidateEvery
	}
	if o.UploadGrace == 0 {
		o.UploadGrace = auth.DefaultUploadGrace
	}
	if o.CacheBytes == 0 {
		o.CacheBytes = DefaultCacheBytes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// Verifier checks the access tokens the Service issues, and implements
// bearer.Verifier.
type Verifier struct {
	opts  VerifierOptions
	keys  map[string]verifyKey // by kid
	algs  []jose.SignatureAlgorithm
	cache *verifiedCache // nil when disabled
	subs  *subjectCache  // nil without a Revalidator
}

type verifyKey struct {
	pub crypto.PublicKey
	alg jose.SignatureAlgorithm
}

// NewVerifier returns a Verifier accepting tokens signed by any of the
// public keys (ECDSA P-256 or Ed25519; several for key rotation), each
// identified by its KeyID. A nil opts uses the defaults.
func NewVerifier(opts *VerifierOptions, keys ...crypto.PublicKey) (*Verifier, error) {
	var o VerifierOptions
	if opts != nil {
		o = *opts
	}
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, errors.New("token: NewVerifier needs at least one key")
	}
	v := &Verifier{opts: o, keys: map[string]verifyKey{}, cache: newVerifiedCache(o.CacheBytes), subs: newSubjectCache(o.Revalidator, o.RevalidateEvery)}
	for _, pub := range keys {
		var alg jose.SignatureAlgorithm
		switch k := pub.(type) {
		case *ecdsa.PublicKey:
			if k.Curve != elliptic.P256() {
				return nil, errors.New("token: ECDSA keys must be on P-256")
			}
			alg = jose.ES256
		case ed25519.PublicKey:
			alg = jose.EdDSA
		default:
			return nil, fmt.Errorf("token: unsupported public key type %T", pub)
		}
		kid, err := KeyID(pub)
		if err != nil {
			return nil, err
		}
		v.keys[kid] = verifyKey{pub: pub, alg: alg}
		if !slices.Contains(v.algs, alg) {
			v.algs = append(v.algs, alg)
		}
	}
	return v, nil
}

// accessEntry is one element of the access claim of the Docker token
// specification.
type accessEntry struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// berthClaims are the private claims of Berth's tokens.
type berthClaims struct {
	Access []accessEntry `json:"access"`
	// Use is "refresh" in refresh tokens and absent in access tokens.
	Use string `json:"use,omitempty"`
	// Rate is the subject's own request rate (auth.Identity.RateLimit),
	// when it has one.
	Rate *rateClaim `json:"rate,omitempty"`
}

// rateClaim carries an auth.RateLimit.
type rateClaim struct {
	PerSecond float64 `json:"perSecond"`
	Burst     int     `json:"burst"`
}

func unauth(reason string) error { return fmt.Errorf("token: %s: %w", reason, auth.ErrUnauthenticated) }

// parse checks a token's signature, issuer, audience, not-before and
// issued-at (with leeway) and returns its claims, which the caller must
// not modify; the caller checks the expiry. Tokens that pass are cached
// until they expire: a cached token skips the checks that cannot change
// (signature, key, algorithm, issuer, audience), never the time checks.
func (v *Verifier) parse(raw string) (*jwt.Claims, *berthClaims, error) {
	now := v.opts.Now()
	var key [32]byte
	if v.cache != nil {
		key = tokenKey(raw)
		if std, priv, ok := v.cache.get(key, now); ok {
			if err := v.checkTimes(std, now); err != nil {
				return nil, nil, err
			}
			return std, priv, nil
		}
	}
	std, priv, err := v.verifySigned(raw)
	if err != nil {
		return nil, nil, err
	}
	if err := v.checkTimes(std, now); err != nil {
		return nil, nil, err
	}
	if v.cache != nil {
		v.cache.add(key, len(raw), std, priv, std.Expiry.Time().Add(v.opts.Leeway), now)
	}
	return std, priv, nil
}

// verifySigned checks what does not depend on the time: the signature (by
// a known key with its algorithm), the presence of exp and iat, the issuer
// and the audience.
func (v *Verifier) verifySigned(raw string) (*jwt.Claims, *berthClaims, error) {
	tok, err := jwt.ParseSigned(raw, v.algs)
	if err != nil {
		return nil, nil, unauth("malformed token or algorithm not allowed")
	}
	if len(tok.Headers) != 1 {
		return nil, nil, unauth("want exactly one signature")
	}
	h := tok.Headers[0]
	k, ok := v.keys[h.KeyID]
	if !ok {
		return nil, nil, unauth("unknown key ID")
	}
	if jose.SignatureAlgorithm(h.Algorithm) != k.alg {
		return nil, nil, unauth("algorithm does not match the key")
	}
	var std jwt.Claims
	var priv berthClaims
	if err := tok.Claims(k.pub, &std, &priv); err != nil {
		return nil, nil, unauth("bad signature or claims")
	}
	if std.Expiry == nil || std.IssuedAt == nil {
		return nil, nil, unauth("exp and iat are required")
	}
	if std.Issuer != v.opts.Issuer {
		return nil, nil, unauth("wrong issuer")
	}
	if !std.Audience.Contains(v.opts.Service) {
		return nil, nil, unauth("wrong audience")
	}
	return &std, &priv, nil
}

// checkTimes checks not-before and issued-at (with leeway) at now; callers
// check the expiry, which depends on what the token is used for.
func (v *Verifier) checkTimes(std *jwt.Claims, now time.Time) error {
	if std.NotBefore != nil && now.Add(v.opts.Leeway).Before(std.NotBefore.Time()) {
		return unauth("not valid yet")
	}
	if now.Add(v.opts.Leeway).Before(std.IssuedAt.Time()) {
		return unauth("issued in the future")
	}
	return nil
}

// VerifyToken implements bearer.Verifier: it checks an access token's
// signature (ES256 or EdDSA by a known key, named by kid; "none" and every
// other algorithm are refused), issuer, audience (the service), expiry,
// not-before and issued-at (with Leeway), and returns an identity whose
// Subject is the token's subject ("" for anonymous tokens) and whose Scopes
// are exactly its access claim. An expired token is accepted only to
// finish an upload, restricted, as auth.WithUploadGrace describes. With a
// Revalidator, the subject must also still be valid (see
// VerifierOptions.Revalidator).
func (v *Verifier) VerifyToken(ctx context.Context, raw string) (*auth.Identity, error) {
	std, priv, err := v.parse(raw)
	if err != nil {
		return nil, err
	}
	if priv.Use != "" {
		return nil, unauth("not an access token")
	}
	if len(priv.Access) > maxAccessEntries {
		return nil, unauth("access claim too large")
	}
	id := &auth.Identity{Subject: std.Subject, Scopes: []auth.Scope{}, ExpiresAt: std.Expiry.Time()}
	if priv.Rate != nil {
		l := auth.RateLimit{PerSecond: priv.Rate.PerSecond, Burst: priv.Rate.Burst}
		if l.Validate() != nil {
			return nil, unauth("malformed rate claim")
		}
		id.RateLimit = &l
	}
	for _, a := range priv.Access {
		if a.Type == "" || a.Name == "" || len(a.Actions) == 0 {
			return nil, unauth("malformed access claim")
		}
		s := auth.Scope{Type: a.Type, Name: a.Name}
		for _, act := range a.Actions {
			if act != "" && !slices.Contains(s.Actions, act) {
				s.Actions = append(s.Actions, act)
			}
		}
		id.Scopes = append(id.Scopes, s)
	}
	now := v.opts.Now()
	if now.Add(-v.opts.Leeway).After(id.ExpiresAt) {
		g, ok := auth.UploadGraceFrom(ctx)
		if !ok || !g.HeldBy(id.Subject) || !g.Allows(std.IssuedAt.Time().Add(-v.opts.Leeway), id.ExpiresAt, now, v.opts.UploadGrace) {
			return nil, unauth("expired")
		}
		id.Scopes = g.Restrict(id.Scopes)
		id.Grace = true
	}
	if v.subs != nil && id.Subject != "" {
		if id.Grace {
			// Rare (an expired token finishing an upload): ask each time,
			// with the grace in ctx, so that credentials that expired
			// since, but were not revoked, may finish the upload too.
			if gid, err := v.subs.r.Revalidate(ctx, id.Subject); err != nil || gid == nil {
				if err != nil && !errors.Is(err, auth.ErrUnauthenticated) {
					return nil, err
				}
				return nil, unauth("subject no longer valid")
			}
		} else if err := v.subs.check(ctx, id.Subject, now); err != nil {
			return nil, err
		}
	}
	return id, nil
}

// verifyRefresh checks a refresh token and returns its subject.
func (v *Verifier) verifyRefresh(raw string) (string, error) {
	std, priv, err := v.parse(raw)
	if err != nil {
		return "", err
	}
	if priv.Use != "refresh" || std.Subject == "" {
		return "", unauth("not a refresh token")
	}
	if v.opts.Now().Add(-v.opts.Leeway).After(std.Expiry.Time()) {
		return "", unauth("expired")
	}
	return std.Subject, nil
}
