package token

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/auth"
)

// claimsAt are valid claims for a token issued at now, living for life.
func claimsAt(now time.Time, life time.Duration, sub string) map[string]any {
	return map[string]any{"iss": "berth", "sub": sub, "aud": "berth", "exp": now.Add(life).Unix(),
		"nbf": now.Unix(), "iat": now.Unix(), "access": []accessEntry{{Type: "repository", Name: "team/app", Actions: []string{"pull", "push"}}}}
}

func TestVerifierCacheKeepsTimeChecks(t *testing.T) {
	c := &clock{t: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)}
	key, _ := GenerateKey()
	v, err := NewVerifier(&VerifierOptions{Now: c.Now}, key.Public())
	if err != nil {
		t.Fatal(err)
	}
	raw := sign(t, key, key.ID(), claimsAt(c.Now(), 5*time.Minute, "ci"))
	for i := range 3 {
		id, err := v.VerifyToken(t.Context(), raw)
		if err != nil || id.Subject != "ci" || strings.Join(scopeStrings(id.Scopes), " ") != "repository:team/app:pull,push" {
			t.Fatalf("use %d: %+v %v", i, id, err)
		}
		// Callers may modify the identity they get: the cached claims stay.
		id.Scopes[0].Actions[0] = "delete"
		id.Scopes = append(id.Scopes, auth.Scope{Type: "repository", Name: "other/app", Actions: []string{"pull"}})
	}
	if n := v.cache.len(); n != 1 {
		t.Fatalf("cache holds %d tokens, want 1", n)
	}

	// Expiry is checked on every use: within the leeway the cached token
	// passes, past it the token is refused, and with an upload grace it
	// is accepted again, restricted to the upload's repository.
	c.Add(5*time.Minute + 20*time.Second)
	if _, err := v.VerifyToken(t.Context(), raw); err != nil {
		t.Fatalf("within leeway: %v", err)
	}
	c.Add(20 * time.Second)
	if _, err := v.VerifyToken(t.Context(), raw); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("expired: %v", err)
	}
	if n := v.cache.len(); n != 0 {
		t.Fatalf("the expired token is still cached (%d entries)", n)
	}
	start := c.Now().Add(-time.Minute)
	id, err := v.VerifyToken(auth.WithUploadGrace(t.Context(), "team/app", start), raw)
	if err != nil || !id.Grace || strings.Join(scopeStrings(id.Scopes), " ") != "repository:team/app:pull,push" {
		t.Fatalf("grace: %+v %v", id, err)
	}
	if n := v.cache.len(); n != 0 {
		t.Fatalf("an expired token was cached (%d entries)", n)
	}

	// Not-before and issued-at are checked on hits too: a clock that goes
	// back before them refuses a cached token.
	c2 := &clock{t: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)}
	v2, _ := NewVerifier(&VerifierOptions{Now: c2.Now}, key.Public())
	raw2 := sign(t, key, key.ID(), claimsAt(c2.Now(), 5*time.Minute, "ci"))
	if _, err := v2.VerifyToken(t.Context(), raw2); err != nil {
		t.Fatal(err)
	}
	c2.Add(-time.Minute)
	if _, err := v2.VerifyToken(t.Context(), raw2); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("cached token before its iat: %v", err)
	}
}

func TestVerifierCacheRefusesAlteredTokens(t *testing.T) {
	c := &clock{t: time.Now()}
	key, _ := GenerateKey()
	v, _ := NewVerifier(&VerifierOptions{Now: c.Now}, key.Public())
	raw := sign(t, key, key.ID(), claimsAt(c.Now(), 5*time.Minute, "ci"))
	if _, err := v.VerifyToken(t.Context(), raw); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(raw, ".")
	wider := claimsAt(c.Now(), 5*time.Minute, "ci")
	wider["access"] = []accessEntry{{Type: "repository", Name: "*", Actions: []string{"pull", "push", "delete"}}}
	for name, bad := range map[string]string{
		"claims swapped":   parts[0] + "." + b64(wider) + "." + parts[2],
		"signature zeroed": parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 64)),
		"trailing byte":    raw + "A",
		"truncated":        raw[:len(raw)-1],
	} {
		if id, err := v.VerifyToken(t.Context(), bad); !errors.Is(err, auth.ErrUnauthenticated) {
			t.Errorf("%s: %+v %v", name, id, err)
		}
	}
	if n := v.cache.len(); n != 1 {
		t.Fatalf("cache holds %d tokens, want only the valid one", n)
	}
	// A token signed by a key the verifier does not know is refused even
	// though the verifier has seen valid tokens with the same claims.
	other, _ := GenerateKey()
	if _, err := v.VerifyToken(t.Context(), sign(t, other, key.ID(), claimsAt(c.Now(), 5*time.Minute, "ci"))); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("foreign key: %v", err)
	}
}

func TestVerifierCacheBounded(t *testing.T) {
	c := &clock{t: time.Now()}
	key, _ := GenerateKey()
	const limit = 8 << 10
	v, _ := NewVerifier(&VerifierOptions{Now: c.Now, CacheBytes: limit}, key.Public())
	var toks []string
	for i := range 40 {
		raw := sign(t, key, key.ID(), claimsAt(c.Now(), 5*time.Minute, fmt.Sprintf("user-%d", i)))
		toks = append(toks, raw)
		if _, err := v.VerifyToken(t.Context(), raw); err != nil {
			t.Fatal(err)
		}
		if v.cache.size > limit {
			t.Fatalf("cache holds %d bytes, bound %d", v.cache.size, limit)
		}
	}
	if n := v.cache.len(); n == 0 || n >= 40 {
		t.Fatalf("cache holds %d tokens", n)
	}
	// The most recent token is cached; the first was evicted, and is
	// verified in full again.
	if _, ok := v.cache.items[sha256.Sum256([]byte(toks[39]))]; !ok {
		t.Fatal("the newest token is not cached")
	}
	if _, ok := v.cache.items[sha256.Sum256([]byte(toks[0]))]; ok {
		t.Fatal("the oldest token is still cached")
	}
	if id, err := v.VerifyToken(t.Context(), toks[0]); err != nil || id.Subject != "user-0" {
		t.Fatalf("evicted token: %+v %v", id, err)
	}

	off, _ := NewVerifier(&VerifierOptions{Now: c.Now, CacheBytes: -1}, key.Public())
	if off.cache != nil {
		t.Fatal("negative CacheBytes must disable the cache")
	}
	if id, err := off.VerifyToken(t.Context(), toks[1]); err != nil || id.Subject != "user-1" {
		t.Fatalf("without cache: %+v %v", id, err)
	}
}

func TestVerifierCacheConcurrent(t *testing.T) {
	c := &clock{t: time.Now()}
	key, _ := GenerateKey()
	v, _ := NewVerifier(&VerifierOptions{Now: c.Now, CacheBytes: 4 << 10}, key.Public())
	var toks []string
	for i := range 8 {
		toks = append(toks, sign(t, key, key.ID(), claimsAt(c.Now(), 5*time.Minute, fmt.Sprintf("user-%d", i))))
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				k := (g + i) % len(toks)
				id, err := v.VerifyToken(t.Context(), toks[k])
				if err != nil || id.Subject != fmt.Sprintf("user-%d", k) {
					t.Errorf("token %d: %+v %v", k, id, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkVerifyToken(b *testing.B) {
	key, _ := GenerateKey()
	for _, cache := range []int64{-1, 0} {
		v, _ := NewVerifier(&VerifierOptions{CacheBytes: cache}, key.Public())
		raw := sign(b, key, key.ID(), claimsAt(time.Now(), 5*time.Minute, "ci"))
		b.Run(fmt.Sprintf("cache=%v", cache >= 0), func(b *testing.B) {
			for b.Loop() {
				if _, err := v.VerifyToken(b.Context(), raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
