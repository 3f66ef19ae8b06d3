package token

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/auth/basic"
	"github.com/berth-dev/berth/auth/policy"
	"github.com/berth-dev/berth/auth/throttle"
	"github.com/berth-dev/berth/auth/tokens"
	"github.com/berth-dev/berth/storage/driver"
	"github.com/berth-dev/berth/storage/memmeta"
)

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

type env struct {
	clock  *clock
	key    *Key
	svc    *Service
	srv    *httptest.Server
	toks   *tokens.Manager
	meta   *memmeta.Metadata
	static *basic.Static
}

func newEnv(t *testing.T, o *Options) *env {
	t.Helper()
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)}
	meta := memmeta.New()
	for name, vis := range map[string]driver.Visibility{"pub/app": driver.Public, "team/app": driver.Private, "other/app": driver.Private} {
		if err := meta.CreateRepository(ctx, &driver.Repository{Name: name, Visibility: vis}); err != nil {
			t.Fatal(err)
		}
	}
	toks, err := tokens.New(meta, &tokens.Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	static := basic.NewStatic("admin", "pw", auth.Identity{Admin: true})
	lim, _ := throttle.New(&throttle.Options{UserBurst: 5, AddrBurst: 100, Now: c.Now})
	authn := lim.Wrap(basic.New(static, toks))
	var opts Options
	if o != nil {
		opts = *o
	}
	opts.Now = c.Now
	if opts.Revalidator == nil {
		opts.Revalidator = Revalidators{static, toks}
	}
	svc, err := NewService(key, authn, policy.New(meta), &opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc)
	t.Cleanup(srv.Close)
	return &env{clock: c, key: key, svc: svc, srv: srv, toks: toks, meta: meta, static: static}
}

type answer struct {
	status int
	header http.Header
	body   string
	resp   Response
}

func (e *env) get(t *testing.T, user, pw string, params url.Values) answer {
	t.Helper()
	req, _ := http.NewRequest("GET", e.srv.URL+"/token?"+params.Encode(), nil)
	if user != "" {
		req.SetBasicAuth(user, pw)
	}
	return e.send(t, req)
}

func (e *env) post(t *testing.T, form url.Values) answer {
	t.Helper()
	req, _ := http.NewRequest("POST", e.srv.URL+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return e.send(t, req)
}

func (e *env) send(t *testing.T, req *http.Request) answer {
	t.Helper()
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	a := answer{status: res.StatusCode, header: res.Header, body: string(b)}
	if a.status == 200 {
		if err := json.Unmarshal(b, &a.resp); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

func scopeParams(scopes ...string) url.Values {
	return url.Values{"service": {"berth"}, "scope": scopes}
}

func (e *env) verify(t *testing.T, raw string) *auth.Identity {
	t.Helper()
	id, err := e.svc.Verifier().VerifyToken(context.Background(), raw)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return id
}

func scopeStrings(ss []auth.Scope) []string {
	out := []string{}
	for _, s := range ss {
		out = append(out, s.String())
	}
	return out
}

func TestIssueGrantsWhatTheAuthorizerGrants(t *testing.T) {
	e := newEnv(t, nil)
	cases := []struct {
		user, pw string
		scopes   []string
		want     string
	}{
		{"", "", []string{"repository:pub/app:pull"}, "repository:pub/app:pull"},
		{"", "", []string{"repository:pub/app:pull,push"}, "repository:pub/app:pull"}, // anonymous push
		{"", "", []string{"repository:team/app:pull"}, ""},                            // private pull
		{"", "", []string{"repository:missing/app:pull"}, ""},
		{"", "", []string{"registry:catalog:*"}, ""},
		{"admin", "pw", []string{"repository:team/app:pull,push,delete"}, "repository:team/app:pull,push,delete"},
		{"admin", "pw", []string{"repository:team/app:pull repository:other/app:push", "registry:catalog:*"}, "repository:team/app:pull repository:other/app:push registry:catalog:*"},
		{"admin", "pw", nil, ""},
	}
	for _, c := range cases {
		a := e.get(t, c.user, c.pw, scopeParams(c.scopes...))
		if a.status != 200 {
			t.Fatalf("%v: %d %s", c, a.status, a.body)
		}
		r := a.resp
		if r.Token == "" || r.Token != r.AccessToken || r.ExpiresIn != 300 || r.IssuedAt != "2026-05-01T10:00:00Z" || r.RefreshToken != "" {
			t.Fatalf("response %+v", r)
		}
		if a.header.Get("Cache-Control") != "no-store" || a.header.Get("Content-Type") != "application/json" {
			t.Fatalf("headers %v", a.header)
		}
		id := e.verify(t, r.Token)
		if got := strings.Join(scopeStrings(id.Scopes), " "); got != c.want {
			t.Errorf("%s %v: access %q, want %q", c.user, c.scopes, got, c.want)
		}
		if id.Subject != c.user || id.Admin {
			t.Errorf("identity %+v", id)
		}
		if id.Scopes == nil {
			t.Error("nil Scopes would mean unbounded")
		}
	}
}

func TestTokenIdentityUnderPolicy(t *testing.T) {
	// A JWT identity gets exactly its access claim from the policy.
	e := newEnv(t, nil)
	a := e.get(t, "admin", "pw", scopeParams("repository:team/app:pull"))
	id := e.verify(t, a.resp.Token)
	authz := policy.New(e.meta)
	for _, c := range []struct {
		name, action string
		want         bool
	}{{"team/app", "pull", true}, {"team/app", "push", false}, {"other/app", "pull", false}, {"pub/app", "pull", true}} {
		got, _ := authz.Authorize(t.Context(), id, []auth.Scope{{Type: "repository", Name: c.name, Actions: []string{c.action}}})
		if auth.Granted(got, "repository", c.name, c.action) != c.want {
			t.Errorf("%s %s: want %v", c.action, c.name, c.want)
		}
	}
}

func TestRegistryTokenCredentials(t *testing.T) {
	e := newEnv(t, nil)
	admin := &auth.Identity{Subject: "admin", Admin: true}
	tok, secret, err := e.toks.Create(t.Context(), admin, tokens.CreateRequest{Name: "ci", Scopes: []string{"repository:team/*:pull,push"}, ExpiresIn: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	a := e.get(t, tok.Username, secret, scopeParams("repository:team/app:pull,push,delete", "repository:other/app:pull"))
	if a.status != 200 {
		t.Fatal(a.body)
	}
	id := e.verify(t, a.resp.Token)
	if got := strings.Join(scopeStrings(id.Scopes), " "); got != "repository:team/app:pull,push" {
		t.Fatalf("scope outside the token granted: %q", got)
	}
	// The JWT does not outlive the registry token.
	if a.resp.ExpiresIn != 120 || !id.ExpiresAt.Equal(tok.ExpiresAt) {
		t.Fatalf("expires_in %d, exp %v, token expiry %v", a.resp.ExpiresIn, id.ExpiresAt, tok.ExpiresAt)
	}
	// Wrong secret, revoked token.
	if a := e.get(t, tok.Username, secret+"x", scopeParams()); a.status != 401 || !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Basic ") || strings.Contains(a.body, secret) {
		t.Fatalf("wrong secret: %d %s", a.status, a.body)
	}
	if err := e.toks.Revoke(t.Context(), admin, tok.ID); err != nil {
		t.Fatal(err)
	}
	if a := e.get(t, tok.Username, secret, scopeParams()); a.status != 401 {
		t.Fatalf("revoked: %d %s", a.status, a.body)
	}
}

func TestRequestErrors(t *testing.T) {
	e := newEnv(t, nil)
	check := func(a answer, status int, code string) {
		t.Helper()
		var b struct {
			Errors []struct{ Code, Message string }
		}
		if a.status != status || json.Unmarshal([]byte(a.body), &b) != nil || len(b.Errors) != 1 || b.Errors[0].Code != code {
			t.Fatalf("got %d %s, want %d %s", a.status, a.body, status, code)
		}
	}
	check(e.get(t, "", "", url.Values{"service": {"other"}}), 400, "INVALID_REQUEST")
	a := e.get(t, "", "", scopeParams("repository:team/app:pull", "repository:Team/App:pull"))
	check(a, 400, "INVALID_SCOPE")
	if !strings.Contains(a.body, "repository:Team/App:pull") {
		t.Fatalf("bad scope not named: %s", a.body)
	}
	check(e.get(t, "", "", scopeParams("repository:team/*:pull")), 400, "INVALID_SCOPE")
	check(e.get(t, "", "", scopeParams("registry:*:*")), 400, "INVALID_SCOPE")
	check(e.get(t, "", "", scopeParams("nonsense")), 400, "INVALID_SCOPE")
	check(e.get(t, "", "", scopeParams(strings.Repeat("repository:a:pull ", 33))), 400, "INVALID_SCOPE")
	check(e.get(t, "admin", "wrong", scopeParams()), 401, "UNAUTHORIZED")
	req, _ := http.NewRequest("PUT", e.srv.URL+"/token", nil)
	check(e.send(t, req), 405, "METHOD_NOT_ALLOWED")
	check(e.post(t, url.Values{"grant_type": {"client_credentials"}}), 400, "UNSUPPORTED")
	check(e.post(t, url.Values{"grant_type": {"password"}, "username": {"admin"}, "password": {"nope"}}), 401, "UNAUTHORIZED")
	check(e.post(t, url.Values{"grant_type": {"password"}}), 401, "UNAUTHORIZED")
	check(e.post(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x.y.z"}}), 401, "UNAUTHORIZED")
	// Throttled after repeated failures for the user.
	for range 5 {
		e.get(t, "admin", "guess", scopeParams())
	}
	a = e.get(t, "admin", "pw", scopeParams())
	check(a, 429, "TOO_MANY_REQUESTS")
	if a.header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
}

func TestOAuthPasswordAndRefresh(t *testing.T) {
	e := newEnv(t, nil)
	a := e.post(t, url.Values{"grant_type": {"password"}, "username": {"admin"}, "password": {"pw"}, "service": {"berth"},
		"scope": {"repository:team/app:pull,push"}, "client_id": {"docker"}, "access_type": {"offline"}})
	if a.status != 200 || a.resp.RefreshToken == "" || a.resp.Scope != "repository:team/app:pull,push" {
		t.Fatalf("password grant: %d %s", a.status, a.body)
	}
	rt := a.resp.RefreshToken
	// A refresh token is not an access token, nor the reverse.
	if _, err := e.svc.Verifier().VerifyToken(t.Context(), rt); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("refresh token used as access token: %v", err)
	}
	if a := e.post(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {a.resp.Token}}); a.status != 401 {
		t.Fatalf("access token used as refresh token: %d", a.status)
	}
	e.clock.Add(time.Hour)
	a = e.post(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "service": {"berth"}, "scope": {"repository:other/app:pull"}})
	if a.status != 200 || a.resp.RefreshToken != rt {
		t.Fatalf("refresh: %d %s", a.status, a.body)
	}
	if id := e.verify(t, a.resp.Token); id.Subject != "admin" || strings.Join(scopeStrings(id.Scopes), " ") != "repository:other/app:pull" {
		t.Fatalf("refreshed identity %+v", id)
	}
	// GET with offline_token=true also returns one; anonymous never.
	if a := e.get(t, "admin", "pw", url.Values{"offline_token": {"true"}}); a.resp.RefreshToken == "" {
		t.Fatal("no refresh token for offline_token=true")
	}
	if a := e.get(t, "", "", url.Values{"offline_token": {"true"}}); a.status != 200 || a.resp.RefreshToken != "" {
		t.Fatalf("anonymous refresh token: %s", a.body)
	}
	// Expired refresh token.
	e.clock.Add(24 * time.Hour)
	if a := e.post(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}); a.status != 401 {
		t.Fatalf("expired refresh token: %d", a.status)
	}

	// A revoked registry token cannot refresh.
	admin := &auth.Identity{Subject: "admin", Admin: true}
	tok, secret, _ := e.toks.Create(t.Context(), admin, tokens.CreateRequest{Name: "ci", Scopes: []string{"repository:team/*:pull"}})
	a = e.post(t, url.Values{"grant_type": {"password"}, "username": {tok.Username}, "password": {secret}, "access_type": {"offline"}})
	if a.resp.RefreshToken == "" {
		t.Fatalf("no refresh token: %s", a.body)
	}
	_ = e.toks.Revoke(t.Context(), admin, tok.ID)
	if a := e.post(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {a.resp.RefreshToken}}); a.status != 401 {
		t.Fatalf("revoked refresh: %d %s", a.status, a.body)
	}
}

func TestRefreshDisabled(t *testing.T) {
	e := newEnv(t, &Options{RefreshLifetime: -1})
	a := e.get(t, "admin", "pw", url.Values{"offline_token": {"true"}})
	if a.status != 200 || a.resp.RefreshToken != "" {
		t.Fatalf("%d %s", a.status, a.body)
	}
	if a := e.post(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}); a.status != 400 {
		t.Fatalf("%d %s", a.status, a.body)
	}
}

// sign makes a token with arbitrary header and claims, signed by key.
func sign(t testing.TB, key *Key, kid string, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: key.alg, Key: jose.JSONWebKey{Key: key.priv, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestVerifierRejects(t *testing.T) {
	e := newEnv(t, nil)
	now := e.clock.Now()
	good := func() map[string]any {
		return map[string]any{"iss": "berth", "sub": "admin", "aud": "berth", "exp": now.Add(5 * time.Minute).Unix(),
			"nbf": now.Unix(), "iat": now.Unix(), "access": []accessEntry{{Type: "repository", Name: "team/app", Actions: []string{"pull"}}}}
	}
	with := func(k string, v any) map[string]any {
		c := good()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	v := e.svc.Verifier()
	if id, err := v.VerifyToken(t.Context(), sign(t, e.key, e.key.ID(), good())); err != nil || id.Subject != "admin" {
		t.Fatalf("good token: %v %v", id, err)
	}
	other, _ := GenerateKey()
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	_ = edPub
	edKey, _ := NewKey(edPriv)
	goodRaw := sign(t, e.key, e.key.ID(), good())
	parts := strings.Split(goodRaw, ".")
	tampered := good()
	tampered["access"] = []accessEntry{{Type: "repository", Name: "other/app", Actions: []string{"pull", "push"}}}
	header := func(h map[string]any) string { return b64(h) }
	hmacToken := func() string {
		pubDER, _ := x509.MarshalPKIXPublicKey(e.key.Public())
		signing := header(map[string]any{"alg": "HS256", "kid": e.key.ID(), "typ": "JWT"}) + "." + b64(good())
		m := hmac.New(sha256.New, pubDER)
		m.Write([]byte(signing))
		return signing + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	cases := map[string]string{
		"wrong audience":      sign(t, e.key, e.key.ID(), with("aud", "other")),
		"no audience":         sign(t, e.key, e.key.ID(), with("aud", nil)),
		"wrong issuer":        sign(t, e.key, e.key.ID(), with("iss", "evil")),
		"expired":             sign(t, e.key, e.key.ID(), with("exp", now.Add(-31*time.Second).Unix())),
		"no exp":              sign(t, e.key, e.key.ID(), with("exp", nil)),
		"no iat":              sign(t, e.key, e.key.ID(), with("iat", nil)),
		"not yet valid":       sign(t, e.key, e.key.ID(), with("nbf", now.Add(time.Minute).Unix())),
		"issued in future":    sign(t, e.key, e.key.ID(), with("iat", now.Add(time.Minute).Unix())),
		"refresh as access":   sign(t, e.key, e.key.ID(), with("use", "refresh")),
		"malformed access":    sign(t, e.key, e.key.ID(), with("access", "repository:x:pull")),
		"empty access entry":  sign(t, e.key, e.key.ID(), with("access", []accessEntry{{Type: "repository", Name: "", Actions: []string{"pull"}}})),
		"unknown key":         sign(t, other, other.ID(), good()),
		"kid spoofed":         sign(t, other, e.key.ID(), good()),
		"no kid":              sign(t, e.key, "", good()),
		"other algorithm":     sign(t, edKey, e.key.ID(), good()),
		"tampered claims":     parts[0] + "." + b64(tampered) + "." + parts[2],
		"tampered header":     header(map[string]any{"alg": "ES256", "kid": other.ID()}) + "." + parts[1] + "." + parts[2],
		"alg none":            header(map[string]any{"alg": "none", "kid": e.key.ID()}) + "." + b64(good()) + ".",
		"alg none with sig":   header(map[string]any{"alg": "none", "kid": e.key.ID()}) + "." + b64(good()) + "." + parts[2],
		"HS256 key confusion": hmacToken(),
		"truncated":           parts[0] + "." + parts[1],
		"garbage":             "not a token",
		"empty":               "",
		"bad signature":       parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 64)),
	}
	for name, raw := range cases {
		id, err := v.VerifyToken(t.Context(), raw)
		if !errors.Is(err, auth.ErrUnauthenticated) || id != nil {
			t.Errorf("%s: %v, %v", name, id, err)
			continue
		}
		if raw != "" && strings.Contains(err.Error(), raw) {
			t.Errorf("%s: the error contains the token", name)
		}
	}
	// Within the leeway, an expired token still passes.
	if _, err := v.VerifyToken(t.Context(), sign(t, e.key, e.key.ID(), with("exp", now.Add(-20*time.Second).Unix()))); err != nil {
		t.Fatalf("within leeway: %v", err)
	}
	// Audience as a list containing the service is fine.
	if _, err := v.VerifyToken(t.Context(), sign(t, e.key, e.key.ID(), with("aud", []string{"x", "berth"}))); err != nil {
		t.Fatalf("audience list: %v", err)
	}
}

func TestVerifierEd25519AndRotation(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	ed, err := NewKey(priv)
	if err != nil || ed.Algorithm() != "EdDSA" {
		t.Fatal(err)
	}
	old, _ := GenerateKey()
	c := &clock{t: time.Now()}
	svc, err := NewService(ed, auth.AuthenticatorFunc(func(*http.Request) (*auth.Identity, error) { return &auth.Identity{Subject: "u", Admin: true}, nil }),
		policy.New(nil), &Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := svc.Issue(t.Context(), &auth.Identity{Subject: "u", Admin: true}, []auth.Scope{{Type: "repository", Name: "a", Actions: []string{"pull"}}}, false)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(&VerifierOptions{Now: c.Now}, old.Public(), ed.Public())
	if err != nil {
		t.Fatal(err)
	}
	if id, err := v.VerifyToken(t.Context(), resp.Token); err != nil || id.Scopes[0].String() != "repository:a:pull" {
		t.Fatalf("EdDSA: %v %v", id, err)
	}
	onlyOld, _ := NewVerifier(nil, old.Public())
	if _, err := onlyOld.VerifyToken(t.Context(), resp.Token); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("rotated-out key: %v", err)
	}
	hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(resp.Token, ".")[0])
	var h map[string]string
	_ = json.Unmarshal(hdr, &h)
	if h["alg"] != "EdDSA" || h["kid"] != ed.ID() || h["typ"] != "JWT" {
		t.Fatalf("header %v", h)
	}
}

func TestUploadGrace(t *testing.T) {
	e := newEnv(t, nil)
	a := e.get(t, "admin", "pw", scopeParams("repository:team/app:pull,push", "repository:other/app:pull,push,delete"))
	start := e.clock.Now().Add(4 * time.Minute) // the upload starts while the token is valid
	v := e.svc.Verifier()
	e.clock.Add(30 * time.Minute)
	if _, err := v.VerifyToken(t.Context(), a.resp.Token); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("expired without grace: %v", err)
	}
	id, err := v.VerifyToken(auth.WithUploadGrace(t.Context(), "team/app", start), a.resp.Token)
	if err != nil {
		t.Fatalf("grace: %v", err)
	}
	if !id.Grace || strings.Join(scopeStrings(id.Scopes), " ") != "repository:team/app:pull,push" {
		t.Fatalf("grace identity %+v", id)
	}
	// An upload started after expiry gets no grace.
	if _, err := v.VerifyToken(auth.WithUploadGrace(t.Context(), "team/app", start.Add(2*time.Minute)), a.resp.Token); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("late upload: %v", err)
	}
	// Past the window.
	e.clock.Add(time.Hour)
	if _, err := v.VerifyToken(auth.WithUploadGrace(t.Context(), "team/app", start), a.resp.Token); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("past the window: %v", err)
	}
	// Grace identities cannot obtain new tokens.
	if _, err := e.svc.Issue(t.Context(), id, nil, false); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("issue for a grace identity: %v", err)
	}
}

func TestKeys(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key.pem")
	k1, err := LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
	k2, err := LoadOrCreateKeyFile(path)
	if err != nil || k2.ID() != k1.ID() || k1.Algorithm() != "ES256" {
		t.Fatalf("reload: %v", err)
	}
	_ = os.Chmod(path, 0o644)
	if _, err := LoadOrCreateKeyFile(path); err == nil {
		t.Fatal("world-readable key accepted")
	}
	if _, err := ParseKeyPEM([]byte("junk")); err == nil {
		t.Fatal("junk accepted")
	}
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	if _, err := NewKey(rk); err == nil {
		t.Fatal("RSA accepted")
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if _, err := NewKey(p384); err == nil {
		t.Fatal("P-384 accepted")
	}
	set, err := JWKS(k1)
	if err != nil || !strings.Contains(string(set), k1.ID()) || strings.Contains(string(set), `"d"`) {
		t.Fatalf("JWKS %s %v", set, err)
	}
	// Concurrent creation agrees on one key.
	path2 := filepath.Join(dir, "key2.pem")
	ids := make([]string, 8)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Go(func() {
			k, err := LoadOrCreateKeyFile(path2)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = k.ID()
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("keys differ: %v", ids)
		}
	}
}

func FuzzVerifyToken(f *testing.F) {
	key, _ := ParseKeyPEM([]byte(fuzzKeyPEM))
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	svc, _ := NewService(key, auth.AuthenticatorFunc(func(*http.Request) (*auth.Identity, error) { return auth.Anonymous, nil }),
		policy.New(nil), &Options{Now: func() time.Time { return now }})
	resp, _ := svc.Issue(context.Background(), &auth.Identity{Subject: "admin", Admin: true},
		[]auth.Scope{{Type: "repository", Name: "team/app", Actions: []string{"pull", "push"}}}, false)
	v := svc.Verifier()
	want, err := v.VerifyToken(context.Background(), resp.Token)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(resp.Token)
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, raw string) {
		id, err := v.VerifyToken(context.Background(), raw)
		if err != nil {
			if !errors.Is(err, auth.ErrUnauthenticated) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		// Only the genuine token (or an encoding of it) verifies, to the
		// same identity.
		if id.Subject != want.Subject || strings.Join(scopeStrings(id.Scopes), " ") != strings.Join(scopeStrings(want.Scopes), " ") {
			t.Fatalf("forged identity %+v from %q", id, raw)
		}
	})
}

// fuzzKeyPEM is a fixed key so that fuzz seeds stay valid across runs.
const fuzzKeyPEM = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgevZzL1gdAFr88hb2
OF/2NxApJCzGCEDdfSp6VQO30hyhRANCAAQRWz+jn65BtOMvdyHKcvjBeBEDOwvs
OGEkaYJU1mq8QZtWe4x1Fl1i8AMfTBFtcw3qhCWKhT0RsR5VWIXPWGky
-----END PRIVATE KEY-----`

func FuzzParseScopes(f *testing.F) {
	for _, s := range []string{"repository:team/app:pull,push", "repository:a:pull repository:b:push", "registry:catalog:*", "repository:Team:pull", "repository:a/*:pull", "  "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		scopes, err := ParseScopes([]string{s})
		if err != nil {
			var se *auth.ScopeError
			if !errors.As(err, &se) {
				t.Fatalf("error type %T", err)
			}
			return
		}
		if len(scopes) > maxScopes {
			t.Fatalf("%d scopes", len(scopes))
		}
		for _, sc := range scopes {
			if auth.IsPattern(sc.Name) || len(sc.Actions) == 0 {
				t.Fatalf("accepted %+v", sc)
			}
		}
	})
}

// TestRateLimitClaim checks that an identity's own rate limit travels in
// the tokens issued for it, and that a malformed one is refused.
func TestRateLimitClaim(t *testing.T) {
	e := newEnv(t, nil)
	id := &auth.Identity{Subject: "admin", Admin: true, RateLimit: &auth.RateLimit{PerSecond: 2.5, Burst: 7}}
	resp, err := e.svc.Issue(t.Context(), id, []auth.Scope{{Type: "repository", Name: "a", Actions: []string{"pull"}}}, false)
	if err != nil {
		t.Fatal(err)
	}
	v := e.svc.Verifier()
	got, err := v.VerifyToken(t.Context(), resp.Token)
	if err != nil || got.RateLimit == nil || *got.RateLimit != *id.RateLimit {
		t.Fatalf("verified %+v, %v; want the rate limit %+v", got, err, id.RateLimit)
	}
	resp, _ = e.svc.Issue(t.Context(), &auth.Identity{Subject: "admin", Admin: true}, nil, false)
	if got, err := v.VerifyToken(t.Context(), resp.Token); err != nil || got.RateLimit != nil {
		t.Fatalf("token without a rate limit: %+v, %v", got, err)
	}
	now := e.clock.Now()
	for _, rate := range []any{map[string]any{"perSecond": 0, "burst": 1}, map[string]any{"perSecond": 1, "burst": 0}, "fast"} {
		claims := map[string]any{"iss": "berth", "sub": "ci", "aud": "berth", "exp": now.Add(5 * time.Minute).Unix(),
			"nbf": now.Unix(), "iat": now.Unix(), "access": []accessEntry{}, "rate": rate}
		if _, err := v.VerifyToken(t.Context(), sign(t, e.key, e.key.ID(), claims)); !errors.Is(err, auth.ErrUnauthenticated) {
			t.Errorf("rate claim %v: %v, want ErrUnauthenticated", rate, err)
		}
	}
}
