package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/berth-dev/berth/storage/driver"
)

// Clock tells the time and waits. The relay, the webhook sender and the
// rate limiter read time only through it, so tests can drive them.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// After returns a channel that receives once d has passed.
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the Clock of the time package.
type SystemClock struct{}

// Now implements Clock.
func (SystemClock) Now() time.Time { return time.Now() }

// After implements Clock.
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// RelayOptions configures a Relay. The zero value of every field is a safe
// default.
type RelayOptions struct {
	// Source is the CloudEvents source of the events. Default
	// DefaultSource.
	Source string
	// BatchSize is how many outbox entries one claim takes. Default 100.
	BatchSize int
	// Lease is how long a claim lasts: an entry not acknowledged by then
	// is handed out again (to this relay or another). Default 1 minute.
	Lease time.Duration
	// Concurrency bounds the sends in flight. Default 8.
	Concurrency int
	// PollInterval is how long the relay waits when the outbox is empty.
	// Default 1 second.
	PollInterval time.Duration
	// MinBackoff and MaxBackoff bound the wait, doubled (with jitter)
	// after each failed attempt, before a failed send or claim is tried
	// again. Defaults 100 ms and 30 s.
	MinBackoff, MaxBackoff time.Duration
	// Clock drives claims, leases and waits. Default SystemClock.
	Clock Clock
	// Logger receives delivery failures. Default slog.Default().
	Logger *slog.Logger
}

func (o *RelayOptions) validate() error {
	if o.BatchSize < 0 || o.Lease < 0 || o.Concurrency < 0 || o.PollInterval < 0 || o.MinBackoff < 0 || o.MaxBackoff < 0 {
		return errors.New("events: RelayOptions fields must not be negative")
	}
	return nil
}

func (o *RelayOptions) setDefaults() {
	if o.Source == "" {
		o.Source = DefaultSource
	}
	if o.BatchSize == 0 {
		o.BatchSize = 100
	}
	if o.Lease == 0 {
		o.Lease = time.Minute
	}
	if o.Concurrency == 0 {
		o.Concurrency = 8
	}
	if o.PollInterval == 0 {
		o.PollInterval = time.Second
	}
	if o.MinBackoff == 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	if o.Clock == nil {
		o.Clock = SystemClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// String describes the effective options, for start-up logs.
func (o RelayOptions) String() string {
	o.setDefaults()
	return fmt.Sprintf("source=%s batch=%d lease=%s concurrency=%d poll=%s backoff=%s..%s",
		o.Source, o.BatchSize, o.Lease, o.Concurrency, o.PollInterval, o.MinBackoff, o.MaxBackoff)
}

// Relay moves events from an outbox to a Sender: it claims a batch of
// entries with a lease, converts each to a CloudEvent, sends them, and
// acknowledges (removes) those the sender accepted. Delivery is at least
// once: an entry stays in the outbox until acknowledged, so a crash, a
// restart or a sender that is down only delays it.
type Relay struct {
	outbox driver.Outbox
	sender Sender
	opts   RelayOptions

	mu           sync.Mutex
	pending      []*driver.Event // failed sends of the current claim
	pendingUntil time.Time       // when to stop retrying them
}

// NewRelay returns a relay from outbox to sender.
func NewRelay(outbox driver.Outbox, sender Sender, opts *RelayOptions) (*Relay, error) {
	if outbox == nil || sender == nil {
		return nil, errors.New("events: NewRelay needs an outbox and a sender")
	}
	var o RelayOptions
	if opts != nil {
		o = *opts
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	o.setDefaults()
	return &Relay{outbox: outbox, sender: sender, opts: o}, nil
}

// Run relays until ctx is done, then returns nil. Failures to claim, send
// or acknowledge are logged and retried with backoff; they never stop it.
func (r *Relay) Run(ctx context.Context) error {
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		n, err := r.RelayOnce(ctx)
		var wait time.Duration
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			r.opts.Logger.Warn("events: relay", "err", err)
			backoff = r.nextBackoff(backoff)
			wait = backoff
		case n == 0:
			backoff = 0
			wait = r.opts.PollInterval
		default:
			backoff = 0
			continue // more may be waiting
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.opts.Clock.After(wait):
		}
	}
	return nil
}

func (r *Relay) nextBackoff(prev time.Duration) time.Duration {
	next := max(2*prev, r.opts.MinBackoff)
	next = min(next, r.opts.MaxBackoff)
	// Full jitter on the upper half keeps relays of many nodes apart.
	return next/2 + rand.N(next/2+1)
}

// RelayOnce sends one batch and acknowledges what was delivered. The
// batch is the entries of the previous batch whose send failed, while
// their claim lasts (so they are retried promptly and roughly in order),
// or else a fresh claim. It never waits: Run does, with backoff. It
// returns how many entries it acknowledged and, when some were not
// delivered, one of the errors. Concurrent calls are serialized.
func (r *Relay) RelayOnce(ctx context.Context) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.opts.Clock.Now()
	batch := r.pending
	r.pending = nil
	if len(batch) == 0 || !now.Before(r.pendingUntil) {
		var err error
		batch, err = r.outbox.ClaimEvents(ctx, now, r.opts.Lease, r.opts.BatchSize)
		if err != nil {
			return 0, fmt.Errorf("events: claim: %w", err)
		}
		// Leave a margin so that no entry is still being sent when its
		// claim expires and another relay takes it.
		r.pendingUntil = now.Add(r.opts.Lease - r.opts.Lease/5)
	}
	if len(batch) == 0 {
		return 0, nil
	}
	ok, failed, err := r.sendAll(ctx, batch)
	if len(ok) > 0 {
		if aerr := r.outbox.AckEvents(ctx, ok...); aerr != nil {
			// Not acknowledged: they will be delivered again.
			return 0, fmt.Errorf("events: ack: %w", aerr)
		}
	}
	if len(failed) > 0 {
		r.pending = failed
		return len(ok), fmt.Errorf("events: %d of %d events not delivered: %w", len(failed), len(batch), err)
	}
	return len(ok), nil
}

// sendAll sends the entries with bounded concurrency and returns the IDs
// of the delivered ones, the entries that failed and one of the errors.
func (r *Relay) sendAll(ctx context.Context, batch []*driver.Event) (ok []int64, failed []*driver.Event, err error) {
	delivered := make([]bool, len(batch))
	errs := make([]error, len(batch))
	sem := make(chan struct{}, r.opts.Concurrency)
	var wg sync.WaitGroup
	for i, o := range batch {
		if ctx.Err() != nil {
			errs[i] = ctx.Err()
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			e := FromOutbox(r.opts.Source, o)
			if errs[i] = r.sender.Send(ctx, e); errs[i] == nil {
				delivered[i] = true
			}
		})
	}
	wg.Wait()
	for i, o := range batch {
		if delivered[i] {
			ok = append(ok, o.ID)
		} else {
			failed = append(failed, o)
			if err == nil {
				err = errs[i]
			}
		}
	}
	return ok, failed, err
}
