package sqlmeta_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"strconv"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// postgresURL returns the URL of a fresh PostgreSQL database for t, dropped
// when t ends. Without BERTH_TEST_POSTGRES_URL it skips t, except under
// CI=true, where it fails t.
func postgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv("BERTH_TEST_POSTGRES_URL")
	if base == "" {
		msg := "PostgreSQL tests need BERTH_TEST_POSTGRES_URL (a role that may create databases); start the services with: eval \"$(.ci/services start)\""
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatal(msg + " (CI=true: not skipping)")
		}
		t.Skip(msg)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal("BERTH_TEST_POSTGRES_URL is not a URL")
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var b [6]byte
	rand.Read(b[:])
	name := "berth_test_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(context.Background(), "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		admin, err := sql.Open("pgx", base)
		if err != nil {
			t.Error(err)
			return
		}
		defer admin.Close()
		if _, err := admin.ExecContext(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database: %v", err)
		}
	})
	u.Path = "/" + name
	return u.String()
}
