package driver

import (
	"context"
	"time"

	"github.com/opencontainers/go-digest"
)

// ScanJob is a pending vulnerability scan of one manifest, kept in the
// metadata store so that every registry node sharing it can run it and a
// crashed node's jobs are picked up by others.
//
// There is at most one job per Digest: scan results are keyed by digest
// and shared by every repository holding it, so one scan serves them all.
type ScanJob struct {
	// ID is assigned by the backend when the job is created; it is never
	// reused, so a job completed and enqueued again has a new ID.
	ID int64
	// Repository is a repository holding Digest, to read the image from.
	Repository string
	// Digest is the manifest to scan.
	Digest digest.Digest
	// IfMissing asks to skip the scan when a report exists already (a
	// pull of an image never scanned). It stays set only while every
	// enqueue of the digest asked for it.
	IfMissing bool
	// Attempts counts the claims of the job, the current one included: a
	// claim that never completes (a crashed node) counts too, so that an
	// image that crashes scanners cannot loop for ever.
	Attempts int
	// NextAttemptAt is the earliest time the job may be claimed.
	NextAttemptAt time.Time
	// LeasedUntil is when the current claim expires; zero while the job
	// is not claimed. An expired claim no longer protects the job.
	LeasedUntil time.Time
	// LastError is the error of the last failed attempt, for operators.
	LastError string
	// CreatedAt is when the job was first enqueued.
	CreatedAt time.Time
}

// ScanJobs is a durable queue of scan jobs shared by registry nodes. It
// is an optional upgrade of Registry, found by type assertion
// (scan.Pipeline uses it when its result store implements it).
//
// A claim is identified by the job's ID and its Attempts value after the
// claim: the worker passes both back, and a call for a claim that is no
// longer current (the lease expired and another worker claimed the job,
// or the job was completed) fails with ErrConflict, so that exactly one
// worker decides each job's fate.
//
// Backends store the times callers pass and never read a clock.
type ScanJobs interface {
	// EnqueueScanJob stores a job for j.Digest with j's Repository,
	// IfMissing, NextAttemptAt and CreatedAt (ID, Attempts, LeasedUntil
	// and LastError are ignored) unless one exists, and reports whether
	// it created one. When one exists, nothing else changes except that
	// its NextAttemptAt becomes the earlier of the two and its IfMissing
	// stays set only if j's is set too; a job being run keeps its claim.
	// ErrInvalidArgument if Repository or Digest is empty.
	EnqueueScanJob(ctx context.Context, j *ScanJob) (created bool, err error)
	// ClaimScanJobs claims up to limit jobs (limit at least 1, else
	// ErrInvalidArgument) whose NextAttemptAt is at or before now and
	// that are not claimed or whose claim expired at or before now, in
	// increasing NextAttemptAt then ID order. Each claimed job's Attempts
	// increases by one and its LeasedUntil becomes now+lease; the jobs
	// are returned as stored after the claim. Concurrent claimers (in
	// this process or others) get disjoint jobs. It returns an empty
	// slice when none is due.
	ClaimScanJobs(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*ScanJob, error)
	// ExtendScanJob moves the claim's LeasedUntil to until, for scans
	// running longer than a lease. ErrConflict if the claim is not
	// current, ErrNotFound if the job does not exist.
	ExtendScanJob(ctx context.Context, id int64, attempt int, until time.Time) error
	// RetryScanJob releases the claim after a failed attempt: the job
	// becomes claimable again at next, with lastError recorded and its
	// Attempts kept. ErrConflict if the claim is not current, ErrNotFound
	// if the job does not exist.
	RetryScanJob(ctx context.Context, id int64, attempt int, next time.Time, lastError string) error
	// CompleteScanJob removes the job: it ran (or was given up). Its
	// results are stored separately, before. ErrConflict if the claim is
	// not current, ErrNotFound if the job does not exist.
	CompleteScanJob(ctx context.Context, id int64, attempt int) error
}
