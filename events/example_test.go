package events_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/berth-dev/berth/events"
	"github.com/berth-dev/berth/events/eventstest"
	"github.com/berth-dev/berth/storage/memmeta"
)

// A relay moves outbox entries to a sender, here a Recorder; in a server
// the sender is a topic (events.OpenPublisher) or a webhook.
func ExampleRelay() {
	ctx := context.Background()
	outbox := memmeta.New() // store.Registry() in a server
	defer outbox.Close()
	e, _ := events.NewOutboxEvent(events.TypeTagCreated, "team/app:v1", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		map[string]string{"repository": "team/app", "tag": "v1"})
	_ = outbox.AppendEvents(ctx, e)

	rec := eventstest.NewRecorder()
	relay, _ := events.NewRelay(outbox, rec, &events.RelayOptions{Source: "/registry.example.com"})
	n, err := relay.RelayOnce(ctx) // Run(ctx) loops until ctx is done
	fmt.Println(n, err)
	got := rec.Events()[0]
	b, _ := got.Marshal()
	fmt.Println(string(b))
	// Output:
	// 1 <nil>
	// {"specversion":"1.0","id":"1","source":"/registry.example.com","type":"dev.berth.tag.created","subject":"team/app:v1","time":"2026-01-02T03:04:05Z","datacontenttype":"application/json","data":{"repository":"team/app","tag":"v1"}}
}

// The access log middleware writes one hash-chained record per request;
// the verifier checks the chain.
func ExampleAccessLog_Middleware() {
	var out bytes.Buffer
	accessLog, _ := events.NewAccessLog(&events.AccessLogOptions{Output: &out})
	registry := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// What the registry knows after authorizing.
		if rec := events.RecordFromContext(r.Context()); rec != nil {
			rec.SetIdentity("alice")
			rec.SetDecision(events.DecisionAllow)
		}
		w.WriteHeader(http.StatusOK)
	})
	h := accessLog.Middleware(registry)
	for _, p := range []string{"/v2/team/app/manifests/v1", "/v2/team/app/tags/list?n=10&token=secret"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", p, nil))
	}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		r, _ := events.DecodeAccessRecord([]byte(line))
		fmt.Println(r.Seq, r.Identity, r.Decision, r.Route, r.Repository, r.Reference, r.Query, r.Status)
	}
	rep, _ := events.VerifyAccessLog(&out, nil)
	fmt.Println("records:", rep.Records, "intact:", rep.OK())
	// Output:
	// 1 alice allow /v2/{name}/manifests/{reference} team/app v1  200
	// 2 alice allow /v2/{name}/tags/list team/app  n=10&token=REDACTED 200
	// records: 2 intact: true
}

// The verifier names the records that were removed or changed.
func ExampleVerifyAccessLog() {
	var out bytes.Buffer
	accessLog, _ := events.NewAccessLog(&events.AccessLogOptions{Output: &out})
	h := accessLog.Middleware(http.NotFoundHandler())
	for range 5 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/v2/", nil))
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	lines[1] = strings.Replace(lines[1], `"status":404`, `"status":200`, 1) // altered
	lines = append(lines[:3], lines[4:]...)                                 // record 4 deleted
	rep, _ := events.VerifyAccessLog(strings.NewReader(strings.Join(lines, "\n")), nil)
	for _, p := range rep.Problems {
		fmt.Println(p.Kind, p.Seq)
	}
	// Output:
	// altered 2
	// deleted 4
}

// Over its limit, a client gets 429 with Retry-After and the OCI error
// body.
func ExampleRateLimit() {
	limiter, _ := events.NewMemoryLimiter(&events.MemoryLimiterOptions{Address: events.Limit{Rate: 1, Burst: 1}})
	limits, _ := events.NewRateLimit(limiter, nil)
	h := limits.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for range 2 {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/v2/", nil))
		fmt.Println(w.Code, w.Header().Get("Retry-After"), w.Body.Len() > 0)
		if w.Code == http.StatusTooManyRequests {
			fmt.Println(w.Body.String())
		}
	}
	// Output:
	// 200  false
	// 429 1 true
	// {"errors":[{"code":"TOOMANYREQUESTS","message":"too many requests; retry after 1 s","detail":{"retryAfterSeconds":1}}]}
}

// Metrics count requests by route template; other packages report
// through Observer.
func ExampleMetrics() {
	metrics, _ := events.NewMetrics(nil)
	h := metrics.Middleware(http.NotFoundHandler())
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/v2/team/app/manifests/v1", nil))
	var o events.Observer = metrics
	o.SetUploadSessions(2)

	w := httptest.NewRecorder()
	metrics.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range strings.Split(w.Body.String(), "\n") {
		if strings.HasPrefix(line, "berth_http_requests_total") || strings.HasPrefix(line, "berth_upload_sessions") {
			fmt.Println(line)
		}
	}
	// Output:
	// berth_http_requests_total{code="404",method="GET",route="/v2/{name}/manifests/{reference}"} 1
	// berth_upload_sessions 2
}
