// Package eventstest has fakes for testing code that publishes events or
// writes access records, and RunSenderTests, the conformance suite every
// events.Sender implementation passes.
//
// # Concurrency
//
// Recorder, Clock and Flaky are safe for concurrent use.
package eventstest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/berth-dev/berth/events"
)

// Recorder is an in-memory events.Sender and events.AccessWriter that
// keeps everything it receives.
type Recorder struct {
	mu      sync.Mutex
	events  []*events.Event
	access  [][]byte
	changed chan struct{}
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{changed: make(chan struct{})} }

func (r *Recorder) notify() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// Send implements events.Sender; it keeps a copy of e.
func (r *Recorder) Send(ctx context.Context, e *events.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c := *e
	c.Data = slices.Clone(e.Data)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, &c)
	r.notify()
	return nil
}

// WriteAccessRecord implements events.AccessWriter; it keeps a copy of
// line.
func (r *Recorder) WriteAccessRecord(ctx context.Context, seq int64, line []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.access = append(r.access, slices.Clone(line))
	r.notify()
	return nil
}

// Events returns the events received so far, in order of arrival.
func (r *Recorder) Events() []*events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// AccessRecords returns the access records received so far, in order of
// arrival, decoded.
func (r *Recorder) AccessRecords() []*events.AccessRecord {
	r.mu.Lock()
	lines := slices.Clone(r.access)
	r.mu.Unlock()
	out := make([]*events.AccessRecord, 0, len(lines))
	for _, l := range lines {
		if rec, err := events.DecodeAccessRecord(l); err == nil {
			out = append(out, rec)
		}
	}
	return out
}

// AccessLines returns the raw access records received so far.
func (r *Recorder) AccessLines() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.access)
}

// WaitEvents waits until at least n events have arrived and returns them,
// or returns ctx's error.
func (r *Recorder) WaitEvents(ctx context.Context, n int) ([]*events.Event, error) {
	for {
		r.mu.Lock()
		if len(r.events) >= n {
			out := slices.Clone(r.events)
			r.mu.Unlock()
			return out, nil
		}
		ch := r.changed
		r.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return r.Events(), ctx.Err()
		}
	}
}

// Reset forgets everything received.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events, r.access = nil, nil
}

// Flaky wraps a Sender and fails while Down is set, or for the first
// FailFirst sends.
type Flaky struct {
	// Next receives the sends that succeed.
	Next events.Sender
	// FailFirst is how many sends fail before any succeeds.
	FailFirst int

	mu    sync.Mutex
	down  bool
	calls int
}

// ErrDown is returned by Flaky while it fails.
var ErrDown = errors.New("eventstest: destination down")

// SetDown makes every send fail (true) or pass through (false).
func (f *Flaky) SetDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

// Calls returns how many sends were attempted.
func (f *Flaky) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// Send implements events.Sender.
func (f *Flaky) Send(ctx context.Context, e *events.Event) error {
	f.mu.Lock()
	f.calls++
	fail := f.down || f.calls <= f.FailFirst
	f.mu.Unlock()
	if fail {
		return ErrDown
	}
	return f.Next.Send(ctx, e)
}

// Clock is a manual events.Clock: time moves only when Advance is called.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

// NewClock returns a Clock stopped at now.
func NewClock(now time.Time) *Clock { return &Clock{now: now} }

// Now implements events.Clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After implements events.Clock.
func (c *Clock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, waiter{at: c.now.Add(d), ch: ch})
	return ch
}

// Advance moves the clock forward by d and fires the timers that are due.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

// Waiters returns how many After channels have not fired yet.
func (c *Clock) Waiters() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}

var (
	_ events.Sender       = (*Recorder)(nil)
	_ events.AccessWriter = (*Recorder)(nil)
	_ events.Sender       = (*Flaky)(nil)
	_ events.Clock        = (*Clock)(nil)
)
