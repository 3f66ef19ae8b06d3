package scan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/errcode"
	"github.com/berth-dev/berth/storage/driver"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
)

// Errors of Enqueue, with Berth's error codes (errcode.ResourceExhausted
// and errcode.FailedPrecondition) for the API layer to map.
var (
	// ErrQueueFull is returned by Enqueue when the queue is full. The
	// image is not lost for good: the next rescan sweep finds it without
	// a report and queues it again.
	ErrQueueFull error = &errcode.Error{Code: errcode.ResourceExhausted, Msg: "scan: queue full"}
	// ErrClosed is returned by Enqueue after Close.
	ErrClosed error = &errcode.Error{Code: errcode.FailedPrecondition, Msg: "scan: pipeline closed"}
)

// ImageSource opens the images the Pipeline scans.
type ImageSource interface {
	// Open returns the manifest with digest d in repo as an image, or as
	// an index (exactly one of img and idx is non-nil). It returns an
	// error wrapping driver.ErrNotFound when the manifest does not exist
	// (the job is then dropped, not retried). Safe for concurrent use.
	Open(ctx context.Context, repo string, d v1.Hash) (img v1.Image, idx v1.ImageIndex, err error)
}

// Catalog lists the images that rescans consider; every driver.Registry
// satisfies it.
type Catalog interface {
	ListRepositories(ctx context.Context, after string, limit int) ([]*driver.Repository, bool, error)
	ListManifests(ctx context.Context, repo string, after digest.Digest, limit int) ([]*driver.Manifest, bool, error)
}

// PipelineOptions configure a Pipeline. The zero value of every field is
// safe.
type PipelineOptions struct {
	// Workers is the number of concurrent scans; 0 means 2.
	Workers int
	// QueueSize bounds the jobs waiting for a worker; 0 means 1024.
	QueueSize int
	// MaxAttempts is how many times a job is tried before a Failed report
	// is stored; 0 means 5.
	MaxAttempts int
	// Backoff is the delay before the first retry, doubled for each
	// further one up to MaxBackoff; 0 means 2s and 5m.
	Backoff, MaxBackoff time.Duration
	// RescanWindow: images pushed or pulled within it are rescanned when
	// the vulnerability data changes; 0 means 30 days.
	RescanWindow time.Duration
	// RescanInterval is how often the data version is checked (and how
	// often images without a report are swept up); 0 means 1h.
	RescanInterval time.Duration
	// Jobs persists pending jobs of a single-process pipeline across
	// restarts (see Durability). Leave it nil when the result store
	// implements driver.ScanJobs: the pipeline then keeps its jobs there,
	// shared by every node. When set, it is used even then.
	Jobs JobStore
	// Lease is how long a claimed job of the durable queue stays with
	// its worker without being renewed; the worker renews it every
	// Lease/3 while the scan runs, and a crashed node's jobs are claimed
	// by others once it expires. 0 means 5m.
	Lease time.Duration
	// PollInterval is how often idle workers look for due jobs in the
	// durable queue (jobs queued by this process wake them at once);
	// 0 means 2s.
	PollInterval time.Duration
	// SaveInterval is the least time between two saves to Jobs; 0 means
	// 1s.
	SaveInterval time.Duration
	// Logger receives one record per finished job; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (o *PipelineOptions) validate() error {
	if o.Workers < 0 || o.QueueSize < 0 || o.MaxAttempts < 0 || o.Backoff < 0 || o.MaxBackoff < 0 || o.RescanWindow < 0 || o.RescanInterval < 0 || o.SaveInterval < 0 ||
		o.Lease < 0 || o.PollInterval < 0 {
		return errors.New("scan: negative PipelineOptions field")
	}
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	defd := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	def(&o.Workers, 2)
	def(&o.QueueSize, 1024)
	def(&o.MaxAttempts, 5)
	defd(&o.Backoff, 2*time.Second)
	defd(&o.MaxBackoff, 5*time.Minute)
	defd(&o.RescanWindow, 30*24*time.Hour)
	defd(&o.RescanInterval, time.Hour)
	defd(&o.SaveInterval, time.Second)
	defd(&o.Lease, 5*time.Minute)
	defd(&o.PollInterval, 2*time.Second)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// String describes the effective options, for start-up logs.
func (o *PipelineOptions) String() string {
	return "scan.PipelineOptions{Workers: " + strconv.Itoa(o.Workers) + ", QueueSize: " + strconv.Itoa(o.QueueSize) +
		", MaxAttempts: " + strconv.Itoa(o.MaxAttempts) + ", Backoff: " + o.Backoff.String() + ", MaxBackoff: " + o.MaxBackoff.String() +
		", RescanWindow: " + o.RescanWindow.String() + ", RescanInterval: " + o.RescanInterval.String() +
		", Lease: " + o.Lease.String() + ", PollInterval: " + o.PollInterval.String() + "}"
}

// Job is a pending scan, as a JobStore stores it.
type Job struct {
	// Repository and Digest name the manifest to scan.
	Repository string  `json:"repository"`
	Digest     v1.Hash `json:"digest"`
	// Attempt counts the failed attempts so far.
	Attempt int `json:"attempt,omitempty"`
	// IfMissing skips the scan when a report exists (pull-triggered).
	IfMissing bool `json:"ifMissing,omitempty"`
}

// JobStore persists the Pipeline's pending jobs (queued, running or
// waiting for a retry) so that a restart resumes them. The Pipeline
// saves a snapshot of the whole set after changes, at most once per
// PipelineOptions.SaveInterval and once more on Close, never on the path
// of Enqueue, so that pushes and pulls never wait for it.
//
// FileJobs is the implementation for one process; scantest.Jobs is an
// in-memory fake, and scantest.RunJobStoreTests checks both.
type JobStore interface {
	// SaveJobs replaces the stored set with jobs (possibly empty). It
	// must be atomic: a crash leaves the previous or the new set.
	SaveJobs(ctx context.Context, jobs []Job) error
	// LoadJobs returns the stored set, empty (not an error) when nothing
	// was ever saved, in the order saved.
	LoadJobs(ctx context.Context) ([]Job, error)
}

// Pipeline scans images in the background: pushed images, pulled images
// that have no report yet, and — whenever the scanner's vulnerability
// data version changes — every image pushed or pulled within
// RescanWindow. Results are stored with driver.ScanResults: the report
// (kind driver.ScanReport) and, for scanners implementing Indexer and
// Matcher, the inventory (kind driver.ScanInventory), from which rescans
// match without reading layers again.
//
// # Durability
//
// When the result store implements driver.ScanJobs (storage/sqlmeta and
// storage/memmeta do) and PipelineOptions.Jobs is nil, jobs live in the
// metadata store, shared by every registry node running a Pipeline over
// it: workers claim due jobs with a lease (PipelineOptions.Lease) that
// they renew while scanning, so a crashed node's jobs run elsewhere once
// its leases expire; each claim counts as an attempt, failures are
// retried at increasing NextAttemptAt times, and a job is removed when
// its report is stored or it is given up. Enqueue, OnPush and OnPull
// hand jobs to a bounded buffer (QueueSize) that one goroutine writes to
// the store, so that requests never wait for it; Rescan writes through
// and returns once the job is stored; Close writes what is buffered.
//
// Otherwise the queue is in memory and bounded. With PipelineOptions.Jobs
// set, the pending jobs are saved at most SaveInterval after every change
// and on Close, and reloaded by Start: a crash loses at most the jobs of
// the last SaveInterval (FileJobs suits a single process only). Without
// it, jobs queued or being retried when the process stops are lost.
//
// In every mode Enqueue drops jobs when its buffer is full, and a push is
// queued only after the manifest is committed, so a crash in between
// loses the job. These gaps close at the next sweep (at Start and every
// RescanInterval, when a Catalog is given), which queues every recent
// image lacking a current report: a pushed image is scanned at least
// once within RescanInterval, and a report is never stored for a job
// that did not run.
//
// # Concurrency
//
// Enqueue, OnPush and OnPull never block and may be called from request
// handlers; at most Workers scans run at a time.
type Pipeline struct {
	scanner Scanner
	images  ImageSource
	results driver.ScanResults
	catalog Catalog
	opts    PipelineOptions

	queue  chan Job
	mu     sync.Mutex
	queued map[v1.Hash]bool
	closed bool
	wg     sync.WaitGroup
	stop   context.CancelFunc
	timers map[*time.Timer]bool
	// pending are the jobs queued, running or waiting for a retry;
	// dirty says they changed since the last save.
	pending map[v1.Hash]Job
	dirty   bool

	// jobs is the durable queue, nil in memory mode; pushes buffers the
	// jobs Enqueue hands it, and wake rouses idle workers.
	jobs   driver.ScanJobs
	pushes chan Job
	wake   chan struct{}
}

// NewPipeline returns a Pipeline scanning with s, opening images from
// images and storing results in results. catalog may be nil (no
// rescans); opts may be nil. Call Start to run it. When results
// implements driver.ScanJobs and opts.Jobs is nil, the pipeline's jobs
// are durable and shared (see Durability).
func NewPipeline(s Scanner, images ImageSource, results driver.ScanResults, catalog Catalog, opts *PipelineOptions) (*Pipeline, error) {
	if s == nil || images == nil || results == nil {
		return nil, errors.New("scan: NewPipeline needs a scanner, an image source and a result store")
	}
	p := &Pipeline{scanner: s, images: images, results: results, catalog: catalog, queued: map[v1.Hash]bool{}, timers: map[*time.Timer]bool{}, pending: map[v1.Hash]Job{}}
	if opts != nil {
		p.opts = *opts
	}
	if err := p.opts.validate(); err != nil {
		return nil, err
	}
	p.queue = make(chan Job, p.opts.QueueSize)
	if sj, ok := results.(driver.ScanJobs); ok && p.opts.Jobs == nil {
		p.jobs = sj
		p.pushes = make(chan Job, p.opts.QueueSize)
		p.wake = make(chan struct{}, p.opts.Workers)
	}
	return p, nil
}

// Options returns the effective options, defaults filled in, for
// start-up logs.
func (p *Pipeline) Options() PipelineOptions { return p.opts }

// Durable reports whether the pipeline's jobs live in the result store
// (driver.ScanJobs), shared by every node, rather than in memory.
func (p *Pipeline) Durable() bool { return p.jobs != nil }

// Start runs the workers and the rescan loop until Close or until ctx is
// done.
func (p *Pipeline) Start(ctx context.Context) {
	if p.opts.Jobs != nil {
		jobs, err := p.opts.Jobs.LoadJobs(ctx)
		if err != nil {
			p.opts.Logger.Warn("scan: loading saved jobs", "error", err)
		}
		for _, j := range jobs {
			p.logEnqueue(p.enqueue(j), j.Repository, j.Digest)
		}
	}
	ctx, p.stop = context.WithCancel(ctx)
	if p.opts.Jobs != nil {
		p.wg.Go(func() { p.saveLoop(ctx) })
	}
	if p.jobs != nil {
		p.wg.Go(func() { p.writeLoop(ctx) })
	}
	for range p.opts.Workers {
		if p.jobs != nil {
			p.wg.Go(func() { p.workDurable(ctx) })
		} else {
			p.wg.Go(func() { p.work(ctx) })
		}
	}
	if p.catalog != nil {
		p.wg.Go(func() { p.rescanLoop(ctx) })
	}
}

// Close stops accepting jobs, cancels running scans and waits for the
// workers to return. With a durable queue, buffered jobs are written to
// it and interrupted ones handed back for other workers. Otherwise jobs
// still queued, interrupted or waiting for a retry are saved to
// PipelineOptions.Jobs when it is set, and dropped when not (see
// Durability). Close returns the error of that last save.
func (p *Pipeline) Close() error {
	p.mu.Lock()
	p.closed = true
	for t := range p.timers {
		t.Stop()
	}
	p.mu.Unlock()
	if p.stop != nil {
		p.stop()
	}
	p.wg.Wait()
	if p.jobs != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.flush(ctx)
		return nil
	}
	if p.opts.Jobs != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return p.save(ctx)
	}
	return nil
}

// saveLoop saves the pending jobs when they changed, at most once per
// SaveInterval.
func (p *Pipeline) saveLoop(ctx context.Context) {
	t := time.NewTicker(p.opts.SaveInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := p.save(ctx); err != nil && ctx.Err() == nil {
				p.opts.Logger.Warn("scan: saving jobs", "error", err)
			}
		}
	}
}

// save writes the pending set if it changed since the last save.
func (p *Pipeline) save(ctx context.Context) error {
	p.mu.Lock()
	if !p.dirty {
		p.mu.Unlock()
		return nil
	}
	jobs := make([]Job, 0, len(p.pending))
	for _, j := range p.pending {
		jobs = append(jobs, j)
	}
	p.dirty = false
	p.mu.Unlock()
	slices.SortFunc(jobs, func(a, b Job) int { return strings.Compare(a.Digest.String(), b.Digest.String()) })
	if err := p.opts.Jobs.SaveJobs(ctx, jobs); err != nil {
		p.mu.Lock()
		p.dirty = true
		p.mu.Unlock()
		return fmt.Errorf("scan: saving jobs: %w", err)
	}
	return nil
}

// setPending records j as pending (or, with done, as finished).
func (p *Pipeline) setPending(j Job, done bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if done {
		delete(p.pending, j.Digest)
	} else {
		p.pending[j.Digest] = j
	}
	p.dirty = true
}

// Enqueue queues a scan of the manifest d in repo without waiting. It
// returns ErrQueueFull when the queue (or, with a durable queue, the
// buffer of jobs not yet stored) is full and ErrClosed after Close; a
// digest already queued is not queued twice (the durable queue keeps one
// job per digest).
func (p *Pipeline) Enqueue(repo string, d v1.Hash) error {
	return p.enqueue(Job{Repository: repo, Digest: d})
}

// OnPush queues a scan of a pushed manifest; errors are logged, never
// returned, so that pushes do not depend on scanning.
func (p *Pipeline) OnPush(repo string, d v1.Hash) {
	p.logEnqueue(p.enqueue(Job{Repository: repo, Digest: d}), repo, d)
}

// OnPull queues a scan of a pulled manifest if it has no report yet. It
// never waits: the check for a report happens in the worker.
func (p *Pipeline) OnPull(repo string, d v1.Hash) {
	p.logEnqueue(p.enqueue(Job{Repository: repo, Digest: d, IfMissing: true}), repo, d)
}

func (p *Pipeline) logEnqueue(err error, repo string, d v1.Hash) {
	if err != nil && !errors.Is(err, ErrClosed) {
		p.opts.Logger.Warn("scan: not queued", "repository", repo, "digest", d.String(), "error", err)
	}
}

func (p *Pipeline) enqueue(j Job) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if p.jobs != nil {
		select {
		case p.pushes <- j:
			return nil
		default:
			return ErrQueueFull
		}
	}
	if p.queued[j.Digest] {
		return nil
	}
	select {
	case p.queue <- j:
		p.queued[j.Digest] = true
		p.pending[j.Digest] = j
		p.dirty = true
		return nil
	default:
		return ErrQueueFull
	}
}

func (p *Pipeline) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-p.queue:
			err := p.run(ctx, j)
			p.mu.Lock()
			delete(p.queued, j.Digest)
			p.mu.Unlock()
			switch {
			case err == nil:
				p.setPending(j, true)
			case ctx.Err() == nil:
				p.retry(ctx, j, err)
			}
			// A job interrupted by Close stays pending, to be saved.
		}
	}
}

func (p *Pipeline) retry(ctx context.Context, j Job, err error) {
	j.Attempt++
	log := p.opts.Logger.With("repository", j.Repository, "digest", j.Digest.String(), "attempt", j.Attempt, "error", err)
	if errors.Is(err, driver.ErrNotFound) {
		log.Info("scan: image gone; job dropped")
		p.setPending(j, true)
		return
	}
	if j.Attempt >= p.opts.MaxAttempts {
		defer p.setPending(j, true)
		p.giveUp(ctx, j, err, log)
		return
	}
	delay := p.backoff(j.Attempt)
	log.Warn("scan: retrying", "after", delay)
	p.setPending(j, false)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(delay, func() {
		p.mu.Lock()
		delete(p.timers, t)
		p.mu.Unlock()
		if err := p.enqueue(j); err != nil && !errors.Is(err, ErrClosed) {
			// Queue full: the job is dropped here and left to the
			// next sweep, like any job Enqueue refuses.
			p.logEnqueue(err, j.Repository, j.Digest)
			p.setPending(j, true)
		}
	})
	p.timers[t] = true
}

// giveUp stores a Failed report for j, whose last attempt failed with
// err.
func (p *Pipeline) giveUp(ctx context.Context, j Job, err error, log *slog.Logger) {
	log.Error("scan: giving up", "error", err)
	r := &Report{Scanner: p.scanner.Info(), Digest: j.Digest.String(), Status: StatusFailed,
		Reason: err.Error(), LastScanned: p.opts.Now().UTC()}
	_ = r.Finalize()
	if perr := p.store(ctx, j.Digest, driver.ScanReport, r, r.LastScanned, completedEvent(j.Repository, r)); perr != nil {
		log.Error("scan: storing failed report", "store_error", perr)
	}
}

// run performs one job.
func (p *Pipeline) run(ctx context.Context, j Job) error {
	if j.IfMissing {
		if _, err := p.results.GetScanResult(ctx, digest.Digest(j.Digest.String()), p.scanner.Info().Name, driver.ScanReport); err == nil {
			return nil
		}
	}
	img, idx, err := p.images.Open(ctx, j.Repository, j.Digest)
	if err != nil {
		return err
	}
	start := p.opts.Now()
	var r *Report
	if idx != nil {
		r, err = p.scanIndex(ctx, j, idx)
	} else {
		r, err = p.scanImage(ctx, j, img, j.Digest)
	}
	if err != nil {
		return err
	}
	if err := p.store(ctx, j.Digest, driver.ScanReport, r, r.LastScanned, completedEvent(j.Repository, r)); err != nil {
		return err
	}
	p.opts.Logger.Info("scan: done", "repository", j.Repository, "digest", j.Digest.String(), "status", string(r.Status),
		"vulnerabilities", r.Summary.Total, "critical", r.Summary.Critical, "high", r.Summary.High,
		"duration", p.opts.Now().Sub(start))
	return nil
}

// scanIndex scans and stores every child, and returns a report for the
// index: the union of the children's findings, Failed or Unknown if any
// child is.
func (p *Pipeline) scanIndex(ctx context.Context, j Job, idx v1.ImageIndex) (*Report, error) {
	agg := &Report{Scanner: p.scanner.Info(), Digest: j.Digest.String(), Status: StatusSucceeded}
	err := walkIndex(ctx, idx, 0, func(d v1.Descriptor, img v1.Image) error {
		r, err := p.scanImage(ctx, j, img, d.Digest)
		if err != nil {
			return err
		}
		if err := p.store(ctx, d.Digest, driver.ScanReport, r, r.LastScanned); err != nil {
			return err
		}
		agg.DBVersion = r.DBVersion
		agg.LastScanned = r.LastScanned
		if r.Status != StatusSucceeded && agg.Status == StatusSucceeded {
			agg.Status, agg.Reason = r.Status, d.Digest.String()+": "+r.Reason
		}
		agg.Vulnerabilities = append(agg.Vulnerabilities, r.Vulnerabilities...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if agg.LastScanned.IsZero() {
		agg.Status, agg.Reason, agg.LastScanned = StatusUnknown, "index without images", p.opts.Now().UTC()
	}
	_ = agg.Finalize()
	return agg, nil
}

// scanImage scans one image, through its stored inventory when the
// scanner supports it.
func (p *Pipeline) scanImage(ctx context.Context, j Job, img v1.Image, d v1.Hash) (*Report, error) {
	ix, okI := p.scanner.(Indexer)
	m, okM := p.scanner.(Matcher)
	if !okI || !okM {
		return p.scanner.Scan(ctx, img, &Options{Repository: j.Repository, Digest: d})
	}
	inv, err := p.inventory(ctx, d)
	if err != nil || inv == nil {
		if inv, err = ix.Index(ctx, img); err != nil {
			return nil, err
		}
		inv.Digest = d.String()
		if err := p.store(ctx, d, driver.ScanInventory, inv, p.opts.Now()); err != nil {
			return nil, err
		}
	}
	return m.Match(ctx, inv)
}

// inventory returns the stored inventory of d if it was made by the
// scanner's current indexer version, else nil.
func (p *Pipeline) inventory(ctx context.Context, d v1.Hash) (*Inventory, error) {
	res, err := p.results.GetScanResult(ctx, digest.Digest(d.String()), p.scanner.Info().Name, driver.ScanInventory)
	if err != nil {
		return nil, err
	}
	var inv Inventory
	if err := json.Unmarshal(res.Data, &inv); err != nil || inv.Schema != InventorySchema || inv.Indexer != p.scanner.Info() {
		return nil, nil
	}
	return &inv, nil
}

func (p *Pipeline) store(ctx context.Context, d v1.Hash, kind string, v any, at time.Time, events ...driver.Event) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return p.results.PutScanResult(ctx, &driver.ScanResult{
		Digest: digest.Digest(d.String()), Scanner: p.scanner.Info().Name, Kind: kind, Data: b, ScannedAt: at,
	}, events...)
}

// Report returns the stored report of the manifest d, or a StatusPending
// report when it has not been scanned.
func (p *Pipeline) Report(ctx context.Context, d v1.Hash) (*Report, error) {
	res, err := p.results.GetScanResult(ctx, digest.Digest(d.String()), p.scanner.Info().Name, driver.ScanReport)
	if errors.Is(err, driver.ErrNotFound) {
		r := &Report{Scanner: p.scanner.Info(), Digest: d.String(), Status: StatusPending}
		_ = r.Finalize()
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("scan: reading report of %s: %w", d, err)
	}
	var r Report
	if err := json.Unmarshal(res.Data, &r); err != nil {
		return nil, fmt.Errorf("scan: stored report of %s: %w", d, err)
	}
	return &r, nil
}

func (p *Pipeline) rescanLoop(ctx context.Context) {
	t := time.NewTicker(p.opts.RescanInterval)
	defer t.Stop()
	for {
		if _, err := p.Sweep(ctx); err != nil && ctx.Err() == nil {
			p.opts.Logger.Warn("scan: sweep failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sweep queues every image pushed or pulled within RescanWindow whose
// stored report is missing, Failed, or was made with other vulnerability
// data than the scanner's current version (scanners without DBVersioner:
// missing and Failed reports only). It returns how many jobs it queued, and stops
// early with ErrQueueFull when the queue fills up. The rescan loop calls
// it every RescanInterval; it may also be called directly.
func (p *Pipeline) Sweep(ctx context.Context) (int, error) {
	if p.catalog == nil {
		return 0, errors.New("scan: Sweep needs a Catalog")
	}
	cur := ""
	if dv, ok := p.scanner.(DBVersioner); ok {
		v, err := dv.DBVersion(ctx)
		if err != nil {
			return 0, fmt.Errorf("scan: data version: %w", err)
		}
		cur = v
	}
	since := p.opts.Now().Add(-p.opts.RescanWindow)
	n := 0
	after := ""
	for {
		repos, more, err := p.catalog.ListRepositories(ctx, after, 100)
		if err != nil {
			return n, err
		}
		for _, repo := range repos {
			k, err := p.sweepRepo(ctx, repo.Name, since, cur)
			n += k
			if err != nil {
				return n, err
			}
		}
		if !more || len(repos) == 0 {
			break
		}
		after = repos[len(repos)-1].Name
	}
	return n, nil
}

func (p *Pipeline) sweepRepo(ctx context.Context, repo string, since time.Time, cur string) (int, error) {
	n := 0
	var after digest.Digest
	for {
		ms, more, err := p.catalog.ListManifests(ctx, repo, after, 100)
		if errors.Is(err, driver.ErrNotFound) {
			return n, nil // deleted meanwhile
		}
		if err != nil {
			return n, err
		}
		for _, m := range ms {
			if m.PushedAt.Before(since) && m.LastPulledAt.Before(since) {
				continue
			}
			h, err := v1.NewHash(m.Digest.String())
			if err != nil {
				continue
			}
			r, err := p.Report(ctx, h)
			if err != nil {
				return n, err
			}
			if r.Status != StatusPending && (cur == "" || r.DBVersion == cur) && r.Status != StatusFailed {
				continue
			}
			if err := p.submit(ctx, Job{Repository: repo, Digest: h}); err != nil {
				return n, err
			}
			n++
		}
		if !more || len(ms) == 0 {
			return n, nil
		}
		after = ms[len(ms)-1].Digest
	}
}
