package throttle

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/auth/basic"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func setup(t *testing.T, o Options) (*clock, auth.Authenticator, *Limiter) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	o.Now = c.Now
	l, err := New(&o)
	if err != nil {
		t.Fatal(err)
	}
	return c, l.Wrap(basic.New(basic.NewStatic("admin", "correct-horse", auth.Identity{Admin: true}))), l
}

func try(a auth.Authenticator, addr, user, pw string) error {
	r := httptest.NewRequest("GET", "/v2/", nil)
	r.RemoteAddr = addr + ":1234"
	r.SetBasicAuth(user, pw)
	_, err := a.Authenticate(r)
	return err
}

func TestThrottlePerAddress(t *testing.T) {
	c, a, _ := setup(t, Options{})
	for i := range 10 {
		if err := try(a, "10.0.0.1", fmt.Sprint("user", i), "guess"); !errors.Is(err, auth.ErrUnauthenticated) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	// Throttled now, even with the right password, and quickly.
	err := try(a, "10.0.0.1", "admin", "correct-horse")
	var te *auth.ThrottledError
	if !errors.As(err, &te) || !errors.Is(err, auth.ErrThrottled) || te.RetryAfter <= 0 || te.RetryAfter > 6*time.Second {
		t.Fatalf("11th attempt: %v", err)
	}
	if strings.Contains(err.Error(), "correct-horse") || strings.Contains(err.Error(), "admin") {
		t.Fatalf("error reveals credentials: %v", err)
	}
	// Another address is not affected.
	if err := try(a, "10.0.0.2", "admin", "correct-horse"); err != nil {
		t.Fatalf("other address: %v", err)
	}
	// One failure is forgiven per interval.
	c.Add(6 * time.Second)
	if err := try(a, "10.0.0.1", "admin", "correct-horse"); err != nil {
		t.Fatalf("after the interval: %v", err)
	}
	if err := try(a, "10.0.0.1", "admin", "wrong"); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("a failure after the refill: %v", err)
	}
	if err := try(a, "10.0.0.1", "admin", "correct-horse"); !errors.Is(err, auth.ErrThrottled) {
		t.Fatalf("throttled again: %v", err)
	}
	c.Add(time.Minute)
	for i := range 10 {
		if err := try(a, "10.0.0.1", "admin", "correct-horse"); err != nil {
			t.Fatalf("successes are never throttled by themselves (%d): %v", i, err)
		}
	}
}

func TestThrottlePerUser(t *testing.T) {
	_, a, _ := setup(t, Options{UserBurst: 3, AddrBurst: 100})
	for i := range 3 {
		if err := try(a, fmt.Sprintf("10.0.1.%d", i), "admin", "guess"); !errors.Is(err, auth.ErrUnauthenticated) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if err := try(a, "10.0.2.1", "admin", "correct-horse"); !errors.Is(err, auth.ErrThrottled) {
		t.Fatalf("user spread over addresses: %v", err)
	}
	if err := try(a, "10.0.2.1", "other", "x"); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("another user: %v", err)
	}
}

func TestAnonymousAndBearerPassThrough(t *testing.T) {
	_, a, l := setup(t, Options{AddrBurst: 1})
	if err := try(a, "10.0.0.1", "x", "y"); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/v2/", nil)
	r.RemoteAddr = "10.0.0.1:1"
	for range 5 {
		if id, err := a.Authenticate(r); err != nil || !id.IsAnonymous() {
			t.Fatalf("anonymous: %v %v", id, err)
		}
	}
	r.Header.Set("Authorization", "Bearer x")
	if _, err := a.Authenticate(r); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("bearer: %v", err)
	}
	if n, _ := l.Len(); n != 1 {
		t.Fatalf("%d addresses", n)
	}
}

func TestBounded(t *testing.T) {
	c, a, l := setup(t, Options{MaxEntries: 50})
	for i := range 500 {
		_ = try(a, fmt.Sprintf("10.1.%d.%d", i/250, i%250), fmt.Sprint("u", i), "bad")
		c.Add(time.Millisecond)
	}
	if n, u := l.Len(); n > 50 || u > 50 {
		t.Fatalf("maps grew to %d, %d", n, u)
	}
	// The latest addresses are still tracked.
	for range 9 {
		_ = try(a, "10.1.1.249", "z", "bad")
	}
	if err := try(a, "10.1.1.249", "admin", "correct-horse"); !errors.Is(err, auth.ErrThrottled) {
		t.Fatalf("recent address lost: %v", err)
	}
}

func TestOptions(t *testing.T) {
	if _, err := New(&Options{Interval: -1}); err == nil {
		t.Fatal("negative interval accepted")
	}
	if _, err := New(nil); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrent(t *testing.T) {
	_, a, _ := setup(t, Options{})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 100 {
				_ = try(a, fmt.Sprintf("10.2.0.%d", i), fmt.Sprint("u", j%7), "bad")
			}
		})
	}
	wg.Wait()
}

func TestIPv6Per64(t *testing.T) {
	_, a, _ := setup(t, Options{AddrBurst: 3})
	for i := range 3 {
		_ = try(a, fmt.Sprintf("[2001:db8:1:2::%x]", i+1), fmt.Sprint("u", i), "bad")
	}
	if err := try(a, "[2001:db8:1:2:ffff::1]", "admin", "correct-horse"); !errors.Is(err, auth.ErrThrottled) {
		t.Fatalf("same /64: %v", err)
	}
	if err := try(a, "[2001:db8:1:3::1]", "admin", "correct-horse"); err != nil {
		t.Fatalf("other /64: %v", err)
	}
	if addrKey("10.0.0.1") != "10.0.0.1" || addrKey("::ffff:10.0.0.1") != "::ffff:10.0.0.1" || addrKey("junk") != "junk" {
		t.Fatal("addrKey")
	}
}

func TestLogsWithoutNames(t *testing.T) {
	var buf strings.Builder
	log := slog.New(slog.NewTextHandler(&buf, nil))
	_, a, _ := setup(t, Options{AddrBurst: 2, UserBurst: 2, Logger: log})
	for range 3 {
		_ = try(a, "10.9.9.9", "hunter2-typed-as-user", "pw")
	}
	out := buf.String()
	if strings.Count(out, "too many failed logins") != 2 || !strings.Contains(out, "10.9.9.9") {
		t.Fatalf("log: %s", out)
	}
	if strings.Contains(out, "hunter2") || strings.Contains(out, "pw") {
		t.Fatalf("log reveals credentials: %s", out)
	}
}
