package memmeta

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/berth-dev/berth/storage/driver"
)

var _ driver.ScanJobs = (*Metadata)(nil)

// EnqueueScanJob implements driver.ScanJobs.
func (m *Metadata) EnqueueScanJob(ctx context.Context, j *driver.ScanJob) (bool, error) {
	if j.Repository == "" || j.Digest == "" {
		return false, invalid(fmt.Errorf("scan job needs a repository and a digest: %w", driver.ErrInvalidArgument))
	}
	if err := m.begin(ctx); err != nil {
		return false, err
	}
	defer m.mu.Unlock()
	for _, e := range m.scanJobs {
		if e.Digest == j.Digest {
			if j.NextAttemptAt.Before(e.NextAttemptAt) {
				e.NextAttemptAt = j.NextAttemptAt
			}
			e.IfMissing = e.IfMissing && j.IfMissing
			return false, nil
		}
	}
	m.scanJobID++
	m.scanJobs = append(m.scanJobs, &driver.ScanJob{ID: m.scanJobID, Repository: j.Repository, Digest: j.Digest,
		IfMissing: j.IfMissing, NextAttemptAt: j.NextAttemptAt, CreatedAt: j.CreatedAt})
	return true, nil
}

// ClaimScanJobs implements driver.ScanJobs.
func (m *Metadata) ClaimScanJobs(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*driver.ScanJob, error) {
	if err := driver.CheckLimit(limit); err != nil {
		return nil, invalid(err)
	}
	if err := m.begin(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	var due []*driver.ScanJob
	for _, e := range m.scanJobs {
		if !e.NextAttemptAt.After(now) && !e.LeasedUntil.After(now) {
			due = append(due, e)
		}
	}
	slices.SortFunc(due, func(a, b *driver.ScanJob) int {
		return cmp.Or(a.NextAttemptAt.Compare(b.NextAttemptAt), cmp.Compare(a.ID, b.ID))
	})
	out := []*driver.ScanJob{}
	for _, e := range due[:min(len(due), limit)] {
		e.Attempts++
		e.LeasedUntil = now.Add(lease)
		c := *e
		out = append(out, &c)
	}
	return out, nil
}

// claimed finds the job of a current claim, or classifies its absence.
// The caller holds m.mu.
func (m *Metadata) claimed(op string, id int64, attempt int) (int, error) {
	for i, e := range m.scanJobs {
		if e.ID != id {
			continue
		}
		if e.Attempts != attempt || e.LeasedUntil.IsZero() {
			return -1, fmt.Errorf("memmeta: %s: scan job %d attempt %d is not the current claim: %w", op, id, attempt, driver.ErrConflict)
		}
		return i, nil
	}
	return -1, fmt.Errorf("memmeta: %s: scan job %d: %w", op, id, driver.ErrNotFound)
}

// ExtendScanJob implements driver.ScanJobs.
func (m *Metadata) ExtendScanJob(ctx context.Context, id int64, attempt int, until time.Time) error {
	if err := m.begin(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	i, err := m.claimed("extend scan job", id, attempt)
	if err != nil {
		return err
	}
	m.scanJobs[i].LeasedUntil = until
	return nil
}

// RetryScanJob implements driver.ScanJobs.
func (m *Metadata) RetryScanJob(ctx context.Context, id int64, attempt int, next time.Time, lastError string) error {
	if err := m.begin(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	i, err := m.claimed("retry scan job", id, attempt)
	if err != nil {
		return err
	}
	e := m.scanJobs[i]
	e.LeasedUntil, e.NextAttemptAt, e.LastError = time.Time{}, next, lastError
	return nil
}

// CompleteScanJob implements driver.ScanJobs.
func (m *Metadata) CompleteScanJob(ctx context.Context, id int64, attempt int) error {
	if err := m.begin(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	i, err := m.claimed("complete scan job", id, attempt)
	if err != nil {
		return err
	}
	m.scanJobs = slices.Delete(m.scanJobs, i, i+1)
	return nil
}
