package token_test

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/auth/token"
	"github.com/berth-dev/berth/auth/tokens"
)

// TestRevokedRegistryTokenThroughRegistry: a JWT minted for a registry
// token authorizes requests until the registry token is revoked, and at
// most token.DefaultRevalidateEvery after that, though the JWT itself is
// still valid.
func TestRevokedRegistryTokenThroughRegistry(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	st := newStack(t, clock.Now)
	admin := &auth.Identity{Subject: "admin", Admin: true}
	tok, secret, err := st.toks.Create(t.Context(), admin, tokens.CreateRequest{Name: "ci", Scopes: []string{"repository:team/*:pull,push"}, ExpiresIn: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", st.url+"/token?service=berth&scope=repository:team/app:pull,push", nil)
	req.SetBasicAuth(tok.Username, secret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var r token.Response
	err = json.NewDecoder(res.Body).Decode(&r)
	res.Body.Close()
	if err != nil || r.Token == "" {
		t.Fatalf("token: %d %v", res.StatusCode, err)
	}
	do := func() int {
		t.Helper()
		req, _ := http.NewRequest("POST", st.url+"/v2/team/app/blobs/uploads/", nil)
		req.Header.Set("Authorization", "Bearer "+r.Token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	if code := do(); code != http.StatusAccepted {
		t.Fatalf("with the fresh JWT: %d", code)
	}
	if err := st.toks.Revoke(t.Context(), admin, tok.ID); err != nil {
		t.Fatal(err)
	}
	clock.Add(token.DefaultRevalidateEvery)
	if code := do(); code != http.StatusUnauthorized {
		t.Fatalf("JWT of a revoked registry token after %s: %d", token.DefaultRevalidateEvery, code)
	}
	// The JWT itself has not expired: it is the revocation that refuses it.
	if time.Duration(r.ExpiresIn)*time.Second <= token.DefaultRevalidateEvery {
		t.Fatalf("JWT lifetime %ds is not longer than the revalidation interval", r.ExpiresIn)
	}
}
