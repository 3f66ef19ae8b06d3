package sqlmeta

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/berth-dev/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

const blobColumns = "digest, size, parts, encryption, created_at"

// scanner is what *sql.Row and *sql.Rows have in common.
type scanner interface{ Scan(dest ...any) error }

func scanBlob(s scanner) (*driver.Blob, error) {
	var (
		b         driver.Blob
		d         string
		parts     string
		enc       sql.NullString
		createdAt int64
	)
	if err := s.Scan(&d, &b.Size, &parts, &enc, &createdAt); err != nil {
		return nil, err
	}
	b.Digest = digest.Digest(d)
	b.CreatedAt = fromNanos(createdAt)
	if err := decodeJSON(parts, &b.Parts); err != nil {
		return nil, fmt.Errorf("decode parts of blob %s: %w", d, err)
	}
	if enc.Valid {
		b.Encryption = new(driver.Encryption)
		if err := decodeJSON(enc.String, b.Encryption); err != nil {
			return nil, fmt.Errorf("decode encryption of blob %s: %w", d, err)
		}
	}
	return &b, nil
}

// decodeJSON decodes the JSON text s into v. Empty arrays, objects and
// null, the common case for optional fields, leave v as it is without
// running the decoder.
func decodeJSON(s string, v any) error {
	switch s {
	case "[]", "{}", "null":
		return nil
	}
	return json.Unmarshal([]byte(s), v)
}

func encodeJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		// Only record types of our own are encoded: they always marshal.
		panic(err)
	}
	return string(b)
}

func encodeEncryption(e *driver.Encryption) sql.NullString {
	if e == nil {
		return sql.NullString{}
	}
	return sql.NullString{String: encodeJSON(e), Valid: true}
}

func encodeParts(p []driver.Part) string {
	if p == nil {
		p = []driver.Part{}
	}
	return encodeJSON(p)
}

func notFound(what string) error { return fmt.Errorf("sqlmeta: %s: %w", what, driver.ErrNotFound) }

// insertBlob records b unless its digest exists, and returns the stored
// record and whether b is it.
func (m *Metadata) insertBlob(ctx context.Context, q querier, b *driver.Blob) (*driver.Blob, bool, error) {
	// A blob deleted by garbage collection between the insert and the
	// update is inserted again on the next round.
	for {
		res, err := q.ExecContext(ctx, m.q("INSERT INTO blobs ("+blobColumns+") VALUES (?, ?, ?, ?, ?) ON CONFLICT (digest) DO NOTHING"),
			string(b.Digest), b.Size, encodeParts(b.Parts), encodeEncryption(b.Encryption), nanos(b.CreatedAt))
		if err != nil {
			return nil, false, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return nil, false, err
		}
		if n == 1 {
			c := *b
			c.Parts = append([]driver.Part(nil), b.Parts...)
			if b.Encryption != nil {
				e := *b.Encryption
				e.WrappedKey = append([]byte(nil), b.Encryption.WrappedKey...)
				c.Encryption = &e
			}
			return &c, true, nil
		}
		// The blob exists: this write renews it, so that garbage
		// collection's grace period protects it until the writer links it.
		if _, err := q.ExecContext(ctx, m.q("UPDATE blobs SET created_at = ? WHERE digest = ? AND created_at < ?"),
			nanos(b.CreatedAt), string(b.Digest), nanos(b.CreatedAt)); err != nil {
			return nil, false, err
		}
		stored, err := scanBlob(q.QueryRowContext(ctx, m.q("SELECT "+blobColumns+" FROM blobs WHERE digest = ?"), string(b.Digest)))
		if errors.Is(err, sql.ErrNoRows) {
			if err := ctx.Err(); err != nil {
				return nil, false, err
			}
			continue
		}
		if err != nil {
			return nil, false, err
		}
		return stored, false, nil
	}
}

// PutBlob implements driver.Blobs.
func (m *Metadata) PutBlob(ctx context.Context, b *driver.Blob) (*driver.Blob, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	var (
		stored  *driver.Blob
		created bool
	)
	// Outside a transaction the existing row could be deleted between the
	// insert and the select; a transaction makes the pair atomic.
	err := m.tx(ctx, func(tx *sql.Tx) (err error) {
		stored, created, err = m.insertBlob(ctx, tx, b)
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("sqlmeta: put blob %s: %w", b.Digest, err)
	}
	return stored, created, nil
}

// GetBlob implements driver.Blobs.
func (m *Metadata) GetBlob(ctx context.Context, d digest.Digest) (*driver.Blob, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err := scanBlob(m.readRow(ctx, "SELECT "+blobColumns+" FROM blobs WHERE digest = ?", string(d)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("blob " + string(d))
	}
	if err != nil {
		return nil, fmt.Errorf("sqlmeta: get blob %s: %w", d, err)
	}
	return b, nil
}

// DeleteBlob implements driver.Blobs.
func (m *Metadata) DeleteBlob(ctx context.Context, d digest.Digest) (*driver.Blob, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err := scanBlob(m.w.QueryRowContext(ctx, m.q("DELETE FROM blobs WHERE digest = ? RETURNING "+blobColumns), string(d)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("blob " + string(d))
	}
	if err != nil {
		return nil, fmt.Errorf("sqlmeta: delete blob %s: %w", d, err)
	}
	return b, nil
}

// ListBlobs implements driver.Blobs. A negative limit means no limit.
func (m *Metadata) ListBlobs(ctx context.Context, after digest.Digest, limit int) ([]*driver.Blob, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	lim, largs := limitClause(limit)
	rows, err := m.read(ctx, "SELECT "+blobColumns+" FROM blobs WHERE digest > ? ORDER BY digest"+lim, append([]any{string(after)}, largs...)...)
	if err != nil {
		return nil, fmt.Errorf("sqlmeta: list blobs: %w", err)
	}
	out, err := collect(rows, scanBlob)
	if err != nil {
		return nil, fmt.Errorf("sqlmeta: list blobs: %w", err)
	}
	return out, nil
}

// collect scans every row with scan and closes rows. It never returns a
// nil slice without an error.
func collect[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// SetBlobEncryption implements driver.Blobs. The stored record is read
// under the row lock (SELECT … FOR UPDATE on PostgreSQL; the write lock on
// SQLite) and compared field by field with prev, so concurrent rotations
// cannot both succeed.
func (m *Metadata) SetBlobEncryption(ctx context.Context, d digest.Digest, prev, next *driver.Encryption) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	lock := ""
	if m.dialect == dialectPostgres {
		lock = " FOR UPDATE"
	}
	err := m.tx(ctx, func(tx *sql.Tx) error {
		var enc sql.NullString
		err := tx.QueryRowContext(ctx, m.q("SELECT encryption FROM blobs WHERE digest = ?"+lock), string(d)).Scan(&enc)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("blob " + string(d))
		}
		if err != nil {
			return err
		}
		var cur *driver.Encryption
		if enc.Valid {
			cur = new(driver.Encryption)
			if err := decodeJSON(enc.String, cur); err != nil {
				return fmt.Errorf("decode encryption of blob %s: %w", d, err)
			}
		}
		if !sameEncryption(cur, prev) {
			return fmt.Errorf("sqlmeta: blob %s: encryption record changed: %w", d, driver.ErrConflict)
		}
		_, err = tx.ExecContext(ctx, m.q("UPDATE blobs SET encryption = ? WHERE digest = ?"), encodeEncryption(next), string(d))
		return err
	})
	if err != nil && !errors.Is(err, driver.ErrNotFound) && !errors.Is(err, driver.ErrConflict) {
		return fmt.Errorf("sqlmeta: set encryption of blob %s: %w", d, err)
	}
	return err
}

// sameEncryption reports whether a and b name the same wrapped key.
func sameEncryption(a, b *driver.Encryption) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Scheme == b.Scheme && a.KeyID == b.KeyID && string(a.WrappedKey) == string(b.WrappedKey)
}

const uploadColumns = "id, version, received, parts, hashes, encryption, labels, created_at, updated_at"

func scanUpload(s scanner) (*driver.Upload, error) {
	var (
		u                    driver.Upload
		parts, hashes, label string
		enc                  sql.NullString
		createdAt, updatedAt int64
	)
	if err := s.Scan(&u.ID, &u.Version, &u.Offset, &parts, &hashes, &enc, &label, &createdAt, &updatedAt); err != nil {
		return nil, err
	}
	u.CreatedAt, u.UpdatedAt = fromNanos(createdAt), fromNanos(updatedAt)
	if err := decodeJSON(parts, &u.Parts); err != nil {
		return nil, fmt.Errorf("decode parts of upload %s: %w", u.ID, err)
	}
	if err := decodeJSON(hashes, &u.Hashes); err != nil {
		return nil, fmt.Errorf("decode hashes of upload %s: %w", u.ID, err)
	}
	if err := decodeJSON(label, &u.Labels); err != nil {
		return nil, fmt.Errorf("decode labels of upload %s: %w", u.ID, err)
	}
	if enc.Valid {
		u.Encryption = new(driver.Encryption)
		if err := decodeJSON(enc.String, u.Encryption); err != nil {
			return nil, fmt.Errorf("decode encryption of upload %s: %w", u.ID, err)
		}
	}
	return &u, nil
}

func uploadArgs(u *driver.Upload) []any {
	hashes := u.Hashes
	if hashes == nil {
		hashes = []driver.HashState{}
	}
	return []any{u.Version, u.Offset, encodeParts(u.Parts), encodeJSON(hashes), encodeEncryption(u.Encryption),
		encodeJSON(u.Labels), nanos(u.CreatedAt), nanos(u.UpdatedAt)}
}

// CreateUpload implements driver.Uploads.
func (m *Metadata) CreateUpload(ctx context.Context, u *driver.Upload) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	args := append([]any{u.ID}, uploadArgs(u)...)
	res, err := m.w.ExecContext(ctx, m.q("INSERT INTO uploads ("+uploadColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING"), args...)
	if err != nil {
		return fmt.Errorf("sqlmeta: create upload %s: %w", u.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlmeta: create upload %s: %w", u.ID, err)
	} else if n == 0 {
		return fmt.Errorf("sqlmeta: upload %s: %w", u.ID, driver.ErrAlreadyExists)
	}
	return nil
}

// GetUpload implements driver.Uploads.
func (m *Metadata) GetUpload(ctx context.Context, id string) (*driver.Upload, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	u, err := scanUpload(m.readRow(ctx, "SELECT "+uploadColumns+" FROM uploads WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("upload " + id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlmeta: get upload %s: %w", id, err)
	}
	return u, nil
}

// UpdateUpload implements driver.Uploads with one conditional UPDATE.
func (m *Metadata) UpdateUpload(ctx context.Context, u *driver.Upload) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	args := append(uploadArgs(u), u.ID, u.Version-1)
	res, err := m.w.ExecContext(ctx, m.q(`UPDATE uploads SET version = ?, received = ?, parts = ?, hashes = ?, encryption = ?,
labels = ?, created_at = ?, updated_at = ? WHERE id = ? AND version = ?`), args...)
	if err != nil {
		return fmt.Errorf("sqlmeta: update upload %s: %w", u.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlmeta: update upload %s: %w", u.ID, err)
	} else if n == 1 {
		return nil
	}
	return m.uploadMiss(ctx, m.w, u.ID)
}

// uploadMiss explains why a conditional change of upload id matched no
// row: ErrNotFound or ErrConflict.
func (m *Metadata) uploadMiss(ctx context.Context, q querier, id string) error {
	var one int
	err := q.QueryRowContext(ctx, m.q("SELECT 1 FROM uploads WHERE id = ?"), id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return notFound("upload " + id)
	}
	if err != nil {
		return fmt.Errorf("sqlmeta: upload %s: %w", id, err)
	}
	return fmt.Errorf("sqlmeta: upload %s: version changed: %w", id, driver.ErrConflict)
}

// DeleteUpload implements driver.Uploads.
func (m *Metadata) DeleteUpload(ctx context.Context, id string) (*driver.Upload, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	u, err := scanUpload(m.w.QueryRowContext(ctx, m.q("DELETE FROM uploads WHERE id = ? RETURNING "+uploadColumns), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("upload " + id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlmeta: delete upload %s: %w", id, err)
	}
	return u, nil
}

// ListUploads implements driver.Uploads. A negative limit means no limit.
func (m *Metadata) ListUploads(ctx context.Context, olderThan time.Time, limit int) ([]*driver.Upload, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	lim, largs := limitClause(limit)
	rows, err := m.read(ctx, "SELECT "+uploadColumns+" FROM uploads WHERE updated_at < ? ORDER BY updated_at, id"+lim, append([]any{nanos(olderThan)}, largs...)...)
	if err != nil {
		return nil, fmt.Errorf("sqlmeta: list uploads: %w", err)
	}
	out, err := collect(rows, scanUpload)
	if err != nil {
		return nil, fmt.Errorf("sqlmeta: list uploads: %w", err)
	}
	return out, nil
}

// CommitUpload implements driver.Uploads in one transaction.
func (m *Metadata) CommitUpload(ctx context.Context, id string, version int64, b *driver.Blob) (*driver.Blob, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	var (
		stored  *driver.Blob
		created bool
	)
	err := m.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, m.q("DELETE FROM uploads WHERE id = ? AND version = ?"), id, version)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return m.uploadMiss(ctx, tx, id)
		}
		stored, created, err = m.insertBlob(ctx, tx, b)
		return err
	})
	if err != nil {
		if errors.Is(err, driver.ErrNotFound) || errors.Is(err, driver.ErrConflict) {
			return nil, false, err
		}
		return nil, false, fmt.Errorf("sqlmeta: commit upload %s: %w", id, err)
	}
	return stored, created, nil
}
