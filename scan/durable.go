package scan

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/berth-dev/berth/storage/driver"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
)

// EventScanCompleted is the type of the outbox event the Pipeline writes
// with every report it stores for a job (Succeeded, Unknown, or Failed
// after the last attempt), in the same transaction as the report: a
// report is never visible without its event, nor the reverse. Its
// subject is "repository@digest" and its data a [CompletedEvent].
const EventScanCompleted = "dev.berth.scan.completed"

// CompletedEvent is the data of an [EventScanCompleted] event: the
// report's outcome and counts. The findings themselves are read from the
// management API (GET /api/v1/repositories/{name}/images/{digest}/vulnerabilities),
// which keeps events small enough for every broker.
type CompletedEvent struct {
	// Repository is the repository the job read the image from; the
	// report applies to every repository holding Digest.
	Repository string `json:"repository"`
	// Digest is the scanned manifest's digest.
	Digest string `json:"digest"`
	// Scanner, DBVersion, Status, Reason, LastScanned and Summary are the
	// report's.
	Scanner     Info      `json:"scanner"`
	DBVersion   string    `json:"dbVersion,omitempty"`
	Status      Status    `json:"status"`
	Reason      string    `json:"reason,omitempty"`
	LastScanned time.Time `json:"lastScanned"`
	Summary     Summary   `json:"summary"`
}

func completedEvent(repo string, r *Report) driver.Event {
	b, _ := json.Marshal(CompletedEvent{Repository: repo, Digest: r.Digest, Scanner: r.Scanner, DBVersion: r.DBVersion,
		Status: r.Status, Reason: r.Reason, LastScanned: r.LastScanned, Summary: r.Summary})
	return driver.Event{Type: EventScanCompleted, Subject: repo + "@" + r.Digest, Data: b, CreatedAt: r.LastScanned}
}

// maxErrorLen bounds the last error stored with a job.
const maxErrorLen = 2048

// Rescan queues a scan of the manifest d in repo, for the management
// API: with a durable queue (driver.ScanJobs) it returns once the job is
// stored, so that an accepted request is never lost; otherwise it queues
// in memory as Enqueue does. The scan runs even if a current report
// exists. ErrClosed after Close.
func (p *Pipeline) Rescan(ctx context.Context, repo string, d v1.Hash) error {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return ErrClosed
	}
	return p.submit(ctx, Job{Repository: repo, Digest: d})
}

// submit queues j: in the durable queue, waiting for the store, or in
// memory.
func (p *Pipeline) submit(ctx context.Context, j Job) error {
	if p.jobs == nil {
		return p.enqueue(j)
	}
	now := p.opts.Now().UTC()
	if _, err := p.jobs.EnqueueScanJob(ctx, &driver.ScanJob{Repository: j.Repository, Digest: digest.Digest(j.Digest.String()),
		IfMissing: j.IfMissing, NextAttemptAt: now, CreatedAt: now}); err != nil {
		return err
	}
	p.wakeWorkers()
	return nil
}

// wakeWorkers tells idle local workers that a job is due, so that they
// claim it now rather than at their next poll.
func (p *Pipeline) wakeWorkers() {
	for range p.opts.Workers {
		select {
		case p.wake <- struct{}{}:
		default:
			return
		}
	}
}

// wakeAfter wakes the local workers after d, when a retry they
// scheduled is due, rather than at their next poll.
func (p *Pipeline) wakeAfter(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		p.mu.Lock()
		delete(p.timers, t)
		p.mu.Unlock()
		p.wakeWorkers()
	})
	p.timers[t] = true
}

// writeLoop stores the jobs that Enqueue, OnPush and OnPull buffered,
// until ctx is done; Close stores what is left.
func (p *Pipeline) writeLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-p.pushes:
			p.write(ctx, j)
		}
	}
}

func (p *Pipeline) write(ctx context.Context, j Job) {
	if err := p.submit(ctx, j); err != nil && ctx.Err() == nil {
		// The next sweep finds the image without a report.
		p.opts.Logger.Warn("scan: storing job", "repository", j.Repository, "digest", j.Digest.String(), "error", err)
	}
}

// flush stores the buffered jobs, for Close.
func (p *Pipeline) flush(ctx context.Context) {
	for {
		select {
		case j := <-p.pushes:
			p.write(ctx, j)
		default:
			return
		}
	}
}

// workDurable claims and runs jobs from the durable queue until ctx is
// done.
func (p *Pipeline) workDurable(ctx context.Context) {
	for {
		js, err := p.jobs.ClaimScanJobs(ctx, p.opts.Now().UTC(), p.opts.Lease, 1)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			p.opts.Logger.Warn("scan: claiming jobs", "error", err)
		}
		if len(js) == 1 {
			p.runClaim(ctx, js[0])
			continue
		}
		t := time.NewTimer(p.opts.PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-p.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// runClaim runs one claimed job, keeps its lease while it runs, and
// completes, retries or gives it up.
func (p *Pipeline) runClaim(ctx context.Context, c *driver.ScanJob) {
	h, err := v1.NewHash(string(c.Digest))
	log := p.opts.Logger.With("repository", c.Repository, "digest", string(c.Digest), "attempt", c.Attempts)
	if err != nil {
		log.Error("scan: dropping a job with an invalid digest", "error", err)
		p.finishClaim(c, log)
		return
	}
	j := Job{Repository: c.Repository, Digest: h, Attempt: c.Attempts - 1, IfMissing: c.IfMissing}
	if c.Attempts > p.opts.MaxAttempts {
		// Earlier attempts never finished (their workers stopped or
		// crashed): give up rather than loop.
		reason := c.LastError
		if reason == "" {
			reason = "scan attempts interrupted"
		}
		p.giveUp(ctx, j, errors.New(reason), log)
		p.finishClaim(c, log)
		return
	}
	sctx, cancel := context.WithCancel(ctx)
	lost := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(max(p.opts.Lease/3, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-sctx.Done():
				return
			case <-t.C:
			}
			err := p.jobs.ExtendScanJob(sctx, c.ID, c.Attempts, p.opts.Now().UTC().Add(p.opts.Lease))
			if errors.Is(err, driver.ErrConflict) || errors.Is(err, driver.ErrNotFound) {
				log.Warn("scan: lease lost; abandoning the attempt", "error", err)
				close(lost)
				cancel()
				return
			}
			if err != nil && sctx.Err() == nil {
				log.Warn("scan: extending lease", "error", err)
			}
		}
	}()
	err = p.run(sctx, j)
	cancel()
	<-done
	select {
	case <-lost:
		return // another worker owns the job now
	default:
	}
	bg, stop := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer stop()
	switch {
	case err == nil:
		p.finishClaim(c, log)
	case ctx.Err() != nil:
		// Closing: hand the job back at once rather than when the lease
		// expires.
		if err := p.jobs.RetryScanJob(bg, c.ID, c.Attempts, p.opts.Now().UTC(), "interrupted by shutdown"); err != nil {
			log.Warn("scan: releasing job", "error", err)
		}
	case errors.Is(err, driver.ErrNotFound):
		log.Info("scan: image gone; job dropped", "error", err)
		p.finishClaim(c, log)
	case c.Attempts >= p.opts.MaxAttempts:
		p.giveUp(bg, j, err, log)
		p.finishClaim(c, log)
	default:
		delay := p.backoff(c.Attempts)
		log.Warn("scan: retrying", "after", delay, "error", err)
		msg := err.Error()
		if len(msg) > maxErrorLen {
			msg = msg[:maxErrorLen]
		}
		if err := p.jobs.RetryScanJob(bg, c.ID, c.Attempts, p.opts.Now().UTC().Add(delay), msg); err != nil {
			log.Warn("scan: scheduling retry", "error", err)
			return
		}
		p.wakeAfter(delay)
	}
}

func (p *Pipeline) finishClaim(c *driver.ScanJob, log interface{ Warn(string, ...any) }) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.jobs.CompleteScanJob(ctx, c.ID, c.Attempts); err != nil {
		log.Warn("scan: completing job", "error", err)
	}
}

// backoff is the delay after the given number of failed attempts.
func (p *Pipeline) backoff(attempts int) time.Duration {
	delay := p.opts.Backoff << (attempts - 1)
	if delay > p.opts.MaxBackoff || delay <= 0 {
		delay = p.opts.MaxBackoff
	}
	return delay
}
