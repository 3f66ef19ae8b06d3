package storagetest

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/storage/driver"
)

// testRateLimits checks driver.RateLimits, or skips when the backend does
// not implement it. Rates are chosen so that the buckets do not refill
// measurably during a check, except where refilling is what is checked.
func testRateLimits(t *testing.T, open NewMetadata) {
	m := open(t)
	rl, ok := m.(driver.RateLimits)
	if !ok {
		t.Skipf("%T does not implement driver.RateLimits", m)
	}
	take := func(key string, rate float64, burst, cost int) (bool, time.Duration) {
		t.Helper()
		ok, wait, err := rl.TakeRate(bg, key, rate, burst, cost)
		if err != nil {
			t.Fatalf("TakeRate(%q, %g, %d, %d): %v", key, rate, burst, cost, err)
		}
		return ok, wait
	}

	for _, c := range []struct {
		key         string
		rate        float64
		burst, cost int
	}{{"k", 0, 1, 1}, {"k", -1, 1, 1}, {"k", 1, 0, 1}, {"k", 1, 1, 0}, {string(make([]byte, 1025)), 1, 1, 1}} {
		_, _, err := rl.TakeRate(bg, c.key, c.rate, c.burst, c.cost)
		wantErr(t, "TakeRate with invalid arguments", err, driver.ErrInvalidArgument)
	}

	// A burst of 3 at one unit per 100 s: three pass, the fourth waits
	// about 100 s, and another key is not affected.
	for i := range 3 {
		if ok, _ := take("burst", 0.01, 3, 1); !ok {
			t.Fatalf("take %d of a burst of 3 refused", i+1)
		}
	}
	ok, wait := take("burst", 0.01, 3, 1)
	if ok || wait < 90*time.Second || wait > 101*time.Second {
		t.Errorf("fourth take = %v, wait %v; want false, about 100s", ok, wait)
	}
	if ok, _ := take("burst-other", 0.01, 3, 3); !ok {
		t.Error("a take of the whole burst from a new key was refused")
	}
	// A cost above the burst never passes; a refused take takes nothing.
	if ok, wait := take("big", 1, 2, 3); ok || wait < time.Second || wait > 2*time.Second {
		t.Errorf("take of 3 from a burst of 2 = %v, wait %v; want false, 2s", ok, wait)
	}
	if ok, _ := take("big", 1, 2, 2); !ok {
		t.Error("a refused take consumed the bucket")
	}

	// Refill: at 20 units per second, a unit is back after 50 ms.
	if ok, _ := take("refill", 20, 1, 1); !ok {
		t.Fatal("first take refused")
	}
	ok, wait = take("refill", 20, 1, 1)
	if ok || wait <= 0 || wait > 60*time.Millisecond {
		t.Fatalf("second take = %v, wait %v; want false, at most 50ms", ok, wait)
	}
	time.Sleep(wait + 10*time.Millisecond)
	if ok, _ := take("refill", 20, 1, 1); !ok {
		t.Errorf("take after waiting %v refused", wait)
	}

	// Concurrent takes never overdraw: exactly the burst passes.
	var passed atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			ok, _, err := rl.TakeRate(bg, "race", 0.001, 7, 1)
			if err != nil {
				t.Error(err)
			}
			if ok {
				passed.Add(1)
			}
		})
	}
	wg.Wait()
	if n := passed.Load(); n != 7 {
		t.Errorf("%d of 20 concurrent takes from a burst of 7 passed", n)
	}
}
