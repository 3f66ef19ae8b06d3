package events_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
	"testing"
	"time"

	"github.com/berth-dev/berth/events"
	"github.com/berth-dev/berth/events/eventstest"
	"github.com/berth-dev/berth/events/natsevents"
	"github.com/berth-dev/berth/internal/testsvc"
	"github.com/berth-dev/berth/storage/driver"
	"github.com/berth-dev/berth/storage/memmeta"
	"github.com/berth-dev/berth/storage/sqlmeta"
	"github.com/nats-io/nats.go"
	"gocloud.dev/pubsub"
	"gocloud.dev/pubsub/mempubsub"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type outbox interface {
	driver.Outbox
	io.Closer
}

// outboxes are the real backends the relay is tested over.
func outboxes(t *testing.T) map[string]func(t *testing.T) outbox {
	return map[string]func(t *testing.T) outbox{
		"memmeta": func(t *testing.T) outbox {
			m := memmeta.New()
			t.Cleanup(func() { _ = m.Close() })
			return m
		},
		"sqlmeta": func(t *testing.T) outbox {
			m, err := sqlmeta.Open(t.Context(), "sqlite://:memory:")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = m.Close() })
			return m
		},
	}
}

func appendN(t *testing.T, o driver.Outbox, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		e, err := events.NewOutboxEvent(events.TypeManifestPushed, fmt.Sprintf("team/app:%d", i), time.Unix(1700000000, 0), map[string]any{"n": i})
		if err != nil {
			t.Fatal(err)
		}
		if err := o.AppendEvents(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
}

// payloads returns the distinct "n" of the events, sorted.
func payloads(t *testing.T, evs []*events.Event) []int {
	t.Helper()
	seen := map[int]bool{}
	for _, e := range evs {
		if err := e.Validate(); err != nil {
			t.Fatal(err)
		}
		var d struct{ N int }
		if err := json.Unmarshal(e.Data, &d); err != nil {
			t.Fatal(err)
		}
		seen[d.N] = true
	}
	var out []int
	for n := range seen {
		out = append(out, n)
	}
	sort.Ints(out)
	return out
}

func wantAll(t *testing.T, got []int, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("got %d distinct events, want %d: %v", len(got), n, got)
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("event %d missing: %v", i, got)
		}
	}
}

func remaining(t *testing.T, o driver.Outbox, now time.Time) int {
	t.Helper()
	evs, err := o.ClaimEvents(t.Context(), now, time.Nanosecond, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return len(evs)
}

// TestRelayBrokerDown: the destination fails while events are appended;
// every event arrives once it is back, and the outbox keeps them until
// then.
func TestRelayBrokerDown(t *testing.T) {
	for name, open := range outboxes(t) {
		t.Run(name, func(t *testing.T) {
			o := open(t)
			rec := eventstest.NewRecorder()
			flaky := &eventstest.Flaky{Next: rec}
			flaky.SetDown(true)
			clock := eventstest.NewClock(time.Unix(1800000000, 0))
			r, err := events.NewRelay(o, flaky, &events.RelayOptions{Clock: clock, Lease: 10 * time.Second, BatchSize: 7, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			appendN(t, o, 0, 20)
			n, err := r.RelayOnce(t.Context())
			if n != 0 || err == nil {
				t.Fatalf("RelayOnce with the destination down = %d, %v", n, err)
			}
			if len(rec.Events()) != 0 {
				t.Fatal("events delivered while down")
			}
			appendN(t, o, 20, 5)
			// Nothing is lost: once the lease expires, everything is there.
			clock.Advance(11 * time.Second)
			if got := remaining(t, o, clock.Now()); got != 25 {
				t.Fatalf("outbox holds %d events, want 25", got)
			}
			clock.Advance(11 * time.Second)
			flaky.SetDown(false)
			for range 10 {
				if _, err := r.RelayOnce(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			wantAll(t, payloads(t, rec.Events()), 25)
			clock.Advance(time.Hour)
			if got := remaining(t, o, clock.Now()); got != 0 {
				t.Fatalf("outbox still holds %d events after delivery", got)
			}
		})
	}
}

// TestRelayRetriesWithinLease: a destination that fails a few times is
// retried with backoff inside one claim, without waiting for the lease.
func TestRelayRetriesWithinLease(t *testing.T) {
	o := memmeta.New()
	defer o.Close()
	rec := eventstest.NewRecorder()
	flaky := &eventstest.Flaky{Next: rec, FailFirst: 3}
	r, err := events.NewRelay(o, flaky, &events.RelayOptions{Lease: time.Minute, BatchSize: 10, Concurrency: 1, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, o, 0, 10)
	appendN(t, o, 10, 10) // a second batch, claimed after the first is done
	n, err := r.RelayOnce(t.Context())
	if err == nil || n != 7 {
		t.Fatalf("RelayOnce = %d, %v; want 7 and an error", n, err)
	}
	// The next call retries the three failures, not a new claim.
	n, err = r.RelayOnce(t.Context())
	if err != nil || n != 3 {
		t.Fatalf("RelayOnce = %d, %v; want the 3 retried", n, err)
	}
	wantAll(t, payloads(t, rec.Events()), 10)
	if n, err := r.RelayOnce(t.Context()); err != nil || n != 10 {
		t.Fatalf("RelayOnce = %d, %v; want the second batch", n, err)
	}
}

// TestRelayRestart: a relay that stops (or dies) after claiming leaves
// unacknowledged events to the next one.
func TestRelayRestart(t *testing.T) {
	for name, open := range outboxes(t) {
		t.Run(name, func(t *testing.T) {
			o := open(t)
			clock := eventstest.NewClock(time.Unix(1800000000, 0))
			appendN(t, o, 0, 30)
			// The first relay claims a batch and dies before acknowledging:
			// its sender blocks until the context is canceled.
			ctx, cancel := context.WithCancel(t.Context())
			started := make(chan struct{}, 100)
			blocked := events.SenderFunc(func(ctx context.Context, e *events.Event) error {
				started <- struct{}{}
				<-ctx.Done()
				return ctx.Err()
			})
			r1, _ := events.NewRelay(o, blocked, &events.RelayOptions{Clock: clock, Lease: 30 * time.Second, BatchSize: 10, Logger: quiet})
			done := make(chan error)
			go func() { done <- r1.Run(ctx) }()
			<-started
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("Run after cancel = %v", err)
			}
			// The second relay gets everything once the first claim expires.
			rec := eventstest.NewRecorder()
			r2, _ := events.NewRelay(o, rec, &events.RelayOptions{Clock: clock, Lease: 30 * time.Second, BatchSize: 10, Logger: quiet})
			clock.Advance(31 * time.Second)
			for range 5 {
				if _, err := r2.RelayOnce(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			wantAll(t, payloads(t, rec.Events()), 30)
		})
	}
}

// TestRelayRunStops: Run returns promptly when its context is canceled,
// also while idle.
func TestRelayRunStops(t *testing.T) {
	o := memmeta.New()
	defer o.Close()
	rec := eventstest.NewRecorder()
	r, _ := events.NewRelay(o, rec, &events.RelayOptions{PollInterval: 5 * time.Millisecond, Logger: quiet})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	appendN(t, o, 0, 3)
	if _, err := rec.WaitEvents(withTimeout(t, 5*time.Second), 3); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}
}

func withTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestRelayMemTopic relays to a mempubsub topic opened by URL.
func TestRelayMemTopic(t *testing.T) {
	ctx := withTimeout(t, 20*time.Second)
	topic := mempubsub.NewTopic()
	defer topic.Shutdown(ctx)
	sub := mempubsub.NewSubscription(topic, time.Minute)
	defer sub.Shutdown(ctx)
	o := memmeta.New()
	defer o.Close()
	r, _ := events.NewRelay(o, events.NewTopicSender(topic), &events.RelayOptions{Logger: quiet})
	appendN(t, o, 0, 12)
	if _, err := r.RelayOnce(ctx); err != nil {
		t.Fatal(err)
	}
	var got []*events.Event
	for range 12 {
		m, err := sub.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		m.Ack()
		if m.Metadata["content-type"] != events.ContentType {
			t.Errorf("content-type %q", m.Metadata["content-type"])
		}
		e, err := events.Unmarshal(m.Body)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
	}
	wantAll(t, payloads(t, got), 12)
}

// TestRelayNATS relays to a real nats-server, first unreachable (a closed
// port), then live: every event arrives after the broker is back.
func TestRelayNATS(t *testing.T) {
	url := testsvc.NATS(t)
	subject := testsvc.Name(t)
	ctx := withTimeout(t, 60*time.Second)

	// A closed port: the broker is down.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "nats://" + ln.Addr().String()
	ln.Close()
	o, err := sqlmeta.Open(ctx, "sqlite://:memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	appendN(t, o, 0, 10)
	if _, err := nats.Connect(deadURL, nats.Timeout(500*time.Millisecond)); err == nil {
		t.Fatal("connected to a closed port")
	}
	// Events keep coming while the broker is unreachable; a relay whose
	// sender cannot connect delivers nothing and loses nothing.
	down := events.SenderFunc(func(ctx context.Context, e *events.Event) error {
		nc, err := nats.Connect(deadURL, nats.Timeout(200*time.Millisecond))
		if err != nil {
			return err
		}
		nc.Close()
		return nil
	})
	clock := eventstest.NewClock(time.Now())
	r0, _ := events.NewRelay(o, down, &events.RelayOptions{Clock: clock, Lease: time.Second, Logger: quiet})
	if n, err := r0.RelayOnce(ctx); err == nil || n != 0 {
		t.Fatalf("relay to a dead broker = %d, %v", n, err)
	}
	appendN(t, o, 10, 10)
	clock.Advance(2 * time.Second)

	// The broker is back.
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := natsevents.OpenSubscription(nc, subject)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Shutdown(ctx)
	topic, err := natsevents.OpenTopic(nc, subject)
	if err != nil {
		t.Fatal(err)
	}
	defer topic.Shutdown(ctx)
	r, _ := events.NewRelay(o, events.NewTopicSender(topic), &events.RelayOptions{Clock: clock, Lease: time.Second, Logger: quiet})
	for range 3 {
		if _, err := r.RelayOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var got []*events.Event
	for range 20 {
		m, err := sub.Receive(ctx)
		if err != nil {
			t.Fatalf("received %d events: %v", len(got), err)
		}
		m.Ack()
		e, err := events.Unmarshal(m.Body)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
	}
	wantAll(t, payloads(t, got), 20)
	clock.Advance(time.Hour)
	if n := remaining(t, o, clock.Now()); n != 0 {
		t.Fatalf("%d events left in the outbox", n)
	}
}

// TestNATSTopicFailsWhileDisconnected: a send to a NATS server that went
// away fails (so the relay keeps the event) instead of being buffered.
func TestNATSTopicFailsWhileDisconnected(t *testing.T) {
	url := testsvc.NATS(t)
	ctx := withTimeout(t, 20*time.Second)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	topic, err := natsevents.OpenTopic(nc, testsvc.Name(t))
	if err != nil {
		t.Fatal(err)
	}
	s := events.NewTopicSender(topic)
	if err := s.Send(ctx, eventstest.TestEvent("1")); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	if err := s.Send(ctx, eventstest.TestEvent("2")); err == nil {
		t.Fatal("send on a closed connection succeeded")
	}
}

// TestSenderConformance runs the conformance suite on every sender.
func TestSenderConformance(t *testing.T) {
	t.Run("Recorder", func(t *testing.T) { eventstest.RunSenderTests(t, eventstest.RecorderHarness) })
	t.Run("TopicSender/mem", func(t *testing.T) {
		eventstest.RunSenderTests(t, eventstest.HarnessFunc(func(t *testing.T) (events.Sender, func(context.Context) (*events.Event, error)) {
			topic := mempubsub.NewTopic()
			sub := mempubsub.NewSubscription(topic, time.Minute)
			t.Cleanup(func() {
				_ = sub.Shutdown(context.Background())
				_ = topic.Shutdown(context.Background())
			})
			return events.NewTopicSender(topic), receiver(sub)
		}))
	})
	t.Run("TopicSender/nats", func(t *testing.T) {
		url := testsvc.NATS(t)
		eventstest.RunSenderTests(t, eventstest.HarnessFunc(func(t *testing.T) (events.Sender, func(context.Context) (*events.Event, error)) {
			nc, err := nats.Connect(url)
			if err != nil {
				t.Fatal(err)
			}
			subject := testsvc.Name(t)
			sub, err := natsevents.OpenSubscription(nc, subject)
			if err != nil {
				t.Fatal(err)
			}
			topic, err := natsevents.OpenTopic(nc, subject)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = sub.Shutdown(context.Background())
				_ = topic.Shutdown(context.Background())
				nc.Close()
			})
			return events.NewTopicSender(topic), receiver(sub)
		}))
	})
}

func receiver(sub *pubsub.Subscription) func(context.Context) (*events.Event, error) {
	return func(ctx context.Context) (*events.Event, error) {
		m, err := sub.Receive(ctx)
		if err != nil {
			return nil, err
		}
		m.Ack()
		return events.Unmarshal(m.Body)
	}
}

// TestOpenPublisherURL opens topics by URL: mem:// and nats://.
func TestOpenPublisherURL(t *testing.T) {
	ctx := withTimeout(t, 20*time.Second)
	// mempubsub keeps topics by name for the whole process: one per run.
	p, err := events.OpenPublisher(ctx, fmt.Sprintf("mem://berth-events-test-%d", time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Send(ctx, eventstest.TestEvent("1")); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := events.OpenPublisher(ctx, "nats://subject?unknown=1"); err == nil {
		t.Error("nats URL with an unknown parameter opened")
	}
	url := testsvc.NATS(t)
	t.Setenv("NATS_SERVER_URL", url)
	p, err = events.OpenPublisher(ctx, "nats://"+testsvc.Name(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	if err := p.Send(ctx, eventstest.TestEvent("2")); err != nil {
		t.Fatal(err)
	}
}
