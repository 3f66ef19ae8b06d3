package sqlmeta_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testsvc"
	_ "github.com/jackc/pgx/v5/stdlib"
)

// postgresURL returns the URL of a fresh PostgreSQL database for t, dropped
// when t ends. Without BERTH_TEST_POSTGRES_URL it skips t with a message,
// except under CI=true, where it fails t.
//
// Commits in the test database do not wait for the disk
// (synchronous_commit=off): durability of throwaway data does not matter
// here, and locking and isolation are unchanged.
func postgresURL(t testing.TB) string {
	t.Helper()
	dbURL := testsvc.Postgres(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(context.Background(), "ALTER DATABASE "+strings.TrimPrefix(u.Path, "/")+" SET synchronous_commit = off"); err != nil {
		t.Fatalf("configure test database: %v", err)
	}
	return dbURL
}

// postgresSchemaURL returns a URL for a fresh, empty schema in the database
// at dbURL, selected through the search_path parameter. Creating a schema
// is much faster than creating a database; the schemas go when the
// database is dropped.
func postgresSchemaURL(t testing.TB, dbURL string) string {
	t.Helper()
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var b [8]byte
	rand.Read(b[:])
	name := "s_" + hex.EncodeToString(b[:])
	if _, err := db.ExecContext(context.Background(), "CREATE SCHEMA "+name); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}
