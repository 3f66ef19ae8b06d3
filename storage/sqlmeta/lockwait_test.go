package sqlmeta_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/berth-dev/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// TestDeadlineWhileLocked checks that a write blocked behind another
// node's transaction gives up when its context expires, promptly and with
// the context's error, and that the backend works normally afterwards.
func TestDeadlineWhileLocked(t *testing.T) {
	t.Parallel()
	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		testDeadlineWhileLocked(t, sqliteFileURL(t))
	})
	t.Run("Postgres", func(t *testing.T) {
		t.Parallel()
		testDeadlineWhileLocked(t, postgresURL(t))
	})
}

func testDeadlineWhileLocked(t *testing.T, url string) {
	ctx := context.Background()
	a, b := openT(t, url), openT(t, url)
	defer a.Close()
	defer b.Close()
	if err := a.CreateRepository(ctx, &driver.Repository{Name: "app", Visibility: driver.Private}); err != nil {
		t.Fatal(err)
	}
	mf := &driver.Manifest{Repository: "app", Digest: digest.FromString("m")}
	if _, err := a.PutManifest(ctx, mf); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SetTag(ctx, &driver.Tag{Repository: "app", Name: "v1", Digest: mf.Digest}); err != nil {
		t.Fatal(err)
	}

	// Node a holds a write transaction that locks the tag.
	var db *sql.DB
	a.As(&db)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "UPDATE tags SET updated_by = 'holder' WHERE name = 'v1'"); err != nil {
		t.Fatal(err)
	}

	tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = b.SetTag(tctx, &driver.Tag{Repository: "app", Name: "v1", Digest: mf.Digest})
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("blocked SetTag gave up after %v, want about the 300ms deadline", took)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("blocked SetTag: error = %v, want one wrapping context.DeadlineExceeded", err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.SetTag(ctx, &driver.Tag{Repository: "app", Name: "v1", Digest: mf.Digest}); err != nil {
		t.Errorf("SetTag after the lock is released: %v", err)
	}
}
