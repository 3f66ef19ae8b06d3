package tokens

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/auth"
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

var admin = &auth.Identity{Subject: "admin", Admin: true}

func newManager(t *testing.T, o *Options) (*Manager, *memmeta.Metadata, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	var opts Options
	if o != nil {
		opts = *o
	}
	opts.Now = c.Now
	meta := memmeta.New()
	m, err := New(meta, &opts)
	if err != nil {
		t.Fatal(err)
	}
	return m, meta, c
}

func create(t *testing.T, m *Manager, who *auth.Identity, life time.Duration, scopes ...string) (*Token, string) {
	t.Helper()
	tok, secret, err := m.Create(context.Background(), who, CreateRequest{Name: "ci", Scopes: scopes, ExpiresIn: life})
	if err != nil {
		t.Fatal(err)
	}
	return tok, secret
}

func TestCreateAndVerify(t *testing.T) {
	ctx := context.Background()
	m, meta, _ := newManager(t, nil)
	tok, secret := create(t, m, admin, time.Hour, "repository:team/*:pull,push", "registry:catalog:*", "repository:team/*:pull,push")
	if !strings.HasPrefix(secret, SecretPrefix) || len(secret) < 40 {
		t.Fatalf("secret %q", secret)
	}
	if !strings.HasPrefix(tok.Username, UsernamePrefix) || tok.CreatedBy != "admin" || len(tok.Scopes) != 2 {
		t.Fatalf("token %+v", tok)
	}
	rec, err := meta.GetToken(ctx, tok.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(rec.SecretHash), "$argon2id$v=19$m=19456,t=2,p=1$") || strings.Contains(string(rec.SecretHash), secret) {
		t.Fatalf("stored hash %q", rec.SecretHash)
	}
	id, err := m.Verify(ctx, tok.Username, secret)
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != tok.Username || id.Admin || len(id.Scopes) != 2 || id.Scopes[0].String() != "repository:team/*:pull,push" || !id.ExpiresAt.Equal(tok.ExpiresAt) {
		t.Fatalf("identity %+v", id)
	}
	// Cached and uncached checks agree.
	if _, err := m.Verify(ctx, tok.Username, secret); err != nil {
		t.Fatal(err)
	}
	for _, c := range [][2]string{
		{tok.Username, secret + "x"},
		{tok.Username, strings.TrimPrefix(secret, SecretPrefix)},
		{tok.Username, ""},
		{UsernamePrefix + "000000000000000000000000", secret},
		{"admin", secret},
		{strings.ToUpper(tok.Username), secret},
	} {
		id, err := m.Verify(ctx, c[0], c[1])
		if !errors.Is(err, auth.ErrUnauthenticated) || id != nil {
			t.Errorf("%q: %v, %v", c[0], id, err)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("error reveals the secret: %v", err)
		}
	}
}

func TestExpiredAndRevoked(t *testing.T) {
	ctx := context.Background()
	m, _, c := newManager(t, nil)
	tok, secret := create(t, m, admin, time.Hour, "repository:team/*:pull,push,delete")
	start := c.Now().Add(50 * time.Minute) // an upload starts before expiry
	c.Add(time.Hour)                       // expired exactly now
	if _, err := m.Verify(ctx, tok.Username, secret); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("expired: %v", err)
	}
	// Finishing an upload started while valid, within the grace window.
	c.Add(30 * time.Minute)
	gctx := auth.WithUploadGrace(ctx, "team/app", start)
	id, err := m.Verify(gctx, tok.Username, secret)
	if err != nil {
		t.Fatalf("grace: %v", err)
	}
	if !id.Grace || len(id.Scopes) != 1 || id.Scopes[0].String() != "repository:team/app:pull,push" {
		t.Fatalf("grace identity %+v", id)
	}
	// Not for another repository's upload, nor a wrong secret, nor an
	// upload that started after expiry, nor past the window.
	if id, err := m.Verify(auth.WithUploadGrace(ctx, "other/app", start), tok.Username, secret); err != nil || len(id.Scopes) != 0 {
		t.Fatalf("grace outside the scopes: %+v %v", id, err)
	}
	if _, err := m.Verify(gctx, tok.Username, "wrong"); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("grace with a wrong secret: %v", err)
	}
	if _, err := m.Verify(auth.WithUploadGrace(ctx, "team/app", start.Add(11*time.Minute)), tok.Username, secret); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("upload started after expiry: %v", err)
	}
	c.Add(31 * time.Minute)
	if _, err := m.Verify(gctx, tok.Username, secret); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("past the grace window: %v", err)
	}

	// Revocation wins at once, over the cache and over grace.
	tok2, secret2 := create(t, m, admin, time.Hour, "repository:team/*:push")
	if _, err := m.Verify(ctx, tok2.Username, secret2); err != nil {
		t.Fatal(err)
	}
	if err := m.Revoke(ctx, admin, tok2.ID); err != nil {
		t.Fatal(err)
	}
	if err := m.Revoke(ctx, admin, tok2.ID); err != nil {
		t.Fatalf("second revoke: %v", err)
	}
	if _, err := m.Verify(ctx, tok2.Username, secret2); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("revoked: %v", err)
	}
	if _, err := m.Verify(auth.WithUploadGrace(ctx, "team/app", c.Now()), tok2.Username, secret2); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("revoked with grace: %v", err)
	}
	if _, err := m.Revalidate(ctx, tok2.Username); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("revalidate revoked: %v", err)
	}
	if err := m.Revoke(ctx, admin, "nope"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}
}

func TestGraceDisabled(t *testing.T) {
	ctx := context.Background()
	m, _, c := newManager(t, &Options{UploadGrace: -1})
	tok, secret := create(t, m, admin, time.Hour, "repository:team/*:push")
	start := c.Now()
	c.Add(61 * time.Minute)
	if _, err := m.Verify(auth.WithUploadGrace(ctx, "team/app", start), tok.Username, secret); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("grace disabled: %v", err)
	}
}

func TestCreateValidation(t *testing.T) {
	ctx := context.Background()
	m, _, _ := newManager(t, nil)
	bad := []CreateRequest{
		{Name: "", Scopes: []string{"repository:a:pull"}},
		{Name: strings.Repeat("n", 101), Scopes: []string{"repository:a:pull"}},
		{Name: "x\x00y", Scopes: []string{"repository:a:pull"}},
		{Name: "x", Scopes: nil},
		{Name: "x", Scopes: []string{"repository:a:pull"}, ExpiresIn: 367 * 24 * time.Hour},
		{Name: "x", Scopes: []string{"repository:a:pull"}, ExpiresIn: -time.Hour},
		{Name: "x", Scopes: make([]string, 101)},
	}
	for i, r := range bad {
		if _, _, err := m.Create(ctx, admin, r); !errors.Is(err, driver.ErrInvalidArgument) {
			t.Errorf("case %d: %v", i, err)
		}
	}
	for _, s := range []string{"repository:a", "repository:a:fly", "repository:a/[:pull", "repository:/a:pull", "registry:catalog:pull", "registry:other:*", "user:bob:pull", "registry:tokens:pull"} {
		_, _, err := m.Create(ctx, admin, CreateRequest{Name: "x", Scopes: []string{s}})
		var se *auth.ScopeError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), s) {
			t.Errorf("%q: %v", s, err)
		}
	}
	if _, _, err := m.Create(ctx, auth.Anonymous, CreateRequest{Name: "x", Scopes: []string{"repository:a:pull"}}); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("anonymous: %v", err)
	}
	tok, _ := create(t, m, admin, 0, "repository:a:pull")
	if d := tok.ExpiresAt.Sub(tok.CreatedAt); d != 90*24*time.Hour {
		t.Fatalf("default expiry %v", d)
	}
}

func TestDelegation(t *testing.T) {
	ctx := context.Background()
	m, _, c := newManager(t, nil)
	mgr := &auth.Identity{Subject: "token-mgr", ExpiresAt: c.Now().Add(48 * time.Hour), Scopes: []auth.Scope{
		{Type: "registry", Name: "tokens", Actions: []string{"create", "list", "delete"}},
		{Type: "repository", Name: "team/*", Actions: []string{"pull", "push"}},
		{Type: "repository", Name: "deep/**", Actions: []string{"pull"}},
	}}
	ok := [][]string{
		{"repository:team/app:pull"},
		{"repository:team/app:pull,push"},
		{"repository:team/*:push"},
		{"repository:deep/a/b:pull"},
		{"repository:deep/a/*:pull"},
		{"repository:deep/**:pull"},
		{"registry:tokens:list"},
	}
	for _, s := range ok {
		if _, _, err := m.Create(ctx, mgr, CreateRequest{Name: "x", Scopes: s, ExpiresIn: time.Hour}); err != nil {
			t.Errorf("%v: %v", s, err)
		}
	}
	denied := [][]string{
		{"repository:team/app:delete"},
		{"repository:team/app:*"},
		{"repository:team/**:pull"},
		{"repository:team/*/x:pull"},
		{"repository:team/?:pull"},
		{"repository:other/app:pull"},
		{"repository:*:pull"},
		{"repository:deep/**:push"},
		{"registry:catalog:*"},
		{"registry:tokens:*"},
		{"repository:team/app:pull", "repository:other/app:pull"},
	}
	for _, s := range denied {
		if _, _, err := m.Create(ctx, mgr, CreateRequest{Name: "x", Scopes: s, ExpiresIn: time.Hour}); !errors.Is(err, ErrPermission) {
			t.Errorf("%v: %v, want ErrPermission", s, err)
		}
	}
	if _, _, err := m.Create(ctx, mgr, CreateRequest{Name: "x", Scopes: []string{"repository:team/app:pull"}, ExpiresIn: 72 * time.Hour}); !errors.Is(err, ErrPermission) {
		t.Errorf("outliving the creator: %v", err)
	}
	// The delegated manager sees only its own tokens; admin sees all.
	own, _ := create(t, m, mgr, time.Hour, "repository:team/a:pull")
	other, _ := create(t, m, admin, time.Hour, "repository:x:pull")
	page, _, err := m.List(ctx, mgr, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != len(ok)+1 {
		t.Fatalf("manager lists %d tokens", len(page))
	}
	for _, p := range page {
		if p.CreatedBy != "token-mgr" {
			t.Fatalf("manager sees %+v", p)
		}
	}
	if _, err := m.Get(ctx, mgr, other.ID); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("get other: %v", err)
	}
	if err := m.Revoke(ctx, mgr, other.ID); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("revoke other: %v", err)
	}
	if err := m.Revoke(ctx, mgr, own.ID); err != nil {
		t.Fatal(err)
	}
	all, _, _ := m.List(ctx, admin, "", 1000)
	if len(all) != len(ok)+2 {
		t.Fatalf("admin lists %d", len(all))
	}
	// Paging with filtering.
	var walked int
	after := ""
	for {
		page, more, err := m.List(ctx, mgr, after, 3)
		if err != nil {
			t.Fatal(err)
		}
		walked += len(page)
		if !more {
			break
		}
		after = page[len(page)-1].ID
	}
	if walked != len(ok)+1 {
		t.Fatalf("walked %d", walked)
	}
}

func TestHashFormat(t *testing.T) {
	h, err := hashSecret("s")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := checkSecret(h, "s"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	h2, _ := hashSecret("s")
	if string(h) == string(h2) {
		t.Fatal("salt not random")
	}
	for _, bad := range []string{"", "$argon2id$v=19$m=1000000,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "$argon2id$v=19$m=19456,t=99,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "plain"} {
		if _, err := checkSecret([]byte(bad), "s"); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzParseHash(f *testing.F) {
	h, _ := hashSecret("seed")
	f.Add(string(h))
	f.Add("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$$")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parseHash([]byte(s))
		if err != nil {
			return
		}
		if p.memory > maxArgonMemory || p.time > maxArgonTime || p.threads < 1 || len(p.key) < 16 {
			t.Fatalf("accepted out-of-bounds parameters %+v", p)
		}
	})
}

func FuzzParseExpiresIn(f *testing.F) {
	for _, s := range []string{"720h", "30d", "", "0d", "-1h", "1.5h", "99999999999d", "1h30m"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseExpiresIn(s)
		if err == nil && d < 0 {
			t.Fatalf("%q: negative %v", s, d)
		}
		if err != nil && !errors.Is(err, driver.ErrInvalidArgument) {
			t.Fatalf("%q: %v", s, err)
		}
	})
}

func TestHashConcurrencyBound(t *testing.T) {
	m, _, _ := newManager(t, &Options{MaxConcurrentHashes: 1, CacheTTL: -1})
	tok, secret := create(t, m, admin, time.Hour, "repository:a:pull")
	// Occupy the only slot; a caller whose context ends while waiting
	// gives up with the context's error, not a verdict on its secret.
	m.hashes <- struct{}{}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := m.Verify(ctx, tok.Username, secret); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting verify: %v", err)
	}
	<-m.hashes
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if _, err := m.Verify(context.Background(), tok.Username, secret); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if len(m.hashes) != 0 {
		t.Fatal("slot leaked")
	}
}
