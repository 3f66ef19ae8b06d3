package sqlmeta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/berth-dev/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

var _ driver.ScanJobs = (*Metadata)(nil)

const scanJobColumns = "id, digest, repository, if_missing, attempts, next_attempt_at, leased_until, last_error, created_at"

func scanScanJob(s scanner) (*driver.ScanJob, error) {
	var (
		j                       driver.ScanJob
		d                       string
		ifMissing               int64
		next, leased, createdAt int64
	)
	if err := s.Scan(&j.ID, &d, &j.Repository, &ifMissing, &j.Attempts, &next, &leased, &j.LastError, &createdAt); err != nil {
		return nil, err
	}
	j.Digest = digest.Digest(d)
	j.IfMissing = ifMissing != 0
	j.NextAttemptAt, j.LeasedUntil, j.CreatedAt = fromNanos(next), fromNanos(leased), fromNanos(createdAt)
	return &j, nil
}

// EnqueueScanJob implements driver.ScanJobs: an insert that does nothing
// on a conflicting digest, then, when it did nothing, the merge of the
// existing job, in one transaction.
func (m *Metadata) EnqueueScanJob(ctx context.Context, j *driver.ScanJob) (bool, error) {
	if j.Repository == "" || j.Digest == "" {
		return false, invalid(fmt.Errorf("scan job needs a repository and a digest: %w", driver.ErrInvalidArgument))
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	created := false
	err := m.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, m.q(`INSERT INTO scan_jobs (digest, repository, if_missing, next_attempt_at, created_at)
VALUES (?, ?, ?, ?, ?) ON CONFLICT (digest) DO NOTHING`),
			string(j.Digest), j.Repository, boolInt(j.IfMissing), nanos(j.NextAttemptAt), nanos(j.CreatedAt))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if created = n == 1; created {
			return nil
		}
		next := nanos(j.NextAttemptAt)
		_, err = tx.ExecContext(ctx, m.q(`UPDATE scan_jobs SET
next_attempt_at = CASE WHEN next_attempt_at > ? THEN ? ELSE next_attempt_at END,
if_missing = CASE WHEN ? = 0 THEN 0 ELSE if_missing END
WHERE digest = ?`), next, next, boolInt(j.IfMissing), string(j.Digest))
		return err
	})
	return created, fail("enqueue scan job", err)
}

// ClaimScanJobs implements driver.ScanJobs. A read finds whether any job
// is due; if one is, as in ClaimEvents, one UPDATE claims the due jobs; on PostgreSQL FOR UPDATE SKIP LOCKED lets
// concurrent claimers take disjoint jobs without waiting, and the
// repeated conditions are re-checked on rows another claimer changed.
func (m *Metadata) ClaimScanJobs(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*driver.ScanJob, error) {
	if err := driver.CheckLimit(limit); err != nil {
		return nil, invalid(err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n := nanos(now)
	// Idle workers poll: look on the reading pool first, so that a poll
	// finding nothing takes no write lock (SQLite) and no row locks.
	var one int
	err := m.readRow(ctx, "SELECT 1 FROM scan_jobs WHERE next_attempt_at <= ? AND leased_until <= ? LIMIT 1", n, n).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return []*driver.ScanJob{}, nil
	}
	if err != nil {
		return nil, fail("claim scan jobs", err)
	}
	lock := ""
	if m.dialect == dialectPostgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	rows, err := m.w.QueryContext(ctx, m.q(`UPDATE scan_jobs SET attempts = attempts + 1, leased_until = ?
WHERE next_attempt_at <= ? AND leased_until <= ? AND id IN (
  SELECT id FROM scan_jobs WHERE next_attempt_at <= ? AND leased_until <= ? ORDER BY next_attempt_at, id LIMIT ?`+lock+`)
RETURNING `+scanJobColumns), nanos(now.Add(lease)), n, n, n, n, limit)
	if err != nil {
		return nil, fail("claim scan jobs", err)
	}
	out, err := collect(rows, scanScanJob)
	if err != nil {
		return nil, fail("claim scan jobs", err)
	}
	slices.SortFunc(out, func(a, b *driver.ScanJob) int {
		if c := a.NextAttemptAt.Compare(b.NextAttemptAt); c != 0 {
			return c
		}
		return int(a.ID - b.ID)
	})
	return out, nil
}

// claimed runs a statement conditional on the claim (id, attempt) being
// current, and classifies a statement that changed nothing.
func (m *Metadata) claimed(ctx context.Context, op string, id int64, attempt int, query string, args ...any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	res, err := m.w.ExecContext(ctx, m.q(query+" WHERE id = ? AND attempts = ? AND leased_until <> 0"), append(args, id, attempt)...)
	if err != nil {
		return fail(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fail(op, err)
	}
	if n == 1 {
		return nil
	}
	var one int
	err = m.w.QueryRowContext(ctx, m.q("SELECT 1 FROM scan_jobs WHERE id = ?"), id).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return notFound(fmt.Sprintf("scan job %d", id))
	case err != nil:
		return fail(op, err)
	}
	return fmt.Errorf("sqlmeta: %s: scan job %d attempt %d is not the current claim: %w", op, id, attempt, driver.ErrConflict)
}

// ExtendScanJob implements driver.ScanJobs.
func (m *Metadata) ExtendScanJob(ctx context.Context, id int64, attempt int, until time.Time) error {
	return m.claimed(ctx, "extend scan job", id, attempt, "UPDATE scan_jobs SET leased_until = ?", nanos(until))
}

// RetryScanJob implements driver.ScanJobs.
func (m *Metadata) RetryScanJob(ctx context.Context, id int64, attempt int, next time.Time, lastError string) error {
	return m.claimed(ctx, "retry scan job", id, attempt, "UPDATE scan_jobs SET leased_until = 0, next_attempt_at = ?, last_error = ?", nanos(next), lastError)
}

// CompleteScanJob implements driver.ScanJobs.
func (m *Metadata) CompleteScanJob(ctx context.Context, id int64, attempt int) error {
	return m.claimed(ctx, "complete scan job", id, attempt, "DELETE FROM scan_jobs")
}
