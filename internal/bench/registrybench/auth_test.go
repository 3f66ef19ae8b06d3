package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestTokenFlow checks the client against a registry that challenges with
// Bearer: it fetches a token from the realm with Basic credentials and the
// repository scope, then sends the token.
func TestTokenFlow(t *testing.T) {
	const user, pass, token = "admin", "secret", "tok-123"
	var gotScope, gotService string
	mux := http.NewServeMux()
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != user || p != pass {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		gotScope, gotService = r.URL.Query().Get("scope"), r.URL.Query().Get("service")
		w.Write([]byte(`{"token":"` + token + `","expires_in":300}`))
	})
	mux.HandleFunc("/v2/", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.Header().Set("WWW-Authenticate", `Bearer realm="/token",service="bench-test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ctx := context.Background()
	c, err := newClient(srv.URL, srv.Client().Transport, user, pass, "auto")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.probe(ctx); err != nil {
		t.Fatal(err)
	}
	if c.challenge != "bearer" {
		t.Fatalf("challenge %q", c.challenge)
	}
	if err := c.authorize(ctx, "bench/app"); err != nil {
		t.Fatal(err)
	}
	if gotScope != "repository:bench/app:pull,push" || gotService != "bench-test" {
		t.Fatalf("scope %q service %q", gotScope, gotService)
	}
	resp, err := c.do(ctx, http.MethodGet, srv.URL+"/v2/", nil, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	drain(resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("with token: %s", resp.Status)
	}

	// -auth basic sends Basic even to a Bearer challenge.
	c.authMode = "basic"
	if err := c.authorize(ctx, "bench/app"); err != nil || c.authz[:6] != "Basic " {
		t.Fatalf("basic: %v %q", err, c.authz)
	}
}
