package webhook_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/events"
	"github.com/berth-dev/berth/events/eventstest"
	"github.com/berth-dev/berth/events/webhook"
	"github.com/berth-dev/berth/storage/memmeta"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// receiver is a webhook endpoint that checks signatures and keeps the
// events; respond decides each answer (nil: 200).
type receiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	got     []*events.Event
	calls   atomic.Int32
	ch      chan *events.Event
	respond func(n int32, w http.ResponseWriter) bool // true: handled
}

func newReceiver(t *testing.T, respond func(n int32, w http.ResponseWriter) bool) *receiver {
	rc := &receiver{ch: make(chan *events.Event, 1000), respond: respond}
	rc.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := rc.calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify(secret, r.Header.Get(webhook.SignatureHeader), body, time.Now(), 0); err != nil {
			t.Errorf("signature: %v", err)
			w.WriteHeader(401)
			return
		}
		if r.Header.Get("Content-Type") != events.ContentType || r.Method != "POST" {
			t.Errorf("request %s %s", r.Method, r.Header.Get("Content-Type"))
		}
		if rc.respond != nil && rc.respond(n, w) {
			return
		}
		e, err := events.Unmarshal(body)
		if err != nil {
			t.Errorf("body: %v", err)
			w.WriteHeader(400)
			return
		}
		if r.Header.Get(webhook.EventIDHeader) != e.ID {
			t.Errorf("event ID header %q, body %q", r.Header.Get(webhook.EventIDHeader), e.ID)
		}
		rc.ch <- e
		w.WriteHeader(204)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) sender(t *testing.T, o *webhook.Options) *webhook.Sender {
	t.Helper()
	var opts webhook.Options
	if o != nil {
		opts = *o
	}
	u, _ := url.Parse(rc.srv.URL)
	opts.Secret = secret
	opts.Allow = webhook.AllowHosts(u.Host)
	opts.Client = rc.srv.Client()
	if opts.MinBackoff == 0 {
		opts.MinBackoff, opts.MaxBackoff = time.Millisecond, 5*time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	s, err := webhook.New(rc.srv.URL+"/hook?token=x", &opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	eventstest.RunSenderTests(t, eventstest.HarnessFunc(func(t *testing.T) (events.Sender, func(context.Context) (*events.Event, error)) {
		rc := newReceiver(t, nil)
		return rc.sender(t, nil), func(ctx context.Context) (*events.Event, error) {
			select {
			case e := <-rc.ch:
				return e, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}))
}

func TestRetryThenDeliver(t *testing.T) {
	rc := newReceiver(t, func(n int32, w http.ResponseWriter) bool {
		switch n {
		case 1:
			w.WriteHeader(503)
		case 2:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(429)
		default:
			return false
		}
		return true
	})
	s := rc.sender(t, nil)
	if err := s.Send(t.Context(), eventstest.TestEvent("7")); err != nil {
		t.Fatal(err)
	}
	if n := rc.calls.Load(); n != 3 {
		t.Fatalf("%d attempts, want 3", n)
	}
}

func TestDeadLetter(t *testing.T) {
	for _, c := range []struct {
		name     string
		status   int
		attempts int
	}{
		{"server errors", 500, 3},
		{"rejected", 400, 1},
		{"redirect not followed", 302, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			var elsewhere atomic.Bool
			other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Store(true) }))
			defer other.Close()
			rc := newReceiver(t, func(n int32, w http.ResponseWriter) bool {
				if c.status == 302 {
					w.Header().Set("Location", other.URL)
				}
				w.WriteHeader(c.status)
				return true
			})
			var dead []*webhook.DeadLetter
			var mu sync.Mutex
			s := rc.sender(t, &webhook.Options{MaxAttempts: 3, DeadLetter: func(ctx context.Context, d *webhook.DeadLetter) error {
				mu.Lock()
				defer mu.Unlock()
				dead = append(dead, d)
				return nil
			}})
			if err := s.Send(t.Context(), eventstest.TestEvent("9")); err != nil {
				t.Fatalf("Send = %v; a dead-lettered event is handled", err)
			}
			if len(dead) != 1 || dead[0].Attempts != c.attempts || dead[0].LastStatus != c.status || dead[0].Event.ID != "9" {
				t.Fatalf("dead letters %+v", dead)
			}
			if strings.Contains(dead[0].Endpoint, "token") || strings.Contains(dead[0].LastError, "token=x") {
				t.Errorf("query in the dead letter: %+v", dead[0])
			}
			if elsewhere.Load() {
				t.Error("redirect followed")
			}
		})
	}
}

// TestDeadLetterErrorKeepsEvent: when the dead-letter handler fails, so
// does Send, and the relay keeps the event in the outbox.
func TestDeadLetterErrorKeepsEvent(t *testing.T) {
	rc := newReceiver(t, func(int32, http.ResponseWriter) bool { return false })
	down := atomic.Bool{}
	down.Store(true)
	rc.respond = func(n int32, w http.ResponseWriter) bool {
		if down.Load() {
			w.WriteHeader(503)
			return true
		}
		return false
	}
	s := rc.sender(t, &webhook.Options{MaxAttempts: 2, DeadLetter: func(context.Context, *webhook.DeadLetter) error {
		return errors.New("no dead-letter store")
	}})
	o := memmeta.New()
	defer o.Close()
	clock := eventstest.NewClock(time.Unix(1800000000, 0))
	relay, _ := events.NewRelay(o, s, &events.RelayOptions{Clock: clock, Lease: time.Second, Logger: quiet})
	e, _ := events.NewOutboxEvent(events.TypeTagCreated, "a:v1", time.Now(), map[string]string{"tag": "v1"})
	if err := o.AppendEvents(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	if n, err := relay.RelayOnce(t.Context()); n != 0 || err == nil {
		t.Fatalf("RelayOnce while down = %d, %v", n, err)
	}
	down.Store(false)
	clock.Advance(2 * time.Second)
	if n, err := relay.RelayOnce(t.Context()); n != 1 || err != nil {
		t.Fatalf("RelayOnce after recovery = %d, %v", n, err)
	}
	if got := <-rc.ch; got.Type != events.TypeTagCreated || got.Subject != "a:v1" {
		t.Fatalf("delivered %+v", got)
	}
}

func TestQueueBounded(t *testing.T) {
	release := make(chan struct{})
	rc := newReceiver(t, func(int32, http.ResponseWriter) bool {
		<-release
		return false
	})
	s := rc.sender(t, &webhook.Options{QueueSize: 1, Workers: 1})
	defer close(release)
	// One in delivery (taken by the worker), one queued, then full.
	if err := s.Enqueue(eventstest.TestEvent("1")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for rc.calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if err := s.Enqueue(eventstest.TestEvent("2")); err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue(eventstest.TestEvent("3")); !errors.Is(err, webhook.ErrQueueFull) {
		t.Fatalf("third Enqueue = %v, want ErrQueueFull", err)
	}
	if err := s.Send(t.Context(), eventstest.TestEvent("4")); !errors.Is(err, webhook.ErrQueueFull) {
		t.Fatalf("Send on a full queue = %v", err)
	}
}

func TestNewChecks(t *testing.T) {
	allow := webhook.AllowHosts("hooks.example.com")
	for _, c := range []struct {
		name, url string
		opts      webhook.Options
	}{
		{"no allow", "https://hooks.example.com/", webhook.Options{Secret: secret}},
		{"not allowed", "https://evil.example.com/", webhook.Options{Secret: secret, Allow: allow}},
		{"not https", "http://hooks.example.com/", webhook.Options{Secret: secret, Allow: allow}},
		{"short secret", "https://hooks.example.com/", webhook.Options{Secret: []byte("short"), Allow: allow}},
		{"relative", "/hook", webhook.Options{Secret: secret, Allow: allow}},
	} {
		if s, err := webhook.New(c.url, &c.opts); err == nil {
			s.Close()
			t.Errorf("%s: New succeeded", c.name)
		} else if strings.Contains(err.Error(), string(secret)) {
			t.Errorf("%s: secret in the error", c.name)
		}
	}
	s, err := webhook.New("https://hooks.example.com/x", &webhook.Options{Secret: secret, Allow: allow})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := s.Send(context.Background(), eventstest.TestEvent("1")); !errors.Is(err, webhook.ErrClosed) {
		t.Fatalf("Send after Close = %v", err)
	}
}

func TestVerify(t *testing.T) {
	now := time.Unix(1800000000, 0)
	body := []byte(`{"id":"1"}`)
	h := webhook.Sign(secret, now, body)
	if !strings.HasPrefix(h, "t=1800000000,v1=") {
		t.Fatalf("header %q", h)
	}
	if err := webhook.Verify(secret, h, body, now.Add(time.Minute), 0); err != nil {
		t.Fatal(err)
	}
	other := []byte("another secret, rotated in.....")
	for name, err := range map[string]error{
		"tampered body":    webhook.Verify(secret, h, []byte(`{"id":"2"}`), now, 0),
		"wrong secret":     webhook.Verify(other, h, body, now, 0),
		"too old":          webhook.Verify(secret, h, body, now.Add(10*time.Minute), 0),
		"from the future":  webhook.Verify(secret, h, body, now.Add(-10*time.Minute), 0),
		"no signature":     webhook.Verify(secret, "t=1800000000", body, now, 0),
		"garbage":          webhook.Verify(secret, "nonsense", body, now, 0),
		"changed time":     webhook.Verify(secret, strings.Replace(h, "t=1800000000", "t=1800000001", 1), body, now, 0),
		"bad hex":          webhook.Verify(secret, "t=1800000000,v1=zz", body, now, 0),
		"empty header":     webhook.Verify(secret, "", body, now, 0),
		"tolerance honour": webhook.Verify(secret, h, body, now.Add(2*time.Second), time.Second),
	} {
		if !errors.Is(err, webhook.ErrSignature) {
			t.Errorf("%s: Verify = %v, want ErrSignature", name, err)
		}
	}
	// Rotation: a header with two signatures verifies with either secret.
	h2 := h + ",v1=" + strings.TrimPrefix(webhook.Sign(other, now, body), "t=1800000000,v1=")
	if webhook.Verify(secret, h2, body, now, 0) != nil || webhook.Verify(other, h2, body, now, 0) != nil {
		t.Error("rotation header not accepted")
	}
}
