package eventstest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/events"
)

// Harness connects RunSenderTests to one Sender implementation.
type Harness interface {
	// Make returns a fresh sender and a function that returns the next
	// event it delivered (blocking until one arrives or ctx is done).
	// Whatever Make opens is released with t.Cleanup.
	Make(t *testing.T) (s events.Sender, receive func(ctx context.Context) (*events.Event, error))
}

// HarnessFunc adapts a function to Harness.
type HarnessFunc func(t *testing.T) (events.Sender, func(ctx context.Context) (*events.Event, error))

// Make implements Harness.
func (f HarnessFunc) Make(t *testing.T) (events.Sender, func(ctx context.Context) (*events.Event, error)) {
	return f(t)
}

// RecorderHarness is the Harness of Recorder, the reference sender.
var RecorderHarness = HarnessFunc(func(t *testing.T) (events.Sender, func(context.Context) (*events.Event, error)) {
	r := NewRecorder()
	var mu sync.Mutex
	next := 0
	return r, func(ctx context.Context) (*events.Event, error) {
		mu.Lock()
		defer mu.Unlock()
		evs, err := r.WaitEvents(ctx, next+1)
		if err != nil {
			return nil, err
		}
		next++
		return evs[next-1], nil
	}
})

// TestEvent returns a valid event with the given ID and a small payload.
func TestEvent(id string) *events.Event {
	return &events.Event{
		SpecVersion: events.SpecVersion, ID: id, Source: "/berth/test", Type: events.TypeManifestPushed,
		Subject: "team/app@sha256:" + fmt.Sprintf("%064d", 0), Time: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC),
		DataContentType: "application/json",
		Data:            json.RawMessage(`{"repository":"team/app","tag":"v1","size":1234,"note":"<&>"}`),
	}
}

// RunSenderTests checks the contract of events.Sender: what is sent
// arrives intact as a structured-mode CloudEvent, concurrent sends all
// arrive, and a canceled context fails the send.
func RunSenderTests(t *testing.T, h Harness) {
	t.Run("RoundTrip", func(t *testing.T) {
		s, recv := h.Make(t)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		want := TestEvent("1")
		if err := s.Send(ctx, want); err != nil {
			t.Fatalf("Send: %v", err)
		}
		got, err := recv(ctx)
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		if err := got.Validate(); err != nil {
			t.Errorf("received event is not valid: %v", err)
		}
		if got.ID != want.ID || got.Source != want.Source || got.Type != want.Type || got.Subject != want.Subject ||
			!got.Time.Equal(want.Time) || got.DataContentType != want.DataContentType || got.SpecVersion != want.SpecVersion {
			t.Errorf("received %+v, want %+v", got, want)
		}
		if !jsonEqual(got.Data, want.Data) {
			t.Errorf("data %s, want %s", got.Data, want.Data)
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		s, recv := h.Make(t)
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		const n = 50
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				if err := s.Send(ctx, TestEvent(fmt.Sprint(i))); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("Send: %v", err)
		}
		seen := map[string]bool{}
		for len(seen) < n {
			e, err := recv(ctx)
			if err != nil {
				t.Fatalf("received %d distinct events of %d: %v", len(seen), n, err)
			}
			seen[e.ID] = true
		}
	})
	t.Run("Canceled", func(t *testing.T) {
		s, _ := h.Make(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := s.Send(ctx, TestEvent("canceled")); err == nil {
			t.Error("Send with a canceled context succeeded")
		}
	})
}

func jsonEqual(a, b []byte) bool {
	var x, y bytes.Buffer
	if json.Compact(&x, a) != nil || json.Compact(&y, b) != nil {
		return false
	}
	return bytes.Equal(x.Bytes(), y.Bytes())
}
