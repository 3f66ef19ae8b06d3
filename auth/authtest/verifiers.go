package authtest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/auth"
)

// TokenVerifier is what RunTokenVerifierTests tests: a bearer.Verifier.
type TokenVerifier interface {
	VerifyToken(ctx context.Context, token string) (*auth.Identity, error)
}

// TokenHarness drives RunTokenVerifierTests.
type TokenHarness struct {
	// Verifier is the verifier under test.
	Verifier TokenVerifier
	// Issue returns a JWS compact token for subject granting scopes that
	// the verifier must accept, or, when expired is set, one that expired
	// long enough ago (an hour or more) to be refused.
	Issue func(t *testing.T, subject string, scopes []auth.Scope, expired bool) string
	// Foreign returns a token like Issue's, signed by a key the verifier
	// does not trust.
	Foreign func(t *testing.T, subject string) string
}

// RunTokenVerifierTests runs the conformance suite of bearer token
// verifiers: genuine tokens yield their subject and exactly their scopes
// (never an unbounded identity); expired, foreign, malformed, unsigned
// ("alg":"none"), re-signed and tampered tokens are errors matching
// auth.ErrUnauthenticated that do not contain the token; and the verifier
// is safe for concurrent use. auth/token's and auth/jwks' verifiers pass
// it.
func RunTokenVerifierTests(t *testing.T, newHarness func(t *testing.T) *TokenHarness) {
	t.Helper()
	scopes := []auth.Scope{
		{Type: auth.TypeRepository, Name: "team/app", Actions: []string{auth.Pull, auth.Push}},
		{Type: auth.TypeRepository, Name: "pub/app", Actions: []string{auth.Pull}},
	}
	t.Run("Genuine", func(t *testing.T) {
		h := newHarness(t)
		id, err := h.Verifier.VerifyToken(context.Background(), h.Issue(t, "alice", scopes, false))
		if err != nil {
			t.Fatalf("genuine token: %v", err)
		}
		if id.Subject != "alice" && !strings.HasSuffix(id.Subject, "alice") {
			t.Errorf("subject %q", id.Subject)
		}
		if id.Admin || id.Scopes == nil || id.Grace {
			t.Errorf("identity %+v: want a scoped, non-admin identity", id)
		}
		if got, want := scopeSet(id.Scopes), scopeSet(scopes); !slices.Equal(got, want) {
			t.Errorf("scopes %v, want %v", got, want)
		}
		id, err = h.Verifier.VerifyToken(context.Background(), h.Issue(t, "bob", nil, false))
		if err != nil {
			t.Fatalf("token without scopes: %v", err)
		}
		if id.Scopes == nil || len(id.Scopes) != 0 || id.Admin {
			t.Errorf("token without scopes: %+v, want empty non-nil Scopes", id)
		}
	})
	t.Run("Rejects", func(t *testing.T) {
		h := newHarness(t)
		good := h.Issue(t, "alice", scopes, false)
		parts := strings.Split(good, ".")
		if len(parts) != 3 {
			t.Fatalf("Issue returned %d parts, want a JWS compact token", len(parts))
		}
		var header, claims map[string]any
		mustJSON(t, parts[0], &header)
		mustJSON(t, parts[1], &claims)
		none := clone(header)
		none["alg"] = "none"
		hs := clone(header)
		hs["alg"] = "HS256"
		widened := clone(claims)
		widened["sub"] = "mallory"
		widened["access"] = []map[string]any{{"type": "repository", "name": "other/app", "actions": []string{"*"}}}
		widened["scope"] = "repository:other/app:*"
		cases := map[string]string{
			"expired":            h.Issue(t, "alice", scopes, true),
			"foreign key":        h.Foreign(t, "alice"),
			"empty":              "",
			"garbage":            "garbage",
			"two parts":          parts[0] + "." + parts[1],
			"alg none":           enc(t, none) + "." + parts[1] + ".",
			"alg none signed":    enc(t, none) + "." + parts[1] + "." + parts[2],
			"HS256":              enc(t, hs) + "." + parts[1] + "." + parts[2],
			"tampered claims":    parts[0] + "." + enc(t, widened) + "." + parts[2],
			"truncated sig":      parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])/2],
			"no signature":       parts[0] + "." + parts[1] + ".",
			"signature of other": parts[0] + "." + parts[1] + "." + strings.Split(h.Issue(t, "alice", nil, false), ".")[2],
		}
		for name, raw := range cases {
			id, err := h.Verifier.VerifyToken(context.Background(), raw)
			if err == nil || id != nil {
				t.Errorf("%s: accepted as %+v", name, id)
				continue
			}
			if !errors.Is(err, auth.ErrUnauthenticated) {
				t.Errorf("%s: %v, want auth.ErrUnauthenticated", name, err)
			}
			if len(raw) > 8 && strings.Contains(err.Error(), raw) {
				t.Errorf("%s: the error contains the token", name)
			}
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		h := newHarness(t)
		good := h.Issue(t, "alice", scopes, false)
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				for j := range 20 {
					raw := good
					if (i+j)%3 == 0 {
						raw = good[:len(good)-2]
					}
					id, err := h.Verifier.VerifyToken(context.Background(), raw)
					if (err == nil) != (raw == good) || (err == nil && id == nil) {
						t.Errorf("concurrent verification: %v", err)
						return
					}
				}
			})
		}
		wg.Wait()
	})
}

func scopeSet(ss []auth.Scope) []string {
	var out []string
	for _, s := range ss {
		a := slices.Clone(s.Actions)
		slices.Sort(a)
		out = append(out, s.Type+":"+s.Name+":"+strings.Join(a, ","))
	}
	slices.Sort(out)
	return out
}

func mustJSON(t *testing.T, part string, v any) {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		t.Fatalf("token part is not base64url: %v", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("token part is not JSON: %v", err)
	}
}

func enc(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func clone(m map[string]any) map[string]any {
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}
