// Package natsevents is a gocloud.dev/pubsub driver for NATS, so that
// events.Relay and events.OpenPublisher can publish to a NATS server with
// a "nats://" URL.
//
// # URLs
//
// Importing the package registers the "nats" scheme with
// pubsub.DefaultURLMux, unless another driver registered it first (such as
// gocloud.dev/pubsub/natspubsub, whose URLs have the same form). A topic
// URL names the subject:
//
//	nats://SUBJECT
//
// The server is taken from the NATS_SERVER_URL environment variable (as
// gocloud's natspubsub does), never from the URL. The URL takes no query
// parameters; unknown ones are errors. Use OpenTopic or URLOpener to
// publish through a connection of your own.
//
// # Delivery
//
// A Send returns only after the server has received the message (a
// publish followed by a flush round trip), and fails while the server is
// unreachable, so the outbox relay keeps the event until the server is
// back. Core NATS delivers to the subscribers present at that moment; use
// a JetStream stream capturing the subject when messages must outlive
// absent subscribers.
//
// # As
//
// Topic.As and Subscription.As accept **nats.Conn; Message.As on received
// messages accepts **nats.Msg.
//
// # Concurrency
//
// Topics and subscriptions are safe for concurrent use, as gocloud
// requires.
//
// # Security
//
// Credentials and TLS are set on the connection (nats.Options) by the
// caller; they never come from a topic URL, and error messages never
// include one.
package natsevents

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"gocloud.dev/gcerrors"
	"gocloud.dev/pubsub"
	"gocloud.dev/pubsub/driver"
)

// Scheme is the URL scheme this package registers.
const Scheme = "nats"

func init() {
	mux := pubsub.DefaultURLMux()
	o := &defaultOpener{}
	if !mux.ValidTopicScheme(Scheme) {
		mux.RegisterTopic(Scheme, o)
	}
	if !mux.ValidSubscriptionScheme(Scheme) {
		mux.RegisterSubscription(Scheme, o)
	}
}

// defaultOpener connects, on first use, to NATS_SERVER_URL; a failed
// connection is tried again on the next open.
type defaultOpener struct {
	mu     sync.Mutex
	opener *URLOpener
}

func (o *defaultOpener) open(u *url.URL) (*URLOpener, error) {
	if _, err := subjectOf(u); err != nil {
		return nil, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.opener != nil {
		return o.opener, nil
	}
	server := os.Getenv("NATS_SERVER_URL")
	if server == "" {
		return nil, errors.New("natsevents: NATS_SERVER_URL is not set")
	}
	nc, err := nats.Connect(server, nats.Name("berth"))
	if err != nil {
		return nil, fmt.Errorf("natsevents: connect to the server in NATS_SERVER_URL: %w", err)
	}
	o.opener = &URLOpener{Connection: nc}
	return o.opener, nil
}

func (o *defaultOpener) OpenTopicURL(ctx context.Context, u *url.URL) (*pubsub.Topic, error) {
	op, err := o.open(u)
	if err != nil {
		return nil, err
	}
	return op.OpenTopicURL(ctx, u)
}

func (o *defaultOpener) OpenSubscriptionURL(ctx context.Context, u *url.URL) (*pubsub.Subscription, error) {
	op, err := o.open(u)
	if err != nil {
		return nil, err
	}
	return op.OpenSubscriptionURL(ctx, u)
}

// URLOpener opens nats:// URLs over a connection the caller owns.
type URLOpener struct {
	// Connection is the NATS connection; required.
	Connection *nats.Conn
}

func subjectOf(u *url.URL) (string, error) {
	if len(u.Query()) > 0 {
		return "", fmt.Errorf("natsevents: %s URL takes no query parameters", Scheme)
	}
	subject := u.Host + u.Path
	if subject == "" {
		return "", fmt.Errorf("natsevents: %s URL names no subject", Scheme)
	}
	return subject, nil
}

// OpenTopicURL opens the topic of the URL's subject.
func (o *URLOpener) OpenTopicURL(ctx context.Context, u *url.URL) (*pubsub.Topic, error) {
	s, err := subjectOf(u)
	if err != nil {
		return nil, err
	}
	return OpenTopic(o.Connection, s)
}

// OpenSubscriptionURL opens a subscription to the URL's subject.
func (o *URLOpener) OpenSubscriptionURL(ctx context.Context, u *url.URL) (*pubsub.Subscription, error) {
	s, err := subjectOf(u)
	if err != nil {
		return nil, err
	}
	return OpenSubscription(o.Connection, s)
}

// OpenTopic returns a topic publishing to subject over nc. Shutting the
// topic down leaves nc open.
func OpenTopic(nc *nats.Conn, subject string) (*pubsub.Topic, error) {
	if nc == nil {
		return nil, errors.New("natsevents: OpenTopic needs a connection")
	}
	if subject == "" {
		return nil, errors.New("natsevents: OpenTopic needs a subject")
	}
	return pubsub.NewTopic(&topic{nc: nc, subject: subject}, nil), nil
}

type topic struct {
	nc      *nats.Conn
	subject string
}

func (t *topic) SendBatch(ctx context.Context, ms []*driver.Message) error {
	if !t.nc.IsConnected() {
		return errNotConnected
	}
	for _, m := range ms {
		msg := nats.NewMsg(t.subject)
		msg.Data = m.Body
		for k, v := range m.Metadata {
			msg.Header.Set(k, v)
		}
		if m.BeforeSend != nil {
			if err := m.BeforeSend(func(i any) bool { return asMsg(msg, i) }); err != nil {
				return err
			}
		}
		if err := t.nc.PublishMsg(msg); err != nil {
			return err
		}
		if m.AfterSend != nil {
			if err := m.AfterSend(func(any) bool { return false }); err != nil {
				return err
			}
		}
	}
	// The flush round trip confirms that the server has read every
	// message published before it.
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, FlushTimeout)
		defer cancel()
	}
	return t.nc.FlushWithContext(ctx)
}

// FlushTimeout bounds the wait for the server's confirmation of a batch
// when the send's context has no deadline.
const FlushTimeout = 10 * time.Second

var errNotConnected = errors.New("natsevents: not connected to the server")

func asMsg(m *nats.Msg, i any) bool {
	if p, ok := i.(**nats.Msg); ok {
		*p = m
		return true
	}
	return false
}

func asConn(nc *nats.Conn, i any) bool {
	if p, ok := i.(**nats.Conn); ok {
		*p = nc
		return true
	}
	return false
}

func (t *topic) IsRetryable(error) bool                 { return false }
func (t *topic) As(i any) bool                          { return asConn(t.nc, i) }
func (t *topic) ErrorAs(error, any) bool                { return false }
func (t *topic) ErrorCode(err error) gcerrors.ErrorCode { return errorCode(err) }
func (t *topic) Close() error                           { return nil }

func errorCode(err error) gcerrors.ErrorCode {
	switch {
	case errors.Is(err, errNotConnected), errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrNoServers),
		errors.Is(err, nats.ErrConnectionReconnecting), errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return gcerrors.Unknown
	case errors.Is(err, nats.ErrBadSubject), errors.Is(err, nats.ErrMaxPayload):
		return gcerrors.InvalidArgument
	}
	return gcerrors.Unknown
}

// OpenSubscription returns a subscription to subject over nc. Messages
// need no acknowledgement (core NATS has none); unsubscribing happens on
// Shutdown, which leaves nc open.
func OpenSubscription(nc *nats.Conn, subject string) (*pubsub.Subscription, error) {
	if nc == nil {
		return nil, errors.New("natsevents: OpenSubscription needs a connection")
	}
	ch := make(chan *nats.Msg, 1024)
	s, err := nc.ChanSubscribe(subject, ch)
	if err != nil {
		return nil, fmt.Errorf("natsevents: subscribe: %w", err)
	}
	// The subscription is in place on the server once this returns.
	if err := nc.Flush(); err != nil {
		_ = s.Unsubscribe()
		return nil, fmt.Errorf("natsevents: subscribe: %w", err)
	}
	return pubsub.NewSubscription(&subscription{nc: nc, s: s, ch: ch}, nil, nil), nil
}

type subscription struct {
	nc *nats.Conn
	s  *nats.Subscription
	ch chan *nats.Msg
}

func (s *subscription) ReceiveBatch(ctx context.Context, max int) ([]*driver.Message, error) {
	var out []*driver.Message
	add := func(m *nats.Msg) {
		md := map[string]string{}
		for k := range m.Header {
			md[k] = m.Header.Get(k)
		}
		out = append(out, &driver.Message{
			Body: m.Data, Metadata: md, AckID: -1, LoggableID: "",
			AsFunc: func(i any) bool { return asMsg(m, i) },
		})
	}
	// Return an empty batch after a short wait so that the portable
	// type can check for shutdown.
	t := time.NewTimer(100 * time.Millisecond)
	defer t.Stop()
	select {
	case m := <-s.ch:
		add(m)
	case <-t.C:
		return nil, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	for len(out) < max {
		select {
		case m := <-s.ch:
			add(m)
		default:
			return out, nil
		}
	}
	return out, nil
}

func (s *subscription) SendAcks(context.Context, []driver.AckID) error  { return nil }
func (s *subscription) CanNack() bool                                   { return false }
func (s *subscription) SendNacks(context.Context, []driver.AckID) error { return nil }
func (s *subscription) IsRetryable(error) bool                          { return false }
func (s *subscription) As(i any) bool                                   { return asConn(s.nc, i) }
func (s *subscription) ErrorAs(error, any) bool                         { return false }
func (s *subscription) ErrorCode(err error) gcerrors.ErrorCode          { return errorCode(err) }
func (s *subscription) Close() error                                    { return s.s.Unsubscribe() }
