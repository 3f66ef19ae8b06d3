package token

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/auth/basic"
	"github.com/berth-dev/berth/auth/tokens"
	"github.com/berth-dev/berth/storage/sqlmeta"
)

// switchRevalidator knows one subject, which can be revoked, and counts
// the calls.
type switchRevalidator struct {
	subject string
	revoked atomic.Bool
	fail    atomic.Bool
	calls   atomic.Int64
}

func (r *switchRevalidator) Revalidate(_ context.Context, subject string) (*auth.Identity, error) {
	r.calls.Add(1)
	if r.fail.Load() {
		return nil, errors.New("database unavailable")
	}
	if subject != r.subject || r.revoked.Load() {
		return nil, auth.ErrUnauthenticated
	}
	return &auth.Identity{Subject: subject}, nil
}

func TestVerifierRevalidates(t *testing.T) {
	c := &clock{t: time.Now()}
	key, _ := GenerateKey()
	r := &switchRevalidator{subject: "ci"}
	v, err := NewVerifier(&VerifierOptions{Now: c.Now, Revalidator: r, RevalidateEvery: 5 * time.Second}, key.Public())
	if err != nil {
		t.Fatal(err)
	}
	raw := sign(t, key, key.ID(), claimsAt(c.Now(), 5*time.Minute, "ci"))
	for range 3 {
		if _, err := v.VerifyToken(t.Context(), raw); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.calls.Load(); n != 1 {
		t.Fatalf("%d Revalidate calls for 3 requests within the interval, want 1", n)
	}
	// Revoked: still honoured until the remembered answer is due again,
	// then refused.
	r.revoked.Store(true)
	c.Add(4 * time.Second)
	if _, err := v.VerifyToken(t.Context(), raw); err != nil {
		t.Fatalf("within the interval: %v", err)
	}
	c.Add(time.Second)
	if _, err := v.VerifyToken(t.Context(), raw); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("revoked subject after the interval: %v", err)
	}
	// The refusal is remembered for the interval too.
	n := r.calls.Load()
	if _, err := v.VerifyToken(t.Context(), raw); !errors.Is(err, auth.ErrUnauthenticated) || r.calls.Load() != n {
		t.Fatalf("remembered refusal: %v, %d calls after %d", err, r.calls.Load(), n)
	}
	// Unknown subjects are refused; anonymous tokens are not checked.
	if _, err := v.VerifyToken(t.Context(), sign(t, key, key.ID(), claimsAt(c.Now(), 5*time.Minute, "someone"))); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("unknown subject: %v", err)
	}
	n = r.calls.Load()
	if _, err := v.VerifyToken(t.Context(), sign(t, key, key.ID(), claimsAt(c.Now(), 5*time.Minute, ""))); err != nil || r.calls.Load() != n {
		t.Fatalf("anonymous token: %v, %d calls after %d", err, r.calls.Load(), n)
	}
	// Errors other than a refusal are returned, and not remembered.
	r.revoked.Store(false)
	r.fail.Store(true)
	c.Add(6 * time.Second)
	if _, err := v.VerifyToken(t.Context(), raw); err == nil || errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("failing revalidator: %v", err)
	}
	r.fail.Store(false)
	if _, err := v.VerifyToken(t.Context(), raw); err != nil {
		t.Fatalf("after the failure: %v", err)
	}
}

func TestVerifierRevalidateOptions(t *testing.T) {
	key, _ := GenerateKey()
	if _, err := NewVerifier(&VerifierOptions{RevalidateEvery: 2 * time.Minute}, key.Public()); err == nil {
		t.Fatal("RevalidateEvery above a minute accepted")
	}
	v, err := NewVerifier(&VerifierOptions{Revalidator: &switchRevalidator{}}, key.Public())
	if err != nil || v.opts.RevalidateEvery != DefaultRevalidateEvery {
		t.Fatalf("default: %v %v", v.opts.RevalidateEvery, err)
	}
	// Negative: every request asks.
	r := &switchRevalidator{subject: "ci"}
	v, _ = NewVerifier(&VerifierOptions{Revalidator: r, RevalidateEvery: -1}, key.Public())
	raw := sign(t, key, key.ID(), claimsAt(time.Now(), 5*time.Minute, "ci"))
	for range 3 {
		if _, err := v.VerifyToken(t.Context(), raw); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.calls.Load(); n != 3 {
		t.Fatalf("%d calls, want 3", n)
	}
}

// slowRevalidator blocks until released, to make concurrent misses meet.
type slowRevalidator struct {
	calls   atomic.Int64
	release chan struct{}
}

func (r *slowRevalidator) Revalidate(_ context.Context, subject string) (*auth.Identity, error) {
	r.calls.Add(1)
	<-r.release
	return &auth.Identity{Subject: subject}, nil
}

func TestVerifierRevalidateShared(t *testing.T) {
	key, _ := GenerateKey()
	r := &slowRevalidator{release: make(chan struct{})}
	v, _ := NewVerifier(&VerifierOptions{Revalidator: r}, key.Public())
	raw := sign(t, key, key.ID(), claimsAt(time.Now(), 5*time.Minute, "ci"))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := v.VerifyToken(t.Context(), raw); err != nil {
				t.Error(err)
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	close(r.release)
	wg.Wait()
	if n := r.calls.Load(); n != 1 {
		t.Fatalf("%d Revalidate calls for concurrent requests, want 1", n)
	}
}

// TestServiceRevokedRegistryToken: an access token issued for a registry
// token stops working within RevalidateEvery once the registry token is
// revoked, though it has not expired.
func TestServiceRevokedRegistryToken(t *testing.T) {
	e := newEnv(t, nil)
	admin := &auth.Identity{Subject: "admin", Admin: true}
	tok, secret, err := e.toks.Create(t.Context(), admin, tokens.CreateRequest{Name: "ci", Scopes: []string{"repository:team/*:pull,push"}, ExpiresIn: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	a := e.get(t, tok.Username, secret, scopeParams("repository:team/app:pull"))
	v := e.svc.Verifier()
	if id, err := v.VerifyToken(t.Context(), a.resp.Token); err != nil || id.Subject != tok.Username {
		t.Fatalf("fresh token: %+v %v", id, err)
	}
	if err := e.toks.Revoke(t.Context(), admin, tok.ID); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(DefaultRevalidateEvery)
	if _, err := v.VerifyToken(t.Context(), a.resp.Token); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("token of a revoked registry token: %v", err)
	}
}

// BenchmarkVerifyTokenRevalidate measures what re-checking the subject
// costs: without a Revalidator, with the default interval, and asking on
// every request, against a registry token in SQLite.
func BenchmarkVerifyTokenRevalidate(b *testing.B) {
	ctx := b.Context()
	meta, err := sqlmeta.Open(ctx, "sqlite://"+filepath.Join(b.TempDir(), "meta.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { meta.Close() })
	toks, err := tokens.New(meta, nil)
	if err != nil {
		b.Fatal(err)
	}
	tok, _, err := toks.Create(ctx, &auth.Identity{Subject: "admin", Admin: true}, tokens.CreateRequest{Name: "ci", Scopes: []string{"repository:team/*:pull"}, ExpiresIn: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	rv := Revalidators{basic.NewStatic("admin", "pw", auth.Identity{Admin: true}), toks}
	key, _ := GenerateKey()
	raw := sign(b, key, key.ID(), claimsAt(time.Now(), 5*time.Minute, tok.Username))
	for _, c := range []struct {
		name  string
		r     Revalidator
		every time.Duration
	}{{"off", nil, 0}, {"every=5s", rv, 0}, {"always", rv, -1}} {
		v, err := NewVerifier(&VerifierOptions{Revalidator: c.r, RevalidateEvery: c.every}, key.Public())
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("revalidate=%s", c.name), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.VerifyToken(ctx, raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
