// Package webhook delivers events to HTTP endpoints: each event is POSTed
// as a structured-mode CloudEvent, signed with HMAC-SHA256, retried with
// exponential backoff and jitter, and handed to a dead-letter handler when
// every attempt failed.
//
//	s, err := webhook.New("https://hooks.example.com/berth", &webhook.Options{
//		Secret: secret,
//		Allow:  webhook.AllowHosts("hooks.example.com"),
//	})
//	relay, err := events.NewRelay(outbox, s, nil)
//
// # Signature
//
// Every request carries
//
//	Berth-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>
//
// Receivers check it with Verify, which also rejects timestamps outside a
// tolerance (replays). Berth-Event-Id repeats the event ID: delivery is at
// least once, so receivers deduplicate on it.
//
// # Delivery
//
// Send enqueues the event on a bounded queue and waits for its outcome:
// a 2xx response is success; 408, 425, 429 and 5xx responses and
// transport errors are retried (honouring Retry-After, up to MaxBackoff);
// other statuses fail at once. When the attempts are exhausted the
// DeadLetter handler receives the event and Send returns its error (nil
// by default, so the outbox entry is acknowledged). A full queue fails
// Send at once with ErrQueueFull, so the relay keeps the event for later:
// memory is bounded by QueueSize events.
//
// # Security
//
// The destination must pass the caller's Allow function (New fails
// otherwise); redirects are never followed, so a destination cannot send
// deliveries elsewhere. The secret never appears in errors or logs, and
// logged URLs lose their query and credentials.
//
// # Concurrency
//
// A Sender is safe for concurrent use; Workers deliveries run at once.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/events"
)

// SignatureHeader is the header carrying the signature.
const SignatureHeader = "Berth-Signature"

// EventIDHeader repeats the event's ID.
const EventIDHeader = "Berth-Event-Id"

// ErrQueueFull is returned by Send when the queue holds QueueSize events.
var ErrQueueFull = errors.New("webhook: queue full")

// ErrClosed is returned by Send after Close.
var ErrClosed = errors.New("webhook: sender closed")

// DeadLetter is an event that could not be delivered.
type DeadLetter struct {
	// Event is the undelivered event.
	Event *events.Event
	// Endpoint is the destination, without query or credentials.
	Endpoint string
	// Attempts is how many deliveries were tried.
	Attempts int
	// LastStatus is the last HTTP status received (0 for none).
	LastStatus int
	// LastError describes the last failure.
	LastError string
	// At is when the sender gave up.
	At time.Time
}

// Options configures a Sender. Secret and Allow are required; the zero
// value of every other field is a safe default.
type Options struct {
	// Secret is the HMAC-SHA256 key; at least 16 bytes.
	Secret []byte
	// Allow decides whether the endpoint may receive events: return an
	// error to refuse it. Required. See AllowHosts.
	Allow func(*url.URL) error
	// Client sends the requests. Default: a client with a 30 s timeout.
	// Its redirect policy is replaced: redirects are never followed.
	Client *http.Client
	// MaxAttempts is how many deliveries are tried before the event is
	// dead-lettered. Default 6.
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the wait between attempts, doubled
	// after each, with jitter. Defaults 500 ms and 30 s.
	MinBackoff, MaxBackoff time.Duration
	// QueueSize bounds the events waiting or in delivery. Default 256.
	QueueSize int
	// Workers is how many deliveries run at once. Default 4.
	Workers int
	// DeadLetter receives events whose attempts are exhausted; its error
	// is Send's. Default: log the event's ID, type and subject at error
	// level and return nil.
	DeadLetter func(ctx context.Context, d *DeadLetter) error
	// Clock times signatures and backoff. Default events.SystemClock.
	Clock events.Clock
	// Logger receives dead letters (by default) and failed attempts.
	// Default slog.Default().
	Logger *slog.Logger
}

// String describes the effective options without the secret.
func (o Options) String() string {
	return fmt.Sprintf("attempts=%d backoff=%s..%s queue=%d workers=%d secret=REDACTED",
		o.MaxAttempts, o.MinBackoff, o.MaxBackoff, o.QueueSize, o.Workers)
}

// AllowHosts returns an Allow function accepting https URLs whose host
// (with the port, if the URL has one, or without) is one of hosts.
func AllowHosts(hosts ...string) func(*url.URL) error {
	return func(u *url.URL) error {
		if u.Scheme != "https" {
			return fmt.Errorf("webhook: %s is not https", redact(u))
		}
		if slices.Contains(hosts, u.Host) || slices.Contains(hosts, u.Hostname()) {
			return nil
		}
		return fmt.Errorf("webhook: host %s is not allowed", u.Host)
	}
}

// Sender delivers events to one endpoint. It implements events.Sender.
type Sender struct {
	endpoint string
	shown    string
	opts     Options
	client   *http.Client
	queue    chan *job

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.RWMutex
	closed bool
}

type job struct {
	e    *events.Event
	done chan error // nil for Enqueue
}

// New returns a Sender to endpoint and starts its workers; Close stops
// them.
func New(endpoint string, opts *Options) (*Sender, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("webhook: the endpoint must be an absolute http(s) URL")
	}
	if len(o.Secret) < 16 {
		return nil, errors.New("webhook: Options.Secret must be at least 16 bytes")
	}
	if o.Allow == nil {
		return nil, errors.New("webhook: Options.Allow is required")
	}
	if err := o.Allow(u); err != nil {
		return nil, fmt.Errorf("webhook: endpoint %s refused: %w", redact(u), err)
	}
	if o.MaxAttempts < 0 || o.MinBackoff < 0 || o.MaxBackoff < 0 || o.QueueSize < 0 || o.Workers < 0 {
		return nil, errors.New("webhook: Options fields must not be negative")
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = 6
	}
	if o.MinBackoff == 0 {
		o.MinBackoff = 500 * time.Millisecond
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = 30 * time.Second
	}
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	if o.QueueSize == 0 {
		o.QueueSize = 256
	}
	if o.Workers == 0 {
		o.Workers = 4
	}
	if o.Clock == nil {
		o.Clock = events.SystemClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Secret = slices.Clone(o.Secret)
	client := &http.Client{Timeout: 30 * time.Second}
	if o.Client != nil {
		c := *o.Client
		client = &c
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	s := &Sender{endpoint: endpoint, shown: redact(u), opts: o, client: client, queue: make(chan *job, o.QueueSize)}
	if o.DeadLetter == nil {
		s.opts.DeadLetter = s.logDeadLetter
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	for range o.Workers {
		s.wg.Go(s.work)
	}
	return s, nil
}

func redact(u *url.URL) string {
	c := *u
	c.RawQuery, c.ForceQuery, c.User, c.Fragment = "", false, nil, ""
	return c.String()
}

func (s *Sender) logDeadLetter(ctx context.Context, d *DeadLetter) error {
	s.opts.Logger.Error("webhook: event not delivered", "endpoint", d.Endpoint, "id", d.Event.ID, "type", d.Event.Type,
		"subject", d.Event.Subject, "attempts", d.Attempts, "status", d.LastStatus, "err", d.LastError)
	return nil
}

// Send implements events.Sender: it queues e and waits until it is
// delivered or dead-lettered, or ctx is done (the delivery then goes on
// in the background).
func (s *Sender) Send(ctx context.Context, e *events.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	j := &job{e: e, done: make(chan error, 1)}
	if err := s.enqueue(j); err != nil {
		return err
	}
	select {
	case err := <-j.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Enqueue queues e and returns at once; its outcome is known only
// through the dead-letter handler.
func (s *Sender) Enqueue(e *events.Event) error { return s.enqueue(&job{e: e}) }

func (s *Sender) enqueue(j *job) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	select {
	case s.queue <- j:
		return nil
	default:
		return ErrQueueFull
	}
}

// Close stops accepting events, abandons waits between attempts, fails
// the queued events' Sends with ErrClosed and waits for the workers.
func (s *Sender) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.queue)
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

func (s *Sender) work() {
	for j := range s.queue {
		var err error
		if s.ctx.Err() != nil {
			err = ErrClosed
		} else {
			err = s.deliver(s.ctx, j.e)
		}
		if j.done != nil {
			j.done <- err
		}
	}
}

// deliver tries e until it is delivered or the attempts are exhausted.
func (s *Sender) deliver(ctx context.Context, e *events.Event) error {
	body, err := e.Marshal()
	if err != nil {
		return err
	}
	var status int
	var lastErr error
	backoff := time.Duration(0)
	attempts := 0
	for attempts < s.opts.MaxAttempts {
		attempts++
		var retryAfter time.Duration
		var permanent bool
		status, retryAfter, permanent, lastErr = s.attempt(ctx, e, body)
		if lastErr == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ErrClosed
		}
		if permanent || attempts == s.opts.MaxAttempts {
			break
		}
		backoff = min(max(2*backoff, s.opts.MinBackoff), s.opts.MaxBackoff)
		wait := backoff/2 + rand.N(backoff/2+1)
		if retryAfter > 0 {
			wait = min(max(wait, retryAfter), s.opts.MaxBackoff)
		}
		s.opts.Logger.Debug("webhook: delivery failed; retrying", "endpoint", s.shown, "id", e.ID, "attempt", attempts, "wait", wait, "err", lastErr)
		select {
		case <-ctx.Done():
			return ErrClosed
		case <-s.opts.Clock.After(wait):
		}
	}
	return s.opts.DeadLetter(ctx, &DeadLetter{Event: e, Endpoint: s.shown, Attempts: attempts, LastStatus: status,
		LastError: lastErr.Error(), At: s.opts.Clock.Now()})
}

// attempt makes one delivery.
func (s *Sender) attempt(ctx context.Context, e *events.Event, body []byte) (status int, retryAfter time.Duration, permanent bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, 0, true, fmt.Errorf("webhook: %s: %w", s.shown, err)
	}
	req.Header.Set("Content-Type", events.ContentType)
	req.Header.Set("User-Agent", "berth-webhook/1")
	req.Header.Set(EventIDHeader, e.ID)
	req.Header.Set(SignatureHeader, Sign(s.opts.Secret, s.opts.Clock.Now(), body))
	resp, err := s.client.Do(req)
	if err != nil {
		// Errors from the client name the URL; keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, 0, false, fmt.Errorf("webhook: post to %s: %w", s.shown, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	status = resp.StatusCode
	if status >= 200 && status < 300 {
		return status, 0, false, nil
	}
	err = fmt.Errorf("webhook: %s answered %d", s.shown, status)
	switch {
	case status == http.StatusRequestTimeout, status == http.StatusTooEarly, status == http.StatusTooManyRequests, status >= 500:
		if secs, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && secs > 0 {
			retryAfter = time.Duration(secs) * time.Second
		}
		return status, retryAfter, false, err
	}
	return status, 0, true, err
}

// Sign returns the signature header value of body sent at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return m.Sum(nil)
}

// ErrSignature is returned by Verify for a missing, malformed, wrong or
// expired signature.
var ErrSignature = errors.New("webhook: invalid signature")

// Verify checks a signature header against body and the secret, and that
// its timestamp is within tolerance of now (default 5 minutes when
// tolerance is 0). Several v1 values are accepted (during a secret
// rotation one matches). The comparison is constant-time.
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if tolerance == 0 {
		tolerance = 5 * time.Minute
	}
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return ErrSignature
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			b, err := hex.DecodeString(v)
			if err != nil {
				return ErrSignature
			}
			sigs = append(sigs, b)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: timestamp outside the tolerance", ErrSignature)
	}
	want := mac(secret, ts, body)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return nil
		}
	}
	return ErrSignature
}

var _ events.Sender = (*Sender)(nil)
