package jwks

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/auth/authtest"
	"github.com/berth-dev/berth/auth/policy"
	"github.com/berth-dev/berth/auth/token"
)

type signKey struct {
	priv crypto.Signer
	alg  jose.SignatureAlgorithm
	kid  string
}

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

func newKeys(t *testing.T) []signKey {
	rsaOnce.Do(func() { rsaKey, _ = rsa.GenerateKey(rand.Reader, 2048) })
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	return []signKey{{rsaKey, jose.RS256, "rsa-1"}, {ec, jose.ES256, "ec-1"}, {ed, jose.EdDSA, "ed-1"}}
}

func setOf(keys ...signKey) []byte {
	set := jose.JSONWebKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"})
	}
	b, _ := json.Marshal(set)
	return b
}

func signWith(t *testing.T, k signKey, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

var t0 = time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)

func claims(extra map[string]any) map[string]any {
	c := map[string]any{"iss": "https://sso.example", "aud": []string{"berth", "other"}, "sub": "alice",
		"exp": t0.Add(10 * time.Minute).Unix(), "iat": t0.Unix(), "groups": []string{"team-a"}, "scope": "openid repository:team-a/extra:pull"}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	body    []byte
	status  int
	fetches atomic.Int32
}

func newServer(t *testing.T, body []byte) *jwksServer {
	s := &jwksServer{body: body, status: 200}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		w.WriteHeader(s.status)
		_, _ = w.Write(s.body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(body []byte, status int) {
	s.mu.Lock()
	s.body, s.status = body, status
	s.mu.Unlock()
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func options(c *clock) *Options {
	return &Options{Issuer: "https://sso.example", Audience: "berth", Now: c.Now, Claims: ClaimMapping{
		Groups: "groups", Scopes: "scope", AdminGroups: []string{"admins"},
		GroupScopes: map[string][]string{"team-a": {"repository:team-a/**:pull,push"}, "readers": {"repository:*:pull"}},
	}}
}

func TestVerifyFromURL(t *testing.T) {
	keys := newKeys(t)
	srv := newServer(t, setOf(keys...))
	c := &clock{t: t0}
	o := options(c)
	o.URL = srv.URL + "/jwks.json"
	v, err := NewVerifier(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		id, err := v.VerifyToken(t.Context(), signWith(t, k, claims(nil)))
		if err != nil {
			t.Fatalf("%s: %v", k.alg, err)
		}
		var got []string
		for _, s := range id.Scopes {
			got = append(got, s.String())
		}
		if id.Subject != "alice" || id.Admin || strings.Join(got, " ") != "repository:team-a/**:pull,push repository:team-a/extra:pull" {
			t.Fatalf("%s: identity %+v", k.alg, id)
		}
	}
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches, want 1 (cached)", n)
	}
	// Admin group; no groups; subject prefix.
	id, err := v.VerifyToken(t.Context(), signWith(t, keys[1], claims(map[string]any{"groups": []string{"x", "admins"}})))
	if err != nil || !id.Admin || id.Scopes != nil {
		t.Fatalf("admin: %+v %v", id, err)
	}
	id, err = v.VerifyToken(t.Context(), signWith(t, keys[1], claims(map[string]any{"groups": nil, "scope": nil})))
	if err != nil || id.Admin || id.Scopes == nil || len(id.Scopes) != 0 {
		t.Fatalf("no groups: %+v %v", id, err)
	}
	// The mapped identity under the default policy.
	authz := policy.New(nil)
	id, _ = v.VerifyToken(t.Context(), signWith(t, keys[1], claims(nil)))
	for name, want := range map[string]bool{"team-a/app": true, "team-a/x/y": true, "team-b/app": false} {
		got, _ := authz.Authorize(t.Context(), id, []auth.Scope{{Type: "repository", Name: name, Actions: []string{"push"}}})
		if auth.Granted(got, "repository", name, "push") != want {
			t.Errorf("push %s: want %v", name, want)
		}
	}
}

func TestRejects(t *testing.T) {
	keys := newKeys(t)
	c := &clock{t: t0}
	o := options(c)
	o.JWKS = setOf(keys...)
	o.Algorithms = []string{"RS256", "ES256"}
	v, err := NewVerifier(o)
	if err != nil {
		t.Fatal(err)
	}
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	good := signWith(t, keys[1], claims(nil))
	parts := strings.Split(good, ".")
	b64 := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }
	cases := map[string]string{
		"wrong issuer":        signWith(t, keys[1], claims(map[string]any{"iss": "https://evil.example"})),
		"wrong audience":      signWith(t, keys[1], claims(map[string]any{"aud": "other"})),
		"expired":             signWith(t, keys[1], claims(map[string]any{"exp": t0.Add(-time.Minute).Unix()})),
		"no exp":              signWith(t, keys[1], claims(map[string]any{"exp": nil})),
		"no iat":              signWith(t, keys[1], claims(map[string]any{"iat": nil})),
		"future nbf":          signWith(t, keys[1], claims(map[string]any{"nbf": t0.Add(time.Hour).Unix()})),
		"no subject":          signWith(t, keys[1], claims(map[string]any{"sub": nil})),
		"numeric subject":     signWith(t, keys[1], claims(map[string]any{"sub": 42})),
		"algorithm disabled":  signWith(t, keys[2], claims(nil)),
		"unknown kid":         signWith(t, signKey{stranger, jose.ES256, "ec-2"}, claims(nil)),
		"kid of another key":  signWith(t, signKey{stranger, jose.ES256, "ec-1"}, claims(nil)),
		"kid of an RSA key":   signWith(t, signKey{keys[1].priv, jose.ES256, "rsa-1"}, claims(nil)),
		"tampered claims":     parts[0] + "." + b64(claims(map[string]any{"groups": []string{"admins"}})) + "." + parts[2],
		"alg none":            b64(map[string]string{"alg": "none", "kid": "ec-1"}) + "." + parts[1] + ".",
		"HS256":               b64(map[string]string{"alg": "HS256", "kid": "ec-1"}) + "." + parts[1] + "." + parts[2],
		"garbage":             "x",
		"two parts":           parts[0] + "." + parts[1],
		"signature truncated": parts[0] + "." + parts[1] + "." + parts[2][:10],
	}
	for name, raw := range cases {
		id, err := v.VerifyToken(t.Context(), raw)
		if !errors.Is(err, auth.ErrUnauthenticated) || id != nil {
			t.Errorf("%s: %+v, %v", name, id, err)
		}
	}
	if _, err := v.VerifyToken(t.Context(), good); err != nil {
		t.Fatal(err)
	}
	// Grace: an expired token finishing an upload started while valid.
	c.Add(20 * time.Minute)
	if _, err := v.VerifyToken(t.Context(), good); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("expired: %v", err)
	}
	id, err := v.VerifyToken(auth.WithUploadGrace(t.Context(), "team-a/app", t0.Add(time.Minute)), good)
	if err != nil || !id.Grace || len(id.Scopes) != 1 || id.Scopes[0].String() != "repository:team-a/app:pull,push" {
		t.Fatalf("grace: %+v %v", id, err)
	}
}

func TestKeyRotationAndRefresh(t *testing.T) {
	keys := newKeys(t)
	srv := newServer(t, setOf(keys[1]))
	c := &clock{t: t0}
	o := options(c)
	o.URL = srv.URL
	v, _ := NewVerifier(o)
	if _, err := v.VerifyToken(t.Context(), signWith(t, keys[1], claims(nil))); err != nil {
		t.Fatal(err)
	}
	// A token with a new kid: one refetch, then none within a minute.
	newKey := signKey{keys[2].priv, jose.EdDSA, "ed-new"}
	if _, err := v.VerifyToken(t.Context(), signWith(t, newKey, claims(nil))); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatal(err)
	}
	c.Add(2 * time.Minute)
	srv.set(setOf(keys[1], newKey), 200)
	before := srv.fetches.Load()
	if _, err := v.VerifyToken(t.Context(), signWith(t, newKey, claims(nil))); err != nil {
		t.Fatalf("rotated key: %v", err)
	}
	for range 20 {
		_, _ = v.VerifyToken(t.Context(), signWith(t, signKey{keys[1].priv, jose.ES256, "forged"}, claims(nil)))
	}
	if n := srv.fetches.Load() - before; n != 1 {
		t.Fatalf("%d fetches for unknown kids, want 1", n)
	}
	// A failing refresh keeps the keys.
	srv.set([]byte("oops"), 500)
	c.Add(time.Hour)
	if _, err := v.VerifyToken(t.Context(), signWith(t, keys[1], claims(map[string]any{"iat": c.Now().Unix(), "exp": c.Now().Add(time.Minute).Unix()}))); err != nil {
		t.Fatalf("after a failed refresh: %v", err)
	}
	// No keys at all is a server error, not 401.
	bad := newServer(t, []byte("{}"))
	o2 := options(c)
	o2.URL = bad.URL
	v2, _ := NewVerifier(o2)
	if _, err := v2.VerifyToken(t.Context(), signWith(t, keys[1], claims(nil))); err == nil || errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("no keys: %v", err)
	}
	// Another issuer's token fetches nothing.
	n := bad.fetches.Load()
	if _, err := v2.VerifyToken(t.Context(), signWith(t, keys[1], claims(map[string]any{"iss": "other"}))); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatal(err)
	}
	if bad.fetches.Load() != n {
		t.Fatal("fetched keys for another issuer's token")
	}
}

func TestOptionsAndKeySets(t *testing.T) {
	keys := newKeys(t)
	base := func() *Options { return &Options{Issuer: "i", Audience: "a", JWKS: setOf(keys...)} }
	bad := []func(*Options){
		func(o *Options) { o.Issuer = "" },
		func(o *Options) { o.Audience = "" },
		func(o *Options) { o.JWKS = nil },
		func(o *Options) { o.URL = "https://x/jwks" },
		func(o *Options) { o.JWKS, o.URL = nil, "http://sso.example/jwks" },
		func(o *Options) { o.Algorithms = []string{"none"} },
		func(o *Options) { o.Algorithms = []string{"HS256"} },
		func(o *Options) { o.Claims.GroupScopes = map[string][]string{"g": {"bad"}} },
		func(o *Options) { o.JWKS = []byte("nope") },
		func(o *Options) { o.Leeway = time.Hour },
	}
	for i, f := range bad {
		o := base()
		f(o)
		if _, err := NewVerifier(o); err == nil {
			t.Errorf("case %d accepted", i)
		}
	}
	if _, err := NewVerifier(nil); err == nil {
		t.Fatal("nil options accepted")
	}
	o := base()
	o.JWKS, o.URL = nil, "http://127.0.0.1:1/jwks"
	if _, err := NewVerifier(o); err != nil {
		t.Fatalf("loopback http: %v", err)
	}
	// Private keys and small RSA keys are dropped from sets.
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	priv, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: keys[1].priv, KeyID: "p"}, {Key: small.Public(), KeyID: "s"}}})
	if _, err := parseSet(priv); err == nil {
		t.Fatal("set of a private key and a small RSA key accepted")
	}
}

// Berth's own token service publishes a JWKS this package accepts.
func TestBerthTokenServiceJWKS(t *testing.T) {
	key, _ := token.GenerateKey()
	set, _ := token.JWKS(key)
	svc, _ := token.NewService(key, auth.AuthenticatorFunc(func(*http.Request) (*auth.Identity, error) { return auth.Anonymous, nil }), policy.New(nil), nil)
	resp, err := svc.Issue(context.Background(), &auth.Identity{Subject: "u", Admin: true}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(&Options{Issuer: "berth", Audience: "berth", JWKS: set, Algorithms: []string{"ES256"}, Claims: ClaimMapping{SubjectPrefix: "peer:"}})
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.VerifyToken(context.Background(), resp.Token)
	if err != nil || id.Subject != "peer:u" {
		t.Fatalf("%+v %v", id, err)
	}
}

func FuzzVerifyToken(f *testing.F) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k := signKey{ec, jose.ES256, "ec-1"}
	c := &clock{t: t0}
	o := options(c)
	o.JWKS = setOf(k)
	v, err := NewVerifier(o)
	if err != nil {
		f.Fatal(err)
	}
	s, _ := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid}}, nil)
	good, _ := jwt.Signed(s).Claims(claims(nil)).Serialize()
	f.Add(good)
	f.Add("eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL3Nzby5leGFtcGxlIn0.")
	f.Add("..")
	f.Fuzz(func(t *testing.T, raw string) {
		id, err := v.VerifyToken(context.Background(), raw)
		if err != nil {
			if !errors.Is(err, auth.ErrUnauthenticated) {
				t.Fatalf("error class: %v", err)
			}
			return
		}
		if id.Subject != "alice" || id.Admin {
			t.Fatalf("forged identity %+v", id)
		}
	})
}

func TestOptionsString(t *testing.T) {
	o := Options{Issuer: "i", Audience: "a", URL: "https://user:pass@sso.example/jwks?key=secret"}
	s := o.String()
	if strings.Contains(s, "pass") || strings.Contains(s, "secret") || !strings.Contains(s, "https://sso.example/jwks") {
		t.Fatal(s)
	}
}

func TestVerifierConformance(t *testing.T) {
	authtest.RunTokenVerifierTests(t, func(t *testing.T) *authtest.TokenHarness {
		keys := newKeys(t)
		stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		v, err := NewVerifier(&Options{Issuer: "https://sso.example", Audience: "berth", JWKS: setOf(keys...), Claims: ClaimMapping{Scopes: "scope"}})
		if err != nil {
			t.Fatal(err)
		}
		mk := func(k signKey, subject string, scopes []auth.Scope, expired bool) string {
			now := time.Now()
			if expired {
				now = now.Add(-2 * time.Hour)
			}
			var ss []string
			for _, s := range scopes {
				ss = append(ss, s.String())
			}
			return signWith(t, k, map[string]any{"iss": "https://sso.example", "aud": "berth", "sub": subject,
				"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "scope": strings.Join(ss, " ")})
		}
		return &authtest.TokenHarness{
			Verifier: v,
			Issue: func(t *testing.T, subject string, scopes []auth.Scope, expired bool) string {
				return mk(keys[1], subject, scopes, expired)
			},
			Foreign: func(t *testing.T, subject string) string {
				return mk(signKey{stranger, jose.ES256, "ec-1"}, subject, nil, false)
			},
		}
	})
}
