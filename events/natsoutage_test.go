package events_test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"testing"
	"time"

	"github.com/berth-dev/berth/events"
	"github.com/berth-dev/berth/events/eventstest"
	"github.com/berth-dev/berth/events/natsevents"
	"github.com/berth-dev/berth/internal/testsvc"
	"github.com/berth-dev/berth/storage/sqlmeta"
	"github.com/nats-io/nats.go"
)

// natsServer runs a nats-server of the test's own on port (0: a free
// one) and returns its port and a function that stops it.
func natsServer(t *testing.T, port int) (int, func()) {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		msg := "nats-server is not installed (.ci/services installs it: " + testsvc.StartCommand + ")"
		if testsvc.InCI() {
			t.Fatal(msg + "; a missing service is a failure because CI=true")
		}
		t.Skip(msg)
	}
	if port == 0 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	cmd := exec.Command(bin, "-a", "127.0.0.1", "-p", fmt.Sprint(port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}
	t.Cleanup(stop)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return port, stop
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats-server on port %d did not start: %v", port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRelayNATSOutage publishes through a real nats-server that goes
// away while events are appended and comes back on the same port: the
// relay's sends fail meanwhile, nothing leaves the outbox, and every
// event arrives once the connection is re-established.
func TestRelayNATSOutage(t *testing.T) {
	port, stop := natsServer(t, 0)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	ctx := withTimeout(t, 30*time.Second)
	opts := []nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond), nats.ReconnectBufSize(-1)}
	pubConn, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer pubConn.Close()
	subConn, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer subConn.Close()
	subject := testsvc.Name(t)
	sub, err := natsevents.OpenSubscription(subConn, subject)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Shutdown(ctx)
	topic, err := natsevents.OpenTopic(pubConn, subject)
	if err != nil {
		t.Fatal(err)
	}
	defer topic.Shutdown(ctx)

	o, err := sqlmeta.Open(ctx, "sqlite://:memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	clock := eventstest.NewClock(time.Now())
	relay, _ := events.NewRelay(o, events.NewTopicSender(topic), &events.RelayOptions{Clock: clock, Lease: 10 * time.Second, Logger: quiet})

	appendN(t, o, 0, 5)
	if n, err := relay.RelayOnce(ctx); n != 5 || err != nil {
		t.Fatalf("RelayOnce with the broker up = %d, %v", n, err)
	}
	// Core NATS delivers at most once past the server: take these before
	// the server goes away with them in its buffers.
	var got []*events.Event
	for len(got) < 5 {
		m, err := sub.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		m.Ack()
		e, err := events.Unmarshal(m.Body)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
	}

	// The broker goes away; pushes go on.
	stop()
	deadline := time.Now().Add(10 * time.Second)
	for pubConn.IsConnected() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	appendN(t, o, 5, 15)
	for range 3 {
		sctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		n, err := relay.RelayOnce(sctx)
		cancel()
		if n != 0 || err == nil {
			t.Fatalf("RelayOnce with the broker down = %d, %v", n, err)
		}
		clock.Advance(11 * time.Second) // let claims expire: nothing is lost
	}
	if got := remaining(t, o, clock.Now()); got != 15 {
		t.Fatalf("outbox holds %d events during the outage, want 15", got)
	}
	clock.Advance(11 * time.Second)

	// The broker is back on the same port; both connections reconnect.
	natsServer(t, port)
	deadline = time.Now().Add(20 * time.Second)
	for !(pubConn.IsConnected() && subConn.IsConnected()) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	// The subscription is back on the server once a probe gets through
	// (a reconnected client may resend its subscriptions after reporting
	// that it is connected).
	for probed := false; !probed; {
		if ctx.Err() != nil {
			t.Fatal("the subscription did not come back")
		}
		_ = pubConn.Publish(subject, []byte("probe"))
		_ = pubConn.Flush()
		rctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		m, err := sub.Receive(rctx)
		cancel()
		if err == nil {
			m.Ack()
			probed = string(m.Body) == "probe"
		}
	}
	for range 5 {
		if _, err := relay.RelayOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for len(got) < 20 {
		m, err := sub.Receive(ctx)
		if err != nil {
			t.Fatalf("received %d events %v: %v", len(got), payloads(t, got), err)
		}
		m.Ack()
		if string(m.Body) == "probe" {
			continue
		}
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
