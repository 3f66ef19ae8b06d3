package ratelimit

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestTake(t *testing.T) {
	b := New(100)
	now := time.Unix(0, 0)
	l := Limit{Rate: 2, Burst: 3}
	for i := range 3 {
		if ok, _ := b.Take("k", l, 1, now); !ok {
			t.Fatalf("take %d of the burst refused", i)
		}
	}
	ok, wait := b.Take("k", l, 1, now)
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("over the burst: %v, %v; want false, 500ms", ok, wait)
	}
	// Refill: half a second gives one token.
	if ok, _ := b.Take("k", l, 1, now.Add(500*time.Millisecond)); !ok {
		t.Fatal("refilled token refused")
	}
	// Other keys have their own buckets.
	if ok, _ := b.Take("other", l, 3, now); !ok {
		t.Fatal("other key refused")
	}
	// A cost above the burst never passes.
	if ok, wait := b.Take("big", l, 10, now); ok || wait != 0 {
		// The bucket is full; waiting does not help.
		if ok {
			t.Fatal("cost above burst passed")
		}
	}
	// Unlimited.
	for range 1000 {
		if ok, _ := b.Take("free", Limit{}, 1, now); !ok {
			t.Fatal("unlimited refused")
		}
	}
	// Time going backwards takes nothing away and adds nothing.
	if ok, _ := b.Take("k", l, 1, now.Add(-time.Hour)); ok {
		t.Fatal("clock going back refilled")
	}
}

func TestBoundedMemory(t *testing.T) {
	b := New(64)
	now := time.Unix(0, 0)
	for i := range 10000 {
		b.Take(fmt.Sprint("client-", i), Limit{Rate: 1, Burst: 1}, 1, now)
	}
	if n := b.Len(); n > 64 {
		t.Fatalf("%d buckets held, want at most 64", n)
	}
}

func TestConcurrent(t *testing.T) {
	b := New(1000)
	now := time.Unix(0, 0)
	l := Limit{Rate: 1e-9, Burst: 100}
	var wg sync.WaitGroup
	var mu sync.Mutex
	passed := 0
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if ok, _ := b.Take("shared", l, 1, now); ok {
					mu.Lock()
					passed++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if passed != 100 {
		t.Fatalf("%d passed, want exactly the burst of 100", passed)
	}
}

func BenchmarkTake(b *testing.B) {
	bk := New(10000)
	now := time.Unix(0, 0)
	l := Limit{Rate: 1e9, Burst: 1e9}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			bk.Take("127.0.0.1", l, 1, now)
		}
	})
}

// TestEvictionKeepsActiveKeys floods a small limiter with new keys and
// checks that memory stays bounded and that a key in constant use is
// rarely forgotten.
func TestEvictionKeepsActiveKeys(t *testing.T) {
	b := New(shards * 16)
	now := time.Unix(0, 0)
	l := Limit{Rate: 1e-3, Burst: 1000}
	var forgotten, taken int
	for i := range 20000 {
		now = now.Add(time.Microsecond)
		if ok, _ := b.Take("active", l, 1, now); ok {
			taken++
		}
		b.Take(fmt.Sprint("flood-", i), l, 1, now)
		if b.Len() > shards*16 {
			t.Fatalf("%d buckets held, want at most %d", b.Len(), shards*16)
		}
	}
	// Without eviction "active" would pass exactly 1000 times; every
	// time it is forgotten it gets a new burst.
	forgotten = (taken - 1) / 1000
	t.Logf("active key: %d takes passed", taken)
	if taken < 1000 || forgotten > 2 {
		t.Errorf("active key: %d takes passed, forgotten about %d times", taken, forgotten)
	}
}
