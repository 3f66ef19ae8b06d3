package tokens_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/auth/tokens"
	"github.com/berth-dev/berth/storage/sqlmeta"
)

// TestSQLiteBackend runs the token life cycle over the real SQL backend:
// hashes, scopes and times survive the round trip.
func TestSQLiteBackend(t *testing.T) {
	ctx := context.Background()
	meta, err := sqlmeta.Open(ctx, "sqlite://:memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer meta.Close()
	m, err := tokens.New(meta, &tokens.Options{CacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	admin := &auth.Identity{Subject: "admin", Admin: true}
	tok, secret, err := m.Create(ctx, admin, tokens.CreateRequest{Name: "ci", Scopes: []string{"repository:team/**:pull,push", "registry:catalog:*"}, ExpiresIn: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	id, err := m.Verify(ctx, tok.Username, secret)
	if err != nil {
		t.Fatal(err)
	}
	if len(id.Scopes) != 2 || id.Scopes[0].String() != "repository:team/**:pull,push" || !id.ExpiresAt.Equal(tok.ExpiresAt) {
		t.Fatalf("identity %+v", id)
	}
	if _, err := m.Verify(ctx, tok.Username, secret[:len(secret)-1]); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("wrong secret: %v", err)
	}
	got, err := m.Get(ctx, admin, tok.ID)
	if err != nil || got.Name != "ci" || got.RevokedAt != nil {
		t.Fatalf("get: %+v %v", got, err)
	}
	if err := m.Revoke(ctx, admin, tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Verify(ctx, tok.Username, secret); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("revoked: %v", err)
	}
	page, _, err := m.List(ctx, admin, "", 10)
	if err != nil || len(page) != 1 || page[0].RevokedAt == nil {
		t.Fatalf("list: %+v %v", page, err)
	}
}
