package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/events"
	"github.com/berth-dev/berth/events/eventstest"
)

func TestRateLimitMiddleware(t *testing.T) {
	clock := eventstest.NewClock(time.Unix(1800000000, 0))
	lim, err := events.NewMemoryLimiter(&events.MemoryLimiterOptions{
		Address:  events.Limit{Rate: 1, Burst: 2},
		Identity: events.Limit{Rate: 1, Burst: 3},
		PerIdentity: func(id string) (events.Limit, bool) {
			if id == "ci-bot" {
				return events.Limit{Rate: 100, Burst: 100}, true
			}
			return events.Limit{}, false
		},
		Clock: clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := events.NewMetrics(nil)
	rl, _ := events.NewRateLimit(lim, &events.RateLimitOptions{Metrics: m})
	h := m.Middleware(rl.Middleware(okHandler))

	get := func(addr string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/v2/a/manifests/v1", nil)
		r.RemoteAddr = addr + ":1234"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for range 2 {
		if w := get("10.0.0.1"); w.Code != 200 {
			t.Fatalf("within burst: %d", w.Code)
		}
	}
	w := get("10.0.0.1")
	if w.Code != 429 || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("over the limit: %d %v", w.Code, w.Header())
	}
	var body struct {
		Errors []struct{ Code, Message string }
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || len(body.Errors) != 1 || body.Errors[0].Code != "TOOMANYREQUESTS" {
		t.Fatalf("body %s (%v)", w.Body, err)
	}
	// Another address is not affected; time refills.
	if w := get("10.0.0.2"); w.Code != 200 {
		t.Fatalf("other address: %d", w.Code)
	}
	clock.Advance(time.Second)
	if w := get("10.0.0.1"); w.Code != 200 {
		t.Fatalf("after refill: %d", w.Code)
	}
	// Identities: the default and a per-token limit.
	ctx := context.Background()
	for i := range 4 {
		ok, wait, _ := rl.Check(ctx, "alice", 1)
		if ok != (i < 3) || (!ok && wait != time.Second) {
			t.Fatalf("alice request %d: %v %v", i, ok, wait)
		}
	}
	for range 50 {
		if ok, _, _ := rl.Check(ctx, "ci-bot", 1); !ok {
			t.Fatal("ci-bot limited below its own limit")
		}
	}
	if ok, _, _ := rl.Check(ctx, "", 1); !ok {
		t.Fatal("anonymous identity limited by Check")
	}
	// Rejections are counted.
	mw := httptest.NewRecorder()
	m.Handler().ServeHTTP(mw, httptest.NewRequest("GET", "/metrics", nil))
	text := mw.Body.String()
	for _, want := range []string{
		`berth_ratelimit_rejections_total{kind="address"} 1`,
		`berth_ratelimit_rejections_total{kind="identity"} 1`,
		`berth_http_requests_total{code="429",method="GET",route="/v2/{name}/manifests/{reference}"} 1`,
		`berth_http_requests_total{code="200",method="GET",route="/v2/{name}/manifests/{reference}"} 4`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

type errLimiter struct{}

func (errLimiter) Allow(context.Context, string, int) (bool, time.Duration, error) {
	return false, 0, errors.New("store down")
}

func TestRateLimitLimiterFailure(t *testing.T) {
	open, _ := events.NewRateLimit(errLimiter{}, &events.RateLimitOptions{Logger: quiet})
	if w := serve(open.Middleware(okHandler), "GET", "/v2/", "", nil); w.Code != 200 {
		t.Errorf("fail-open limiter: %d", w.Code)
	}
	closed, _ := events.NewRateLimit(errLimiter{}, &events.RateLimitOptions{FailClosed: true, Logger: quiet})
	if w := serve(closed.Middleware(okHandler), "GET", "/v2/", "", nil); w.Code != 503 {
		t.Errorf("fail-closed limiter: %d", w.Code)
	}
}

func TestMetrics(t *testing.T) {
	m, err := events.NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(202)
		_, _ = w.Write([]byte("12345"))
	}))
	for _, repo := range []string{"a", "b/c", "d"} {
		serve(h, "PATCH", "/v2/"+repo+"/blobs/uploads/abc", "0123456789", nil)
	}
	serve(h, "BREW", "/coffee", "", nil)
	m.SetStorageBytes(1 << 30)
	m.SetUploadSessions(3)
	m.SetScanQueueDepth(7)
	m.ObserveScan(2*time.Second, "ok")
	m.AddGCReclaimedBytes(4096)
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	text := w.Body.String()
	for _, want := range []string{
		`berth_http_requests_total{code="202",method="PATCH",route="/v2/{name}/blobs/uploads/{uuid}"} 3`,
		`berth_http_request_bytes_total{route="/v2/{name}/blobs/uploads/{uuid}"} 30`,
		`berth_http_response_bytes_total{route="/v2/{name}/blobs/uploads/{uuid}"} 15`,
		`berth_http_request_duration_seconds_count{code="202",method="PATCH",route="/v2/{name}/blobs/uploads/{uuid}"} 3`,
		`berth_http_requests_total{code="202",method="other",route="*"} 1`,
		`berth_storage_bytes 1.073741824e+09`,
		`berth_upload_sessions 3`,
		`berth_scan_queue_depth 7`,
		`berth_scan_duration_seconds_count{result="ok"} 1`,
		`berth_gc_reclaimed_bytes_total 4096`,
		`go_goroutines`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// Repository names never become labels.
	if strings.Contains(text, `b/c`) {
		t.Error("a repository name is a label")
	}
}

// TestMiddlewareChain: the three middlewares share one Record, and the
// handler's annotations reach the access record.
func TestMiddlewareChain(t *testing.T) {
	l, buf := newLog(t, nil)
	m, _ := events.NewMetrics(nil)
	lim, _ := events.NewMemoryLimiter(&events.MemoryLimiterOptions{Address: events.Limit{Rate: 1, Burst: 1}})
	rl, _ := events.NewRateLimit(lim, &events.RateLimitOptions{Metrics: m})
	var seen *events.Record
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = events.RecordFromContext(r.Context())
		seen.SetIdentity("carol")
		seen.SetDecision(events.DecisionAllow)
		w.WriteHeader(204)
	})
	h := l.Middleware(m.Middleware(rl.Middleware(inner)))
	if w := serve(h, "DELETE", "/v2/x/manifests/sha256:ab", "", nil); w.Code != 204 {
		t.Fatalf("status %d", w.Code)
	}
	if w := serve(h, "DELETE", "/v2/x/manifests/sha256:ab", "", nil); w.Code != 429 {
		t.Fatalf("second request: %d", w.Code)
	}
	recs := decodeAll(t, buf.String())
	if len(recs) != 2 || recs[0].Identity != "carol" || recs[0].Decision != events.DecisionAllow || recs[0].Status != 204 ||
		recs[1].Status != 429 || recs[1].Decision != events.DecisionRateLimited {
		t.Fatalf("records %+v %+v", recs[0], recs[1])
	}
	if seen == nil || seen.RequestID != recs[0].RequestID {
		t.Fatal("the handler saw another record")
	}
}
