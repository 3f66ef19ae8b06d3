package events_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/auth/authtest"
	"github.com/berth-dev/berth/auth/basic"
	"github.com/berth-dev/berth/events"
	"github.com/berth-dev/berth/internal/testsvc"
	"github.com/berth-dev/berth/registry"
	"github.com/berth-dev/berth/registry/registrytest"
	"github.com/berth-dev/berth/storage/driver"
	"github.com/berth-dev/berth/storage/memmeta"
	"github.com/berth-dev/berth/storage/sqlmeta"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// logged serves h behind an access log writing to a buffer and returns a
// function sending one request and returning its record.
func logged(t *testing.T, h http.Handler) func(method, path, authz string) *events.AccessRecord {
	t.Helper()
	var buf bytes.Buffer
	l, err := events.NewAccessLog(&events.AccessLogOptions{Output: &buf})
	if err != nil {
		t.Fatal(err)
	}
	wrapped := l.Middleware(h)
	return func(method, path, authz string) *events.AccessRecord {
		t.Helper()
		buf.Reset()
		req := httptest.NewRequest(method, path, nil)
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		wrapped.ServeHTTP(httptest.NewRecorder(), req)
		rec, err := events.DecodeAccessRecord(buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
}

// TestRegistryRecordsBearerIdentities checks that registry.Handler records
// the identity and decision itself, for credentials the access log cannot
// read (a bearer token), without any wrapping by the server.
func TestRegistryRecordsBearerIdentities(t *testing.T) {
	srv := registrytest.NewServer(t, &registrytest.Options{Registry: registry.Options{
		Authenticator: authtest.Tokens{"tok-robot-secret": {Subject: "robot", Scopes: []auth.Scope{
			{Type: auth.TypeRepository, Name: "team/*", Actions: []string{auth.Pull}}}}},
		Authorizer: &authtest.Static{},
	}})
	ref, _ := name.ParseReference(srv.Host()+"/team/app:v1", name.Insecure)
	img, _ := random.Image(100, 1)
	if err := remote.Write(ref, img, remote.WithTransport(&bearerTransport{"tok-robot-secret"})); err == nil {
		t.Fatal("a pull-only token pushed")
	}
	get := logged(t, srv.Handler)
	for _, c := range []struct {
		path, authz, identity, decision string
		status                          int
	}{
		{"/v2/team/app/manifests/v1", "Bearer tok-robot-secret", "robot", events.DecisionAllow, 404},
		{"/v2/other/app/manifests/v1", "Bearer tok-robot-secret", "robot", events.DecisionDeny, 403},
		{"/v2/team/app/manifests/v1", "Bearer wrong", "", events.DecisionUnauthenticated, 401},
		{"/v2/team/app/manifests/v1", "", "anonymous", events.DecisionUnauthenticated, 401},
	} {
		rec := get("GET", c.path, c.authz)
		if rec.Identity != c.identity || rec.Decision != c.decision || rec.Status != c.status || rec.Reference != "v1" {
			t.Errorf("GET %s with %q: identity %q decision %q status %d ref %q; want %q %q %d",
				c.path, c.authz, rec.Identity, rec.Decision, rec.Status, rec.Reference, c.identity, c.decision, c.status)
		}
	}
}

type bearerTransport struct{ tok string }

func (b *bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.tok)
	return http.DefaultTransport.RoundTrip(r)
}

// TestObserveAuthorizerDecisions checks the decision of full, partial and
// empty grants, and that the first authorization of a request decides.
func TestObserveAuthorizerDecisions(t *testing.T) {
	z := events.ObserveAuthorizer(&authtest.Static{Grants: map[string][]auth.Scope{
		"u": {{Type: auth.TypeRepository, Name: "a", Actions: []string{auth.Pull}}}}})
	if events.ObserveAuthorizer(z) != z {
		t.Error("wrapping twice wraps again")
	}
	id := &auth.Identity{Subject: "u"}
	pull := func(names ...string) []auth.Scope {
		var s []auth.Scope
		for _, n := range names {
			s = append(s, auth.Scope{Type: auth.TypeRepository, Name: n, Actions: []string{auth.Pull}})
		}
		return s
	}
	for _, c := range []struct {
		first, then []auth.Scope
		want        string
	}{
		{pull("a"), nil, events.DecisionAllow},
		{pull("a", "b"), nil, events.DecisionPartial},
		{pull("b"), nil, events.DecisionDeny},
		{[]auth.Scope{{Type: auth.TypeRepository, Name: "a", Actions: []string{auth.Pull, auth.Push}}}, nil, events.DecisionPartial},
		{pull("a"), pull("b"), events.DecisionAllow},
	} {
		rec := &events.Record{}
		ctx := events.ContextWithRecord(context.Background(), rec)
		for _, want := range [][]auth.Scope{c.first, c.then} {
			if want != nil {
				if _, err := z.Authorize(ctx, id, want); err != nil {
					t.Fatal(err)
				}
			}
		}
		if rec.Decision() != c.want {
			t.Errorf("%v then %v: decision %q, want %q", c.first, c.then, rec.Decision(), c.want)
		}
	}
}

// TestObserveAuthenticatorRateLimit checks that an identity is charged
// once per request however often the request is authenticated, that its
// own limit applies, and the error past it.
func TestObserveAuthenticatorRateLimit(t *testing.T) {
	lim, _ := events.NewMemoryLimiter(&events.MemoryLimiterOptions{Identity: events.Limit{Rate: 0.001, Burst: 2}})
	rl, _ := events.NewRateLimit(lim, nil)
	ids := authtest.Tokens{
		"plain":   {Subject: "plain"},
		"limited": {Subject: "limited", RateLimit: &auth.RateLimit{PerSecond: 0.001, Burst: 4}},
	}
	a := events.ObserveAuthenticator(ids, rl)
	if events.ObserveAuthenticator(a, nil) != a {
		t.Error("wrapping twice without a limit wraps again")
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for range 3 { // a request may be authenticated more than once
			if _, err := a.Authenticate(r); err != nil {
				var te *auth.ThrottledError
				if !errors.As(err, &te) || te.RetryAfter < 900*time.Second {
					t.Errorf("error %v, want a ThrottledError of about 1000s", err)
				}
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
		}
	})
	get := logged(t, h)
	for tok, burst := range map[string]int{"plain": 2, "limited": 4} {
		for i := range burst {
			if rec := get("GET", "/v2/", "Bearer "+tok); rec.Status != 200 || rec.Identity != tok {
				t.Fatalf("%s: request %d: %+v", tok, i+1, rec)
			}
		}
		rec := get("GET", "/v2/", "Bearer "+tok)
		if rec.Status != 429 || rec.Decision != events.DecisionRateLimited || rec.Identity != tok {
			t.Errorf("%s past its burst of %d: %+v", tok, burst, rec)
		}
	}
	// Anonymous requests are not limited per identity.
	for range 5 {
		if rec := get("GET", "/v2/", ""); rec.Status != 200 || rec.Identity != "anonymous" {
			t.Fatalf("anonymous: %+v", rec)
		}
	}
}

// countingStore counts the calls that reach the shared store.
type countingStore struct {
	driver.RateLimits
	n atomic.Int32
}

func (c *countingStore) TakeRate(ctx context.Context, key string, rate float64, burst, cost int) (bool, time.Duration, error) {
	c.n.Add(1)
	return c.RateLimits.TakeRate(ctx, key, rate, burst, cost)
}

// TestSharedLimiter runs two limiters, as two nodes would, over one
// shared store: in-memory, a SQLite file opened twice, and PostgreSQL
// opened twice (skipped without PostgreSQL, failed under CI).
func TestSharedLimiter(t *testing.T) {
	open := func(t *testing.T, url string) driver.RateLimits {
		m, err := sqlmeta.Open(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
	for _, c := range []struct {
		name  string
		nodes func(t *testing.T) (driver.RateLimits, driver.RateLimits)
	}{
		{"memmeta", func(t *testing.T) (driver.RateLimits, driver.RateLimits) { m := memmeta.New(); return m, m }},
		{"sqlite", func(t *testing.T) (driver.RateLimits, driver.RateLimits) {
			url := "sqlite://" + t.TempDir() + "/meta.db"
			return open(t, url), open(t, url)
		}},
		{"postgres", func(t *testing.T) (driver.RateLimits, driver.RateLimits) {
			url := testsvc.Postgres(t)
			return open(t, url), open(t, url)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s1, s2 := c.nodes(t)
			cs := &countingStore{RateLimits: s1}
			opts := &events.SharedLimiterOptions{Identity: events.Limit{Rate: 0.01, Burst: 4}, Address: events.Limit{Rate: 0.01, Burst: 1}}
			a, err := events.NewSharedLimiter(cs, opts)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := events.NewSharedLimiter(s2, opts)
			ctx := context.Background()
			for i, l := range []*events.SharedLimiter{a, b, a, b} {
				if ok, _, err := l.Allow(ctx, events.IdentityKey("ci"), 1); !ok || err != nil {
					t.Fatalf("take %d of a shared burst of 4: %v %v", i+1, ok, err)
				}
			}
			for _, l := range []*events.SharedLimiter{a, b} {
				ok, wait, err := l.Allow(ctx, events.IdentityKey("ci"), 1)
				if ok || err != nil || wait < 90*time.Second || wait > 101*time.Second {
					t.Fatalf("take past the shared burst: %v, wait %v, %v", ok, wait, err)
				}
			}
			// A refusal is remembered: the store is not asked again.
			before := cs.n.Load()
			if ok, _, _ := a.Allow(ctx, events.IdentityKey("ci"), 1); ok || cs.n.Load() != before {
				t.Errorf("remembered refusal: ok %v, store calls %d → %d", ok, before, cs.n.Load())
			}
			// Other keys and kinds of key have their own buckets; an
			// identity's own limit applies through AllowLimit.
			if ok, _, _ := b.Allow(ctx, events.AddressKey("10.0.0.1"), 1); !ok {
				t.Error("address refused")
			}
			if ok, _, _ := a.Allow(ctx, events.AddressKey("10.0.0.1"), 1); ok {
				t.Error("address burst of 1 taken twice across nodes")
			}
			if ok, _, _ := a.AllowLimit(ctx, events.IdentityKey("big"), events.Limit{Rate: 0.01, Burst: 6}, 6); !ok {
				t.Error("own limit of burst 6 refused a cost of 6")
			}
			if ok, _, _ := b.AllowLimit(ctx, events.IdentityKey("free"), events.Limit{}, 1000); !ok {
				t.Error("the zero limit refused")
			}
		})
	}
}

// TestAccessRecordsHoldNoSecrets sends credentials in every place a
// client may put them and checks that none reaches the record.
func TestAccessRecordsHoldNoSecrets(t *testing.T) {
	a := events.ObserveAuthenticator(authtest.Users{Passwords: map[string]string{"alice": "pw-alice-secret"}}, nil)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := a.Authenticate(r); err != nil {
			w.WriteHeader(http.StatusUnauthorized)
		}
	})
	var buf bytes.Buffer
	l, _ := events.NewAccessLog(&events.AccessLogOptions{Output: &buf})
	for _, c := range []struct{ path, user, pw string }{
		{"/v2/a/blobs/sha256:" + strings.Repeat("a", 64) + "?X-Amz-Signature=sig-secret-1&X-Amz-Credential=cred-secret-2&X-Goog-Signature=sig-secret-3", "alice", "pw-alice-secret"},
		{"/token?password=pw-secret-4&access_token=tok-secret-5&refresh_token=tok-secret-6&client_secret=cs-secret-7&scope=x", "alice", "pw-alice-secret"},
		{"/v2/", "alice", "wrong-secret-8"},
	} {
		req := httptest.NewRequest("GET", c.path, nil)
		req.SetBasicAuth(c.user, c.pw)
		l.Middleware(h).ServeHTTP(httptest.NewRecorder(), req)
	}
	req := httptest.NewRequest("GET", "/v2/", nil)
	req.Header.Set("Authorization", "Bearer jwt-secret-9")
	l.Middleware(h).ServeHTTP(httptest.NewRecorder(), req)
	out := buf.String()
	for _, s := range []string{"secret-", "pw-alice", "Authorization", "Bearer", "Basic"} {
		if strings.Contains(out, s) {
			t.Errorf("the access log holds %q:\n%s", s, out)
		}
	}
	if !strings.Contains(out, `"identity":"alice"`) || strings.Count(out, "REDACTED") < 7 {
		t.Errorf("records:\n%s", out)
	}
}

// countingVerifier counts the password checks of a basic.Verifier.
type countingVerifier struct {
	v basic.Verifier
	n atomic.Int64
}

func (c *countingVerifier) Verify(ctx context.Context, user, password string) (*auth.Identity, error) {
	c.n.Add(1)
	return c.v.Verify(ctx, user, password)
}

// TestStackVerifiesCredentialsOnce serves manifest GETs through the
// stack registryd builds (access log, metrics, rate limits per address
// and identity, the registry with the observed authenticator and
// authorizer) and checks that HTTP Basic credentials are verified once
// per request: the middlewares learn the identity from the registry's
// own authentication, through the request's Record, and never check the
// password themselves. A wrong password is still refused, recorded as
// unauthenticated without the name it claims, and charges no identity.
func TestStackVerifiesCredentialsOnce(t *testing.T) {
	verifier := &countingVerifier{v: basic.NewStatic("admin", "pw-admin", auth.Identity{Admin: true})}
	lim, err := events.NewMemoryLimiter(&events.MemoryLimiterOptions{
		Address:  events.Limit{Rate: 1e6, Burst: 1e6},
		Identity: events.Limit{Rate: 0.001, Burst: 2}, // two requests per identity
	})
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := events.NewMetrics(nil)
	limits, _ := events.NewRateLimit(lim, &events.RateLimitOptions{Metrics: metrics})
	srv := registrytest.NewServer(t, &registrytest.Options{Registry: registry.Options{
		Authenticator: events.ObserveAuthenticator(basic.New(verifier), limits),
		Authorizer:    events.ObserveAuthorizer(&authtest.Static{}),
	}})
	var buf bytes.Buffer
	l, err := events.NewAccessLog(&events.AccessLogOptions{Output: &buf})
	if err != nil {
		t.Fatal(err)
	}
	h := l.Middleware(metrics.Middleware(limits.Middleware(srv.Handler)))
	get := func(pw string) int {
		req := httptest.NewRequest(http.MethodGet, "/v2/team/app/manifests/v1", nil)
		req.SetBasicAuth("admin", pw)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code
	}
	for i, c := range []struct {
		pw       string
		status   int
		identity string
		decision string
	}{
		{"pw-admin", http.StatusNotFound, "admin", events.DecisionAllow},
		{"wrong-pw", http.StatusUnauthorized, "", events.DecisionUnauthenticated},
		{"pw-admin", http.StatusNotFound, "admin", events.DecisionAllow},
		{"pw-admin", http.StatusTooManyRequests, "admin", events.DecisionRateLimited},
	} {
		buf.Reset()
		before := verifier.n.Load()
		if got := get(c.pw); got != c.status {
			t.Fatalf("request %d: status %d, want %d", i, got, c.status)
		}
		if n := verifier.n.Load() - before; n != 1 {
			t.Errorf("request %d: the password was checked %d times", i, n)
		}
		rec, err := events.DecodeAccessRecord(buf.Bytes())
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if rec.Identity != c.identity || rec.Decision != c.decision || rec.Status != c.status {
			t.Errorf("request %d: record identity %q decision %q status %d; want %q %q %d",
				i, rec.Identity, rec.Decision, rec.Status, c.identity, c.decision, c.status)
		}
		if strings.Contains(buf.String(), "pw-admin") || strings.Contains(buf.String(), "wrong-pw") {
			t.Errorf("request %d: the record holds the password: %s", i, buf.String())
		}
	}
}
