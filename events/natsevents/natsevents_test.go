package natsevents_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/events/natsevents"
	"github.com/berth-dev/berth/internal/testsvc"
	"github.com/nats-io/nats.go"
	"gocloud.dev/pubsub"
)

func TestURLs(t *testing.T) {
	ctx := context.Background()
	for _, u := range []string{"nats://subject?x=1", "nats://"} {
		if _, err := pubsub.OpenTopic(ctx, u); err == nil {
			t.Errorf("OpenTopic(%q) succeeded", u)
		}
	}
	t.Setenv("NATS_SERVER_URL", "")
	if _, err := pubsub.OpenTopic(ctx, "nats://subject"); err == nil || !strings.Contains(err.Error(), "NATS_SERVER_URL") {
		t.Errorf("OpenTopic without a server = %v", err)
	}
	if _, err := natsevents.OpenTopic(nil, "s"); err == nil {
		t.Error("OpenTopic(nil) succeeded")
	}
}

func TestRoundTrip(t *testing.T) {
	url := testsvc.NATS(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	o := &natsevents.URLOpener{Connection: nc}
	var mux pubsub.URLMux
	mux.RegisterTopic(natsevents.Scheme, o)
	mux.RegisterSubscription(natsevents.Scheme, o)
	subject := testsvc.Name(t)
	sub, err := mux.OpenSubscription(ctx, "nats://"+subject)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Shutdown(ctx)
	topic, err := mux.OpenTopic(ctx, "nats://"+subject)
	if err != nil {
		t.Fatal(err)
	}
	defer topic.Shutdown(ctx)
	if err := topic.Send(ctx, &pubsub.Message{Body: []byte("hello"), Metadata: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	m, err := sub.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m.Ack()
	var nm *nats.Msg
	if string(m.Body) != "hello" || m.Metadata["k"] != "v" || !m.As(&nm) || nm.Subject != subject {
		t.Errorf("received %q %v", m.Body, m.Metadata)
	}
	var c *nats.Conn
	if !topic.As(&c) || c != nc || topic.As(nil) {
		t.Error("Topic.As")
	}
}
