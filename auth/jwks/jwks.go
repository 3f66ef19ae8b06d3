// Package jwks verifies JWTs from an external issuer (an OpenID Connect
// provider or any single sign-on service) against its JSON Web Key Set, and
// maps their claims to an auth.Identity, for use as a bearer.Verifier:
//
//	sso, _ := jwks.NewVerifier(&jwks.Options{
//		Issuer:   "https://login.example.com/",
//		Audience: "berth",
//		URL:      "https://login.example.com/.well-known/jwks.json",
//		Claims:   jwks.ClaimMapping{Groups: "groups", AdminGroups: []string{"registry-admins"},
//			GroupScopes: map[string][]string{"team-a": {"repository:team-a/**:pull,push"}}},
//	})
//	authn := auth.ByScheme(basicAuthn, bearer.New(tokenService.Verifier(), sso))
//
// # Claims
//
// The identity's Subject is the Claims.Subject claim ("sub" by default),
// which must be a non-empty string. Its Scopes are the union of the scope
// strings in the Claims.Scopes claim (a space-separated string or an array;
// entries that are not valid scopes, such as OpenID's "openid profile", are
// ignored) and the GroupScopes of each group named in the Claims.Groups
// claim. Members of an AdminGroups group are administrators (Admin set,
// Scopes nil: they may do everything). An identity with no mapped scopes
// may still pull public repositories and nothing else.
//
// # Keys
//
// The key set comes from Options.JWKS (static) or is fetched from
// Options.URL (https, or http on a loopback address) at the first use,
// again every RefreshInterval (15 minutes), and when a token names an
// unknown kid, at most once per MinRefreshInterval (1 minute), so that key
// rotation is picked up without letting forged kids hammer the issuer. A
// failed refresh keeps the previous keys. Responses are limited to 1 MiB.
//
// # Errors
//
// Tokens from another issuer, and invalid tokens, are errors matching
// auth.ErrUnauthenticated naming the reason (never the token). When no key
// set could ever be fetched, VerifyToken returns another error (the caller
// answers 500 rather than 401).
//
// # Concurrency
//
// A Verifier is safe for concurrent use; concurrent refreshes are merged.
//
// # Security
//
// Only the configured algorithms are accepted (RS256, ES256 and EdDSA by
// default; never "none" or HMAC); the key must match the token's kid (or be
// the only key of the set when the token has none) and its algorithm; RSA
// keys must have at least 2048 bits; private keys in a key set are refused.
// exp and iat are required; iss must equal Issuer and aud must contain
// Audience; 30 s of clock skew is tolerated. The issuer is checked before
// any key is fetched. Expired tokens may finish an upload session as
// auth.WithUploadGrace describes.
package jwks

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/berth-dev/berth/auth"
)

// MaxKeySetBytes bounds a fetched key set.
const MaxKeySetBytes = 1 << 20

// ClaimMapping says how token claims become an identity.
type ClaimMapping struct {
	// Subject is the claim naming the user. Default "sub".
	Subject string
	// SubjectPrefix is prepended to the subject, to keep single sign-on
	// users apart from local users and registry tokens (e.g. "sso:").
	SubjectPrefix string
	// Scopes is a claim holding scope strings, space-separated or as an
	// array. Empty: none.
	Scopes string
	// Groups is a claim holding group names, as an array or a single
	// string. Empty: none.
	Groups string
	// GroupScopes are the scope strings granted to each group's members.
	GroupScopes map[string][]string
	// AdminGroups are groups whose members are administrators.
	AdminGroups []string
}

// Options configures a Verifier. Issuer, Audience and one of URL and JWKS
// are required; the zero value of every other field is safe.
type Options struct {
	// Issuer must equal the tokens' iss claim.
	Issuer string
	// Audience must be among the tokens' aud claim.
	Audience string
	// URL is where the key set is fetched from.
	URL string
	// JWKS is a static key set (JSON), used instead of URL.
	JWKS []byte
	// Algorithms are the accepted JWS algorithms. Default RS256, ES256 and
	// EdDSA; allowed: RS256, RS384, RS512, PS256, PS384, PS512, ES256,
	// ES384, ES512, EdDSA.
	Algorithms []string
	// Claims maps claims to the identity.
	Claims ClaimMapping
	// RefreshInterval is how often the key set is refetched. Default 15
	// minutes.
	RefreshInterval time.Duration
	// MinRefreshInterval bounds refetches on unknown kids. Default 1
	// minute.
	MinRefreshInterval time.Duration
	// Leeway is the tolerated clock skew. Default 30 s; at most 5 minutes.
	Leeway time.Duration
	// UploadGrace: see auth.WithUploadGrace. Default
	// auth.DefaultUploadGrace; negative disables.
	UploadGrace time.Duration
	// HTTPClient fetches the key set. Default: a client with a 10 s
	// timeout.
	HTTPClient *http.Client
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives refresh failures. Default slog.Default().
	Logger *slog.Logger
}

// String describes the options for start-up logs, without the URL's
// query or user information.
func (o Options) String() string {
	src := "static"
	if o.URL != "" {
		if u, err := url.Parse(o.URL); err == nil {
			u.User, u.RawQuery, u.Fragment = nil, "", ""
			src = u.String()
		} else {
			src = "invalid"
		}
	}
	groups := make([]string, 0, len(o.Claims.GroupScopes))
	for g := range o.Claims.GroupScopes {
		groups = append(groups, g)
	}
	slices.Sort(groups)
	return fmt.Sprintf("jwks{issuer=%q audience=%q keys=%s algorithms=%v subject=%q prefix=%q scopes=%q groups=%q mappedGroups=%v adminGroups=%v}",
		o.Issuer, o.Audience, src, o.Algorithms, o.Claims.Subject, o.Claims.SubjectPrefix, o.Claims.Scopes, o.Claims.Groups, groups, o.Claims.AdminGroups)
}

var allowedAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512, jose.ES256, jose.ES384, jose.ES512, jose.EdDSA}

func (o *Options) validate() error {
	if o.Issuer == "" || o.Audience == "" {
		return errors.New("jwks: Options.Issuer and Options.Audience are required")
	}
	if (o.URL == "") == (len(o.JWKS) == 0) {
		return errors.New("jwks: exactly one of Options.URL and Options.JWKS is required")
	}
	if o.URL != "" {
		u, err := url.Parse(o.URL)
		if err != nil || u.Host == "" {
			return errors.New("jwks: Options.URL must be an absolute URL")
		}
		host := u.Hostname()
		ip := net.ParseIP(host)
		loopback := host == "localhost" || (ip != nil && ip.IsLoopback())
		if u.Scheme != "https" && !(u.Scheme == "http" && loopback) {
			return errors.New("jwks: Options.URL must be https (http only on loopback)")
		}
	}
	for _, a := range o.Algorithms {
		if !slices.Contains(allowedAlgs, jose.SignatureAlgorithm(a)) {
			return fmt.Errorf("jwks: algorithm %q not allowed", a)
		}
	}
	if o.Leeway < 0 || o.Leeway > 5*time.Minute || o.RefreshInterval < 0 || o.MinRefreshInterval < 0 {
		return errors.New("jwks: Leeway must be between 0 and 5 minutes; intervals must not be negative")
	}
	for g, ss := range o.Claims.GroupScopes {
		for _, s := range ss {
			if _, err := auth.ParseScope(s); err != nil {
				return fmt.Errorf("jwks: scopes of group %q: %w", g, err)
			}
		}
	}
	return nil
}

// Verifier verifies an external issuer's JWTs; it implements
// bearer.Verifier.
type Verifier struct {
	opts        Options
	algs        []jose.SignatureAlgorithm
	groupScopes map[string][]auth.Scope

	mu        sync.Mutex
	keys      *jose.JSONWebKeySet
	fetchedAt time.Time // last fetch attempt
	fetching  chan struct{}
}

// NewVerifier returns a Verifier. With a static JWKS the set is parsed now.
func NewVerifier(opts *Options) (*Verifier, error) {
	if opts == nil {
		return nil, errors.New("jwks: NewVerifier needs options")
	}
	o := *opts
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.Claims.Subject == "" {
		o.Claims.Subject = "sub"
	}
	if o.RefreshInterval == 0 {
		o.RefreshInterval = 15 * time.Minute
	}
	if o.MinRefreshInterval == 0 {
		o.MinRefreshInterval = time.Minute
	}
	if o.Leeway == 0 {
		o.Leeway = 30 * time.Second
	}
	if o.UploadGrace == 0 {
		o.UploadGrace = auth.DefaultUploadGrace
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	v := &Verifier{opts: o, groupScopes: map[string][]auth.Scope{}}
	if len(o.Algorithms) == 0 {
		v.algs = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA}
	} else {
		for _, a := range o.Algorithms {
			v.algs = append(v.algs, jose.SignatureAlgorithm(a))
		}
	}
	for g, ss := range o.Claims.GroupScopes {
		for _, s := range ss {
			sc, _ := auth.ParseScope(s)
			v.groupScopes[g] = append(v.groupScopes[g], sc)
		}
	}
	if len(o.JWKS) > 0 {
		set, err := parseSet(o.JWKS)
		if err != nil {
			return nil, err
		}
		v.keys = set
	}
	return v, nil
}

// parseSet parses a key set, keeping the usable public signing keys.
func parseSet(data []byte) (*jose.JSONWebKeySet, error) {
	var raw jose.JSONWebKeySet
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("jwks: malformed key set: %w", err)
	}
	out := &jose.JSONWebKeySet{}
	for _, k := range raw.Keys {
		if !k.IsPublic() || !k.Valid() || (k.Use != "" && k.Use != "sig") {
			continue
		}
		if rk, ok := k.Key.(*rsa.PublicKey); ok && rk.N.BitLen() < 2048 {
			continue
		}
		out.Keys = append(out.Keys, k)
	}
	if len(out.Keys) == 0 {
		return nil, errors.New("jwks: no usable public signing key in the key set")
	}
	return out, nil
}

// fetch refreshes the key set from the URL, merging concurrent calls. It
// returns the current keys (the previous ones when the fetch fails) and an
// error only when there are none.
func (v *Verifier) fetch(ctx context.Context, force bool) (*jose.JSONWebKeySet, error) {
	v.mu.Lock()
	if v.opts.URL == "" {
		k := v.keys
		v.mu.Unlock()
		return k, nil
	}
	now := v.opts.Now()
	age := now.Sub(v.fetchedAt)
	need := v.keys == nil || age >= v.opts.RefreshInterval || (force && age >= v.opts.MinRefreshInterval)
	if !need {
		k := v.keys
		v.mu.Unlock()
		return k, nil
	}
	if ch := v.fetching; ch != nil {
		v.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		v.mu.Lock()
		k := v.keys
		v.mu.Unlock()
		if k == nil {
			return nil, errors.New("jwks: no key set available")
		}
		return k, nil
	}
	ch := make(chan struct{})
	v.fetching = ch
	v.fetchedAt = now
	v.mu.Unlock()

	set, err := v.download(ctx)

	v.mu.Lock()
	defer v.mu.Unlock()
	v.fetching = nil
	close(ch)
	if err != nil {
		v.opts.Logger.Warn("jwks: key set refresh failed", "url", v.opts.URL, "err", err)
		if v.keys == nil {
			return nil, err
		}
		return v.keys, nil
	}
	v.keys = set
	return set, nil
}

func (v *Verifier) download(ctx context.Context) (*jose.JSONWebKeySet, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.opts.URL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	res, err := v.opts.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jwks: fetch key set: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks: fetch key set: status %d", res.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(res.Body, MaxKeySetBytes+1))
	if err != nil {
		return nil, fmt.Errorf("jwks: fetch key set: %w", err)
	}
	if len(data) > MaxKeySetBytes {
		return nil, errors.New("jwks: key set larger than 1 MiB")
	}
	return parseSet(data)
}

func unauth(reason string) error { return fmt.Errorf("jwks: %s: %w", reason, auth.ErrUnauthenticated) }

// findKey returns the key for kid and alg in set.
func findKey(set *jose.JSONWebKeySet, kid string, alg jose.SignatureAlgorithm) *jose.JSONWebKey {
	var candidates []jose.JSONWebKey
	if kid != "" {
		candidates = set.Key(kid)
	} else if len(set.Keys) == 1 {
		candidates = set.Keys
	}
	for i := range candidates {
		k := &candidates[i]
		if k.Algorithm != "" && k.Algorithm != string(alg) {
			continue
		}
		if keyFits(k.Key, alg) {
			return k
		}
	}
	return nil
}

func keyFits(key any, alg jose.SignatureAlgorithm) bool {
	switch key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(string(alg), "RS") || strings.HasPrefix(string(alg), "PS")
	case *ecdsa.PublicKey:
		return strings.HasPrefix(string(alg), "ES")
	case ed25519.PublicKey:
		return alg == jose.EdDSA
	}
	return false
}

// VerifyToken implements bearer.Verifier.
func (v *Verifier) VerifyToken(ctx context.Context, raw string) (*auth.Identity, error) {
	tok, err := jwt.ParseSigned(raw, v.algs)
	if err != nil {
		return nil, unauth("malformed token or algorithm not allowed")
	}
	if len(tok.Headers) != 1 {
		return nil, unauth("want exactly one signature")
	}
	// Not our issuer: leave it to the next verifier, fetching nothing.
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil || unverified.Issuer != v.opts.Issuer {
		return nil, unauth("wrong issuer")
	}
	h := tok.Headers[0]
	alg := jose.SignatureAlgorithm(h.Algorithm)
	set, err := v.fetch(ctx, false)
	if err != nil {
		return nil, err
	}
	key := findKey(set, h.KeyID, alg)
	if key == nil {
		if set, err = v.fetch(ctx, true); err != nil {
			return nil, err
		}
		if key = findKey(set, h.KeyID, alg); key == nil {
			return nil, unauth("unknown key")
		}
	}
	var std jwt.Claims
	var all map[string]any
	if err := tok.Claims(key.Key, &std, &all); err != nil {
		return nil, unauth("bad signature or claims")
	}
	if std.Expiry == nil || std.IssuedAt == nil {
		return nil, unauth("exp and iat are required")
	}
	if std.Issuer != v.opts.Issuer {
		return nil, unauth("wrong issuer")
	}
	if !std.Audience.Contains(v.opts.Audience) {
		return nil, unauth("wrong audience")
	}
	now := v.opts.Now()
	if std.NotBefore != nil && now.Add(v.opts.Leeway).Before(std.NotBefore.Time()) {
		return nil, unauth("not valid yet")
	}
	if now.Add(v.opts.Leeway).Before(std.IssuedAt.Time()) {
		return nil, unauth("issued in the future")
	}
	id, err := v.identity(all)
	if err != nil {
		return nil, err
	}
	id.ExpiresAt = std.Expiry.Time()
	if now.Add(-v.opts.Leeway).After(id.ExpiresAt) {
		g, ok := auth.UploadGraceFrom(ctx)
		if !ok || !g.HeldBy(id.Subject) || !g.Allows(std.IssuedAt.Time().Add(-v.opts.Leeway), id.ExpiresAt, now, v.opts.UploadGrace) {
			return nil, unauth("expired")
		}
		if id.Admin && id.Scopes == nil {
			id.Scopes = []auth.Scope{{Type: auth.TypeRepository, Name: g.Repository, Actions: []string{auth.Pull, auth.Push}}}
		} else {
			id.Scopes = g.Restrict(id.Scopes)
		}
		id.Grace = true
	}
	return id, nil
}

// stringList returns a claim as a list of strings: an array of strings, or a
// string split on spaces.
func stringList(v any) []string {
	switch x := v.(type) {
	case string:
		return strings.Fields(x)
	case []any:
		var out []string
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func (v *Verifier) identity(claims map[string]any) (*auth.Identity, error) {
	c := v.opts.Claims
	sub, _ := claims[c.Subject].(string)
	if sub == "" {
		return nil, unauth("no subject")
	}
	id := &auth.Identity{Subject: c.SubjectPrefix + sub, Scopes: []auth.Scope{}}
	if c.Groups != "" {
		groups := stringList(claims[c.Groups])
		for _, g := range groups {
			if slices.Contains(c.AdminGroups, g) {
				id.Admin, id.Scopes = true, nil
				return id, nil
			}
		}
		for _, g := range groups {
			id.Scopes = append(id.Scopes, v.groupScopes[g]...)
		}
	}
	if c.Scopes != "" {
		for _, s := range stringList(claims[c.Scopes]) {
			if sc, err := auth.ParseScope(s); err == nil {
				id.Scopes = append(id.Scopes, sc)
			}
		}
	}
	return id, nil
}
