package token_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/auth/authtest"
	"github.com/berth-dev/berth/auth/token"
)

func TestVerifierConformance(t *testing.T) {
	authtest.RunTokenVerifierTests(t, func(t *testing.T) *authtest.TokenHarness {
		issuer := func(t *testing.T, key *token.Key, at time.Time) *token.Service {
			svc, err := token.NewService(key, auth.AuthenticatorFunc(func(*http.Request) (*auth.Identity, error) { return auth.Anonymous, nil }),
				authtest.AllowAll{}, &token.Options{Now: func() time.Time { return at }})
			if err != nil {
				t.Fatal(err)
			}
			return svc
		}
		issue := func(t *testing.T, svc *token.Service, subject string, scopes []auth.Scope) string {
			r, err := svc.Issue(context.Background(), &auth.Identity{Subject: subject}, scopes, false)
			if err != nil {
				t.Fatal(err)
			}
			return r.Token
		}
		key, _ := token.GenerateKey()
		foreign, _ := token.GenerateKey()
		now := time.Now()
		live, old, other := issuer(t, key, now), issuer(t, key, now.Add(-2*time.Hour)), issuer(t, foreign, now)
		return &authtest.TokenHarness{
			Verifier: live.Verifier(),
			Issue: func(t *testing.T, subject string, scopes []auth.Scope, expired bool) string {
				if expired {
					return issue(t, old, subject, scopes)
				}
				return issue(t, live, subject, scopes)
			},
			Foreign: func(t *testing.T, subject string) string { return issue(t, other, subject, nil) },
		}
	})
}
