package tokens_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/auth/basic"
	"github.com/berth-dev/berth/auth/policy"
	"github.com/berth-dev/berth/auth/throttle"
	"github.com/berth-dev/berth/auth/tokens"
	"github.com/berth-dev/berth/storage/memmeta"
)

type apiEnv struct {
	srv *httptest.Server
	m   *tokens.Manager
}

func newAPI(t *testing.T) *apiEnv {
	t.Helper()
	meta := memmeta.New()
	m, err := tokens.New(meta, nil)
	if err != nil {
		t.Fatal(err)
	}
	lim, _ := throttle.New(&throttle.Options{AddrBurst: 1000, UserBurst: 3})
	authn := lim.Wrap(auth.ByScheme(basic.New(basic.NewStatic("admin", "pw", auth.Identity{Admin: true}), m), nil))
	h, err := tokens.NewAPI(m, authn, policy.New(meta), nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/tokens", h)
	mux.Handle("/api/v1/tokens/", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &apiEnv{srv: srv, m: m}
}

type resp struct {
	status int
	header http.Header
	body   string
}

func (e *apiEnv) do(t *testing.T, method, path, user, pw, body string) resp {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, r)
	if user != "" {
		req.SetBasicAuth(user, pw)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, string(b)}
}

func wantError(t *testing.T, r resp, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	var e struct {
		Errors []struct{ Code, Message string }
	}
	if err := json.Unmarshal([]byte(r.body), &e); err != nil || len(e.Errors) != 1 || e.Errors[0].Code != code || e.Errors[0].Message == "" {
		t.Fatalf("body %s, want code %s", r.body, code)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
}

type created struct {
	ID, Name, Username, Secret, CreatedBy string
	Scopes                                []string
	ExpiresAt                             string
}

func TestAPILifecycle(t *testing.T) {
	e := newAPI(t)
	r := e.do(t, "POST", "/api/v1/tokens", "admin", "pw", `{"name":"ci","scopes":["repository:team/*:pull,push"],"expiresIn":"720h"}`)
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var c created
	if err := json.Unmarshal([]byte(r.body), &c); err != nil {
		t.Fatal(err)
	}
	if c.ID == "" || c.Username == "" || !strings.HasPrefix(c.Secret, "berth_") || c.ExpiresAt == "" || c.Name != "ci" || c.CreatedBy != "admin" {
		t.Fatalf("created %+v", c)
	}
	if r.header.Get("Cache-Control") != "no-store" || r.header.Get("Location") != "/api/v1/tokens/"+c.ID {
		t.Fatalf("headers %v", r.header)
	}

	// The token logs in; it cannot manage tokens.
	if id, err := e.m.Verify(t.Context(), c.Username, c.Secret); err != nil || id.Scopes[0].String() != "repository:team/*:pull,push" {
		t.Fatalf("verify: %v %v", id, err)
	}
	wantError(t, e.do(t, "GET", "/api/v1/tokens", c.Username, c.Secret, ""), http.StatusForbidden, "DENIED")
	wantError(t, e.do(t, "POST", "/api/v1/tokens", c.Username, c.Secret, `{"name":"x","scopes":["repository:team/a:pull"]}`), http.StatusForbidden, "DENIED")

	// Lists and gets never show the secret.
	for _, p := range []string{"/api/v1/tokens", "/api/v1/tokens/" + c.ID} {
		r = e.do(t, "GET", p, "admin", "pw", "")
		if r.status != 200 || !strings.Contains(r.body, c.ID) || strings.Contains(r.body, c.Secret) || strings.Contains(r.body, "secret") || strings.Contains(r.body, "argon2") {
			t.Fatalf("GET %s: %d %s", p, r.status, r.body)
		}
	}

	if r = e.do(t, "DELETE", "/api/v1/tokens/"+c.ID, "admin", "pw", ""); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if _, err := e.m.Verify(t.Context(), c.Username, c.Secret); err == nil {
		t.Fatal("revoked token still verifies")
	}
	r = e.do(t, "GET", "/api/v1/tokens/"+c.ID, "admin", "pw", "")
	if !strings.Contains(r.body, `"revokedAt"`) {
		t.Fatalf("revoked token: %s", r.body)
	}
	wantError(t, e.do(t, "DELETE", "/api/v1/tokens/nope", "admin", "pw", ""), http.StatusNotFound, "NOT_FOUND")
	wantError(t, e.do(t, "GET", "/api/v1/tokens/nope", "admin", "pw", ""), http.StatusNotFound, "NOT_FOUND")
}

func TestAPIErrors(t *testing.T) {
	e := newAPI(t)
	r := e.do(t, "GET", "/api/v1/tokens", "", "", "")
	wantError(t, r, http.StatusUnauthorized, "UNAUTHORIZED")
	if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic ") {
		t.Fatalf("challenge %q", r.header.Get("WWW-Authenticate"))
	}
	r = e.do(t, "GET", "/api/v1/tokens", "admin", "not-the-password", "")
	wantError(t, r, http.StatusUnauthorized, "UNAUTHORIZED")
	if strings.Contains(r.body, "not-the-password") {
		t.Fatal("the password is echoed")
	}
	r = e.do(t, "POST", "/api/v1/tokens", "admin", "pw", `{"name":"x","scopes":["repository:team/app:pull","repository:team/[:pull"]}`)
	wantError(t, r, http.StatusBadRequest, "INVALID_SCOPE")
	if !strings.Contains(r.body, "repository:team/[:pull") {
		t.Fatalf("the bad scope is not named: %s", r.body)
	}
	for _, body := range []string{
		`{"name":"x","scopes":["repository:a:pull"],"expiresIn":"forever"}`,
		`{"name":"x","scopes":["repository:a:pull"],"expiresIn":"9000d"}`,
		`{"name":"x","scopes":["repository:a:pull"],"admin":true}`,
		`{"name":"","scopes":["repository:a:pull"]}`,
		`{"name":"x","scopes":[]}`,
		`{"name":"x"`,
		`[]`,
		`{"name":"x","scopes":["repository:a:pull"]} {}`,
		`{"name":"` + strings.Repeat("x", tokens.MaxBodyBytes) + `"}`,
	} {
		wantError(t, e.do(t, "POST", "/api/v1/tokens", "admin", "pw", body), http.StatusBadRequest, "INVALID_REQUEST")
	}
	wantError(t, e.do(t, "PUT", "/api/v1/tokens", "admin", "pw", ""), http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
	wantError(t, e.do(t, "POST", "/api/v1/tokens/x", "admin", "pw", ""), http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
	wantError(t, e.do(t, "GET", "/api/v1/tokens?n=0", "admin", "pw", ""), http.StatusBadRequest, "INVALID_REQUEST")

	// Throttled after repeated failures for one user.
	for range 3 {
		e.do(t, "GET", "/api/v1/tokens", "admin", "guess", "")
	}
	r = e.do(t, "GET", "/api/v1/tokens", "admin", "pw", "")
	wantError(t, r, http.StatusTooManyRequests, "TOO_MANY_REQUESTS")
	if r.header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
}

func TestAPIDelegatedManager(t *testing.T) {
	e := newAPI(t)
	r := e.do(t, "POST", "/api/v1/tokens", "admin", "pw", `{"name":"team lead","scopes":["registry:tokens:*","repository:team/*:pull,push"],"expiresIn":"24h"}`)
	var lead created
	_ = json.Unmarshal([]byte(r.body), &lead)
	if r.status != 201 {
		t.Fatal(r.body)
	}
	e.do(t, "POST", "/api/v1/tokens", "admin", "pw", `{"name":"other","scopes":["repository:x:pull"]}`)
	r = e.do(t, "POST", "/api/v1/tokens", lead.Username, lead.Secret, `{"name":"ci","scopes":["repository:team/app:push"],"expiresIn":"1h"}`)
	if r.status != 201 {
		t.Fatalf("lead create: %s", r.body)
	}
	wantError(t, e.do(t, "POST", "/api/v1/tokens", lead.Username, lead.Secret, `{"name":"ci","scopes":["repository:other/app:push"],"expiresIn":"1h"}`), http.StatusForbidden, "DENIED")
	wantError(t, e.do(t, "POST", "/api/v1/tokens", lead.Username, lead.Secret, `{"name":"ci","scopes":["repository:team/app:push"],"expiresIn":"48h"}`), http.StatusForbidden, "DENIED")
	r = e.do(t, "GET", "/api/v1/tokens", lead.Username, lead.Secret, "")
	var list struct{ Tokens []created }
	_ = json.Unmarshal([]byte(r.body), &list)
	if len(list.Tokens) != 1 || list.Tokens[0].Name != "ci" {
		t.Fatalf("lead lists %s", r.body)
	}
}

func TestAPIPagination(t *testing.T) {
	e := newAPI(t)
	for range 5 {
		e.do(t, "POST", "/api/v1/tokens", "admin", "pw", `{"name":"t","scopes":["repository:a:pull"],"expiresIn":"1h"}`)
	}
	seen := 0
	path := "/api/v1/tokens?n=2"
	for path != "" {
		r := e.do(t, "GET", path, "admin", "pw", "")
		var list struct{ Tokens []created }
		if err := json.Unmarshal([]byte(r.body), &list); err != nil {
			t.Fatal(err)
		}
		seen += len(list.Tokens)
		path = ""
		if l := r.header.Get("Link"); l != "" {
			path = strings.TrimPrefix(strings.Split(l, ">")[0], "<")
		}
	}
	if seen != 5 {
		t.Fatalf("saw %d tokens", seen)
	}
}

func TestAPIRateLimit(t *testing.T) {
	e := newAPI(t)
	r := e.do(t, "POST", "/api/v1/tokens", "admin", "pw",
		`{"name":"ci","scopes":["repository:team/**:pull,push","registry:tokens:*"],"rateLimit":{"perSecond":2.5,"burst":10}}`)
	if r.status != http.StatusCreated || !strings.Contains(r.body, `"rateLimit":{"perSecond":2.5,"burst":10}`) {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var c created
	if err := json.Unmarshal([]byte(r.body), &c); err != nil {
		t.Fatal(err)
	}
	id, err := e.m.Verify(t.Context(), c.Username, c.Secret)
	if err != nil || id.RateLimit == nil || *id.RateLimit != (auth.RateLimit{PerSecond: 2.5, Burst: 10}) {
		t.Fatalf("verify: %+v %v", id, err)
	}
	if id, err = e.m.Revalidate(t.Context(), c.Username); err != nil || id.RateLimit == nil || id.RateLimit.Burst != 10 {
		t.Fatalf("revalidate: %+v %v", id, err)
	}
	if r = e.do(t, "GET", "/api/v1/tokens/"+c.ID, "admin", "pw", ""); !strings.Contains(r.body, `"rateLimit":{"perSecond":2.5,"burst":10}`) {
		t.Fatalf("get: %s", r.body)
	}

	// A token without a rate limit has none, and shows none.
	r = e.do(t, "POST", "/api/v1/tokens", "admin", "pw", `{"name":"free","scopes":["repository:x:pull"]}`)
	var free created
	if err := json.Unmarshal([]byte(r.body), &free); err != nil || strings.Contains(r.body, "rateLimit") {
		t.Fatalf("create without a rate: %s", r.body)
	}
	if id, err := e.m.Verify(t.Context(), free.Username, free.Secret); err != nil || id.RateLimit != nil {
		t.Fatalf("verify: %+v %v", id, err)
	}

	// The limited token, as a delegated manager, passes its limit on and
	// cannot create a token with a higher one.
	r = e.do(t, "POST", "/api/v1/tokens", c.Username, c.Secret, `{"name":"sub","scopes":["repository:team/a:pull"],"expiresIn":"24h"}`)
	if r.status != http.StatusCreated || !strings.Contains(r.body, `"rateLimit":{"perSecond":2.5,"burst":10}`) {
		t.Fatalf("delegated create: %d %s", r.status, r.body)
	}
	r = e.do(t, "POST", "/api/v1/tokens", c.Username, c.Secret, `{"name":"sub","scopes":["repository:team/a:pull"],"expiresIn":"24h","rateLimit":{"perSecond":1,"burst":2}}`)
	if r.status != http.StatusCreated || !strings.Contains(r.body, `"rateLimit":{"perSecond":1,"burst":2}`) {
		t.Fatalf("delegated create with a lower rate: %d %s", r.status, r.body)
	}
	wantError(t, e.do(t, "POST", "/api/v1/tokens", c.Username, c.Secret,
		`{"name":"sub","scopes":["repository:team/a:pull"],"expiresIn":"24h","rateLimit":{"perSecond":100,"burst":2}}`), http.StatusForbidden, "DENIED")

	for _, bad := range []string{`{"perSecond":0,"burst":1}`, `{"perSecond":-1,"burst":1}`, `{"perSecond":1,"burst":0}`,
		`{"perSecond":2000000,"burst":1}`, `{"perSecond":1,"burst":2000000}`, `{"perSecond":"fast","burst":1}`, `{"perSecond":1,"burst":1,"x":1}`} {
		wantError(t, e.do(t, "POST", "/api/v1/tokens", "admin", "pw", `{"name":"bad","scopes":["repository:x:pull"],"rateLimit":`+bad+`}`),
			http.StatusBadRequest, "INVALID_REQUEST")
	}
}
