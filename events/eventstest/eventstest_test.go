package eventstest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/berth-dev/berth/events/eventstest"
)

func TestRecorder(t *testing.T) {
	eventstest.RunSenderTests(t, eventstest.RecorderHarness)
	r := eventstest.NewRecorder()
	if err := r.WriteAccessRecord(context.Background(), 1, []byte(`{"seq":1,"time":"2026-01-01T00:00:00Z","requestId":"r","clientAddr":"a","method":"GET","route":"*","status":200,"bytesIn":0,"bytesOut":0,"durationUs":0,"prevHash":"x"}`)); err != nil {
		t.Fatal(err)
	}
	if recs := r.AccessRecords(); len(recs) != 1 || recs[0].RequestID != "r" {
		t.Fatalf("access records %+v", recs)
	}
	r.Reset()
	if len(r.Events())+len(r.AccessLines()) != 0 {
		t.Fatal("Reset kept records")
	}
}

func TestClock(t *testing.T) {
	start := time.Unix(100, 0)
	c := eventstest.NewClock(start)
	ch := c.After(time.Second)
	now := c.After(0)
	select {
	case <-now:
	default:
		t.Fatal("After(0) did not fire at once")
	}
	c.Advance(999 * time.Millisecond)
	select {
	case <-ch:
		t.Fatal("fired early")
	default:
	}
	if c.Waiters() != 1 {
		t.Fatalf("%d waiters", c.Waiters())
	}
	c.Advance(time.Millisecond)
	if got := <-ch; !got.Equal(start.Add(time.Second)) || !c.Now().Equal(got) {
		t.Fatalf("fired at %v", got)
	}
}

func TestFlaky(t *testing.T) {
	r := eventstest.NewRecorder()
	f := &eventstest.Flaky{Next: r, FailFirst: 2}
	ctx := context.Background()
	for i, want := range []error{eventstest.ErrDown, eventstest.ErrDown, nil} {
		if err := f.Send(ctx, eventstest.TestEvent("1")); !errors.Is(err, want) {
			t.Fatalf("send %d = %v, want %v", i, err, want)
		}
	}
	f.SetDown(true)
	if err := f.Send(ctx, eventstest.TestEvent("2")); !errors.Is(err, eventstest.ErrDown) || f.Calls() != 4 || len(r.Events()) != 1 {
		t.Fatalf("down: %v, %d calls, %d events", err, f.Calls(), len(r.Events()))
	}
}
