package events

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"gocloud.dev/pubsub"
)

// Sender delivers events to one destination. It is the interface that
// publishers implement: a gocloud.dev/pubsub topic (TopicSender), a
// webhook (events/webhook), a test recorder (eventstest.Recorder).
type Sender interface {
	// Send delivers e and returns nil only when the destination has
	// accepted it (at-least-once: a nil error lets the relay acknowledge
	// the outbox entry). Send may be called concurrently; it must not
	// modify e, and it returns ctx's error promptly when ctx is done. An
	// error means e may or may not have been delivered: it is sent again
	// later, with the same ID.
	Send(ctx context.Context, e *Event) error
}

// SenderFunc adapts a function to Sender.
type SenderFunc func(ctx context.Context, e *Event) error

// Send implements Sender.
func (f SenderFunc) Send(ctx context.Context, e *Event) error { return f(ctx, e) }

// Publisher fans events out to several senders. A Send succeeds when
// every sender accepted the event; when one fails, the event is sent to
// all of them again later, so a sender may see an event more than once.
type Publisher struct {
	senders []Sender
	closers []func(context.Context) error
}

// NewPublisher returns a Publisher sending to senders (nil ones are
// skipped).
func NewPublisher(senders ...Sender) *Publisher {
	p := &Publisher{}
	for _, s := range senders {
		if s != nil {
			p.senders = append(p.senders, s)
		}
	}
	return p
}

// OpenPublisher opens a Publisher over the gocloud.dev/pubsub topics at
// urls (mem://, nats:// with events/natsevents imported, or any scheme
// registered with pubsub.DefaultURLMux). Close shuts the topics down.
func OpenPublisher(ctx context.Context, urls ...string) (*Publisher, error) {
	p := &Publisher{}
	for _, u := range urls {
		t, err := OpenTopic(ctx, u)
		if err != nil {
			_ = p.Close(ctx)
			return nil, err
		}
		p.Add(t)
		p.closers = append(p.closers, t.Close)
	}
	return p, nil
}

// Add adds a sender. Call it before the publisher is in use.
func (p *Publisher) Add(s Sender) {
	if s != nil {
		p.senders = append(p.senders, s)
	}
}

// Send implements Sender: it sends e to every sender, concurrently when
// there are several, and returns their errors joined.
func (p *Publisher) Send(ctx context.Context, e *Event) error {
	switch len(p.senders) {
	case 0:
		return nil
	case 1:
		return p.senders[0].Send(ctx, e)
	}
	errs := make([]error, len(p.senders))
	done := make(chan struct{}, len(p.senders))
	for i, s := range p.senders {
		go func() {
			errs[i] = s.Send(ctx, e)
			done <- struct{}{}
		}()
	}
	for range p.senders {
		<-done
	}
	return errors.Join(errs...)
}

// Close shuts down what OpenPublisher opened.
func (p *Publisher) Close(ctx context.Context) error {
	var errs []error
	for _, c := range p.closers {
		errs = append(errs, c(ctx))
	}
	p.closers = nil
	return errors.Join(errs...)
}

// TopicSender sends events to a gocloud.dev/pubsub topic, one message per
// event: the body is the structured-mode JSON (ContentType) and the
// metadata carries content-type, ce-id, ce-type and ce-source for routing
// without decoding the body.
type TopicSender struct {
	t   *pubsub.Topic
	own bool
}

// NewTopicSender returns a sender to t. The caller keeps ownership of t.
func NewTopicSender(t *pubsub.Topic) *TopicSender { return &TopicSender{t: t} }

// OpenTopic opens the topic at a gocloud.dev/pubsub URL through
// pubsub.DefaultURLMux. Close shuts it down.
func OpenTopic(ctx context.Context, rawURL string) (*TopicSender, error) {
	t, err := pubsub.OpenTopic(ctx, rawURL)
	if err != nil {
		return nil, fmt.Errorf("events: open topic %s: %w", RedactURL(rawURL), err)
	}
	return &TopicSender{t: t, own: true}, nil
}

// Send implements Sender.
func (s *TopicSender) Send(ctx context.Context, e *Event) error {
	b, err := e.Marshal()
	if err != nil {
		return err
	}
	md := map[string]string{"content-type": ContentType, "ce-id": e.ID, "ce-type": e.Type, "ce-source": e.Source}
	if err := s.t.Send(ctx, &pubsub.Message{Body: b, Metadata: md}); err != nil {
		return fmt.Errorf("events: send %s %s: %w", e.Type, e.ID, err)
	}
	return nil
}

// Topic returns the underlying topic.
func (s *TopicSender) Topic() *pubsub.Topic { return s.t }

// Close shuts the topic down if OpenTopic opened it.
func (s *TopicSender) Close(ctx context.Context) error {
	if !s.own {
		return nil
	}
	return s.t.Shutdown(ctx)
}

// RedactURL removes the password and the query of a URL, for messages.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparseable URL>"
	}
	u.RawQuery = ""
	u.ForceQuery = false
	return u.Redacted()
}
