package events_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/events"
	"github.com/berth-dev/berth/events/eventstest"
	"gocloud.dev/blob/memblob"
	"gocloud.dev/pubsub/mempubsub"
)

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if rec := events.RecordFromContext(r.Context()); rec != nil && r.Header.Get("X-Test-User") != "" {
		rec.SetIdentity(r.Header.Get("X-Test-User"))
		rec.SetDecision(events.DecisionAllow)
	}
	_, _ = drain(r)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"ok":true}`))
})

func drain(r *http.Request) (int64, error) {
	var b bytes.Buffer
	return b.ReadFrom(r.Body)
}

func newLog(t *testing.T, o *events.AccessLogOptions) (*events.AccessLog, *lockedBuffer) {
	t.Helper()
	buf := &lockedBuffer{}
	var opts events.AccessLogOptions
	if o != nil {
		opts = *o
	}
	opts.Logger = slog.New(slog.NewJSONHandler(buf, nil))
	l, err := events.NewAccessLog(&opts)
	if err != nil {
		t.Fatal(err)
	}
	return l, buf
}

func serve(h http.Handler, method, target string, body string, hdr map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestAccessLogRecord(t *testing.T) {
	l, buf := newLog(t, nil)
	h := l.Middleware(okHandler)
	w := serve(h, "PUT", "/v2/team/app/manifests/v1?token=s3cret&n=10", `{"manifest":1}`, map[string]string{
		"Authorization": "Bearer very-secret-token", "X-Test-User": "alice", "X-Request-Id": "req-1", "User-Agent": "test/1"})
	if w.Code != 200 || w.Body.String() != `{"ok":true}` || w.Header().Get("X-Request-Id") != "req-1" {
		t.Fatalf("response %d %q %v", w.Code, w.Body, w.Header())
	}
	out := buf.String()
	if strings.Contains(out, "very-secret-token") || strings.Contains(out, "s3cret") {
		t.Fatalf("secret in the log: %s", out)
	}
	recs := lines(out)
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1: %s", len(recs), out)
	}
	a, err := events.DecodeAccessRecord([]byte(recs[0]))
	if err != nil {
		t.Fatal(err)
	}
	want := events.AccessRecord{Seq: 1, RequestID: "req-1", Identity: "alice", ClientAddr: "192.0.2.1", Method: "PUT",
		Route: events.RouteManifest, Repository: "team/app", Reference: "v1", Query: "n=10&token=REDACTED",
		Decision: events.DecisionAllow, Status: 200, BytesIn: 14, BytesOut: 11, UserAgent: "test/1", PrevHash: events.GenesisHash}
	a.Time, a.DurationMicros = want.Time, 0
	if *a != want {
		t.Errorf("record\n got %+v\nwant %+v", *a, want)
	}
}

func TestAccessLogInferred(t *testing.T) {
	l, buf := newLog(t, nil)
	h := l.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, _, ok := r.BasicAuth(); !ok {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusForbidden)
	}))
	serve(h, "GET", "/v2/a/blobs/sha256:abc", "", nil)
	r := httptest.NewRequest("DELETE", "/v2/a/b/manifests/sha256:abc", nil)
	r.SetBasicAuth("bob", "pw")
	h.ServeHTTP(httptest.NewRecorder(), r)
	recs := decodeAll(t, buf.String())
	if recs[0].Decision != events.DecisionUnauthenticated || recs[0].Identity != "" || recs[0].Route != events.RouteBlob {
		t.Errorf("first record %+v", recs[0])
	}
	if recs[1].Decision != events.DecisionDeny || recs[1].Identity != "bob" || recs[1].Repository != "a/b" || recs[1].Status != 403 {
		t.Errorf("second record %+v", recs[1])
	}
	if strings.Contains(buf.String(), "pw") {
		t.Error("password in the log")
	}
}

func lines(s string) []string {
	var out []string
	for l := range strings.SplitSeq(strings.TrimSpace(s), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

func decodeAll(t *testing.T, s string) []*events.AccessRecord {
	t.Helper()
	var out []*events.AccessRecord
	for _, l := range lines(s) {
		a, err := events.DecodeAccessRecord([]byte(l))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

// chain returns n log lines written concurrently through the middleware.
func chain(t *testing.T, n int) ([]string, *events.AccessLog) {
	t.Helper()
	l, buf := newLog(t, nil)
	h := l.Middleware(okHandler)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { serve(h, "GET", "/v2/team/app/manifests/latest", "", nil) })
	}
	wg.Wait()
	ls := lines(buf.String())
	if len(ls) != n {
		t.Fatalf("%d lines, want %d", len(ls), n)
	}
	return ls, l
}

func verify(t *testing.T, ls []string, o *events.VerifyOptions) *events.VerifyReport {
	t.Helper()
	rep, err := events.VerifyAccessLog(strings.NewReader(strings.Join(ls, "\n")+"\n"), o)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestVerifyAccessLog(t *testing.T) {
	ls, l := chain(t, 10)
	headSeq, headHash := l.Head()
	full := &events.VerifyOptions{FirstSeq: 1, FirstPrevHash: events.GenesisHash, HeadSeq: headSeq, HeadHash: headHash}
	if rep := verify(t, ls, full); !rep.OK() || rep.Records != 10 || rep.LastSeq != 10 {
		t.Fatalf("intact log: %+v", rep)
	}
	// Other slog records between access records are ignored.
	mixed := append([]string{`{"time":"2026-01-01T00:00:00Z","level":"INFO","msg":"starting"}`}, ls...)
	if rep := verify(t, mixed, full); !rep.OK() {
		t.Fatalf("log with other records: %+v", rep.Problems)
	}

	alter := func(line, from, to string) string {
		if !strings.Contains(line, from) {
			t.Fatalf("%q not in %s", from, line)
		}
		return strings.Replace(line, from, to, 1)
	}
	cases := []struct {
		name   string
		mutate func([]string) []string
		want   []events.Problem // Kind and Seq (and Count) only
	}{
		{"deleted middle", func(l []string) []string { return append(l[:4:4], l[5:]...) },
			[]events.Problem{{Kind: events.ProblemDeleted, Seq: 5, Count: 1}}},
		{"deleted range", func(l []string) []string { return append(l[:2:2], l[6:]...) },
			[]events.Problem{{Kind: events.ProblemDeleted, Seq: 3, Count: 4}}},
		{"deleted head", func(l []string) []string { return l[1:] },
			[]events.Problem{{Kind: events.ProblemDeleted, Seq: 1, Count: 1}}},
		{"deleted tail", func(l []string) []string { return l[:8] },
			[]events.Problem{{Kind: events.ProblemDeleted, Seq: 9, Count: 2}}},
		{"altered status", func(l []string) []string {
			l[3] = alter(l[3], `"status":200`, `"status":404`)
			return l
		}, []events.Problem{{Kind: events.ProblemAltered, Seq: 4}}},
		{"altered last", func(l []string) []string {
			l[9] = alter(l[9], `"method":"GET"`, `"method":"PUT"`)
			return l
		}, []events.Problem{{Kind: events.ProblemAltered, Seq: 10}}},
		{"added field", func(l []string) []string {
			l[2] = alter(l[2], `"status":200`, `"status":200,"extra":1`)
			return l
		}, []events.Problem{{Kind: events.ProblemMalformed}, {Kind: events.ProblemDeleted, Seq: 3, Count: 1}}},
		{"swapped", func(l []string) []string {
			l[5], l[6] = l[6], l[5]
			return l
		}, []events.Problem{{Kind: events.ProblemReordered, Seq: 6}}},
		{"moved far", func(l []string) []string {
			moved := l[2]
			l = append(l[:2:2], l[3:]...)
			return append(l, moved)
		}, []events.Problem{{Kind: events.ProblemReordered, Seq: 3}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rep := verify(t, c.mutate(append([]string(nil), ls...)), full)
			if len(rep.Problems) != len(c.want) {
				t.Fatalf("problems %v, want %v", rep.Problems, c.want)
			}
			for i, p := range rep.Problems {
				w := c.want[i]
				if p.Kind != w.Kind || (w.Seq != 0 && p.Seq != w.Seq) || (w.Count != 0 && p.Count != w.Count) {
					t.Errorf("problem %d = %v, want %+v", i, p, w)
				}
			}
		})
	}
	// Recomputing every hash after an alteration makes a self-consistent
	// chain, but not one that matches the head kept elsewhere.
	recs := decodeAll(t, strings.Join(ls, "\n"))
	recs[4].Status = 500
	var forged []string
	prev := events.GenesisHash
	for _, r := range recs {
		r.PrevHash = prev
		b, _ := r.CanonicalJSON()
		prev, _ = r.Hash()
		forged = append(forged, string(b))
	}
	if rep := verify(t, forged, nil); !rep.OK() {
		t.Fatalf("forged chain without a head: %v", rep.Problems)
	}
	if rep := verify(t, forged, full); rep.OK() || rep.Problems[0].Kind != events.ProblemAltered || rep.Problems[0].Seq != 10 {
		t.Fatalf("forged chain against the head: %v", rep.Problems)
	}
}

// failingWriter fails while down.
type failingWriter struct {
	mu   sync.Mutex
	down bool
	next events.AccessWriter
}

func (f *failingWriter) set(down bool) { f.mu.Lock(); f.down = down; f.mu.Unlock() }

func (f *failingWriter) WriteAccessRecord(ctx context.Context, seq int64, line []byte) error {
	f.mu.Lock()
	down := f.down
	f.mu.Unlock()
	if down {
		return errors.New("destination unavailable")
	}
	return f.next.WriteAccessRecord(ctx, seq, line)
}

func TestAccessLogFailClosed(t *testing.T) {
	rec := eventstest.NewRecorder()
	fw := &failingWriter{next: rec}
	l, buf := newLog(t, &events.AccessLogOptions{Writer: fw})
	calls := 0
	h := l.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		w.Header().Set("Docker-Content-Digest", "sha256:x")
		w.WriteHeader(201)
	}))
	if w := serve(h, "PUT", "/v2/a/manifests/v1", "{}", nil); w.Code != 201 {
		t.Fatalf("status %d", w.Code)
	}
	fw.set(true)
	// The record cannot be written: the buffered response becomes a 503.
	w := serve(h, "PUT", "/v2/a/manifests/v2", "{}", nil)
	if w.Code != 503 || w.Header().Get("Docker-Content-Digest") != "" || !strings.Contains(w.Body.String(), "UNAVAILABLE") {
		t.Fatalf("while the log is down: %d %v %s", w.Code, w.Header(), w.Body)
	}
	// And the next requests are refused without reaching the handler.
	before := calls
	if w := serve(h, "PUT", "/v2/a/manifests/v3", "{}", nil); w.Code != 503 || calls != before {
		t.Fatalf("refused request: %d, handler calls %d→%d", w.Code, before, calls)
	}
	fw.set(false)
	// The first request after recovery is the probe (refused but logged);
	// then requests are served again.
	serve(h, "PUT", "/v2/a/manifests/v4", "{}", nil)
	if w := serve(h, "PUT", "/v2/a/manifests/v5", "{}", nil); w.Code != 201 {
		t.Fatalf("after recovery: %d", w.Code)
	}
	// The external copy is a gapless chain.
	var ext []string
	for _, b := range rec.AccessLines() {
		ext = append(ext, string(b))
	}
	if rep := verify(t, ext, &events.VerifyOptions{FirstSeq: 1, FirstPrevHash: events.GenesisHash}); !rep.OK() || rep.Records != 3 {
		t.Fatalf("external copy: %+v", rep)
	}
	if rep := verify(t, lines(buf.String()), nil); !rep.OK() {
		t.Fatalf("local copy: %+v", rep)
	}
}

func TestAccessLogFailOpen(t *testing.T) {
	fw := &failingWriter{next: eventstest.NewRecorder(), down: true}
	l, _ := newLog(t, &events.AccessLogOptions{Writer: fw, FailOpen: true})
	h := l.Middleware(okHandler)
	for range 3 {
		if w := serve(h, "GET", "/v2/a/manifests/v1", "", nil); w.Code != 200 {
			t.Fatalf("fail-open: %d", w.Code)
		}
	}
}

func TestAccessLogLargeResponseStreams(t *testing.T) {
	l, buf := newLog(t, &events.AccessLogOptions{BufferBytes: 1024})
	body := bytes.Repeat([]byte("x"), 10000)
	h := l.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < len(body); i += 100 {
			_, _ = w.Write(body[i : i+100])
		}
	}))
	w := serve(h, "GET", "/v2/a/blobs/sha256:abc", "", nil)
	if w.Code != 200 || !bytes.Equal(w.Body.Bytes(), body) {
		t.Fatalf("response %d, %d bytes", w.Code, w.Body.Len())
	}
	if a := decodeAll(t, buf.String())[0]; a.BytesOut != 10000 {
		t.Errorf("bytesOut %d", a.BytesOut)
	}
}

func TestBucketAccessWriter(t *testing.T) {
	ctx := t.Context()
	b := memblob.OpenBucket(nil)
	defer b.Close()
	bw := events.NewBucketAccessWriter(b, "access/")
	l, _ := newLog(t, &events.AccessLogOptions{Writer: bw})
	h := l.Middleware(okHandler)
	for range 5 {
		serve(h, "GET", "/v2/a/tags/list", "", nil)
	}
	seq, hash := l.Head()
	opts := &events.VerifyOptions{FirstSeq: 1, FirstPrevHash: events.GenesisHash, HeadSeq: seq, HeadHash: hash}
	rep, err := events.VerifyBucketAccessLog(ctx, b, "access/", opts)
	if err != nil || !rep.OK() || rep.Records != 5 {
		t.Fatalf("bucket log: %+v, %v", rep, err)
	}
	// Records are write-once.
	if err := bw.WriteAccessRecord(ctx, 3, []byte(`{"forged":true}`)); err == nil {
		t.Fatal("overwrote record 3")
	}
	// Deleting one object is found.
	if err := b.Delete(ctx, bw.Key(2)); err != nil {
		t.Fatal(err)
	}
	rep, _ = events.VerifyBucketAccessLog(ctx, b, "access/", opts)
	if rep.OK() || rep.Problems[0].Kind != events.ProblemDeleted || rep.Problems[0].Seq != 2 {
		t.Fatalf("after deleting record 2: %v", rep.Problems)
	}
}

func TestParseRoute(t *testing.T) {
	for _, c := range []struct{ path, route, repo, ref string }{
		{"/v2/", events.RouteBase, "", ""},
		{"/v2", events.RouteBase, "", ""},
		{"/v2/_catalog", events.RouteCatalog, "", ""},
		{"/v2/a/b/c/tags/list", events.RouteTags, "a/b/c", ""},
		{"/v2/manifests/manifests/latest", events.RouteManifest, "manifests", "latest"},
		{"/v2/a/blobs/sha256:00", events.RouteBlob, "a", "sha256:00"},
		{"/v2/a/blobs/uploads/", events.RouteUploads, "a", ""},
		{"/v2/a/blobs/uploads/abc-123", events.RouteUpload, "a", "abc-123"},
		{"/v2/a/referrers/sha256:00", events.RouteReferrers, "a", "sha256:00"},
		{"/v2/a", events.RouteV2Other, "", ""},
		{"/api/v1/repositories/team/app/images/sha256:00", events.RouteAPI, "team/app", "sha256:00"},
		{"/api/v1/repositories/team/app/images/sha256:00/vulnerabilities", events.RouteAPI, "team/app", "sha256:00"},
		{"/api/v1/repositories/team/app/images", events.RouteAPI, "team/app", ""},
		{"/api/v1/repositories/team/app/tags/v1/history", events.RouteAPI, "team/app", "v1"},
		{"/api/v1/repositories/team/app/lifecycle-policy/preview", events.RouteAPI, "team/app", ""},
		{"/api/v1/tokens/abc", events.RouteAPI, "", ""},
		{"/api/v1/repositories/team/images-cache", events.RouteAPI, "team/images-cache", ""},
		{"/api/v1/repositories/team/images-cache/images/sha256:01", events.RouteAPI, "team/images-cache", "sha256:01"},
		{"/api/v1/repositories/team/app", events.RouteAPI, "team/app", ""},
		{"/metrics", events.RouteMetrics, "", ""},
		{"/favicon.ico", events.RouteOther, "", ""},
	} {
		route, repo, ref := events.ParseRoute(c.path)
		if route != c.route || repo != c.repo || ref != c.ref {
			t.Errorf("ParseRoute(%q) = %q, %q, %q; want %q, %q, %q", c.path, route, repo, ref, c.route, c.repo, c.ref)
		}
	}
}

func TestCanonicalJSONStable(t *testing.T) {
	a := &events.AccessRecord{Seq: 1, Method: "GET", Route: "<&>", PrevHash: events.GenesisHash}
	b, _ := a.CanonicalJSON()
	var back events.AccessRecord
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	b2, _ := back.CanonicalJSON()
	if !bytes.Equal(b, b2) || !bytes.Contains(b, []byte("<&>")) {
		t.Fatalf("canonical JSON not stable: %s vs %s", b, b2)
	}
}

// TestCanonicalRoundTrip: the canonical JSON and the slog line of a
// record with awkward strings decode to records with the same canonical
// JSON, which is what the verifier relies on.
func TestCanonicalRoundTrip(t *testing.T) {
	for _, s := range []string{"", "plain", "<&>\"\\", "\x00\x01\x1f\x7f", "\t\n\r\b\f", "é漢字🙂", "bad\xffutf8\xc3", "\u2028\u2029", "a\u00a0b"} {
		a := &events.AccessRecord{Seq: 3, RequestID: s, Identity: s, ClientAddr: s, Method: "GET", Route: s, Query: s, UserAgent: s, Status: 200, PrevHash: events.GenesisHash}
		want, _ := a.CanonicalJSON()
		if !json.Valid(want) {
			t.Fatalf("%q: canonical JSON not valid: %s", s, want)
		}
		// encoding/json agrees on everything but invalid UTF-8.
		back, err := events.DecodeAccessRecord(want)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := back.CanonicalJSON()
		if !bytes.Equal(got, want) {
			t.Errorf("%q: canonical JSON not stable:\n%s\n%s", s, want, got)
		}
		// Through a slog JSON line.
		var buf bytes.Buffer
		l, _ := events.NewAccessLog(&events.AccessLogOptions{Logger: slog.New(slog.NewJSONHandler(&buf, nil)), FirstSeq: 3})
		if err := l.Log(context.Background(), a); err != nil {
			t.Fatal(err)
		}
		fromLog, err := events.DecodeAccessRecord(buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		got, _ = fromLog.CanonicalJSON()
		want, _ = a.CanonicalJSON()
		if !bytes.Equal(got, want) {
			t.Errorf("%q: slog line decodes differently:\n%s\n%s\n%s", s, want, got, buf.Bytes())
		}
		if s != "bad\xffutf8\xc3" {
			std, _ := json.Marshal(a)
			var x, y any
			_ = json.Unmarshal(std, &x)
			_ = json.Unmarshal(want, &y)
			if !reflect.DeepEqual(x, y) {
				t.Errorf("%q: differs from encoding/json: %s vs %s", s, std, want)
			}
		}
	}
}

func TestTopicAccessWriter(t *testing.T) {
	ctx := withTimeout(t, 10*time.Second)
	topic := mempubsub.NewTopic()
	defer topic.Shutdown(ctx)
	sub := mempubsub.NewSubscription(topic, time.Minute)
	defer sub.Shutdown(ctx)
	l, _ := newLog(t, &events.AccessLogOptions{Writer: events.NewTopicAccessWriter(topic)})
	h := l.Middleware(okHandler)
	for range 3 {
		serve(h, "GET", "/v2/a/manifests/v1", "", nil)
	}
	var got []string
	for range 3 {
		m, err := sub.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		m.Ack()
		got = append(got, string(m.Body))
	}
	// Messages may arrive in any order: the verifier reads them by seq.
	slices.SortFunc(got, func(a, b string) int {
		ra, _ := events.DecodeAccessRecord([]byte(a))
		rb, _ := events.DecodeAccessRecord([]byte(b))
		return cmp.Compare(ra.Seq, rb.Seq)
	})
	if rep := verify(t, got, &events.VerifyOptions{FirstSeq: 1, FirstPrevHash: events.GenesisHash}); !rep.OK() || rep.Records != 3 {
		t.Fatalf("records from the topic: %+v", rep)
	}
}

func TestAccessLogLevelDisabled(t *testing.T) {
	quietLogger := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if _, err := events.NewAccessLog(&events.AccessLogOptions{Logger: quietLogger}); err == nil {
		t.Error("an access log whose records the logger drops was accepted")
	}
	if _, err := events.NewAccessLog(&events.AccessLogOptions{Logger: quietLogger, Level: slog.LevelWarn}); err != nil {
		t.Error(err)
	}
}

// TestCanonicalTime: times are written exactly as time.RFC3339Nano.
func TestCanonicalTime(t *testing.T) {
	times := []time.Time{
		time.Unix(0, 0), time.Date(2026, 11, 23, 7, 8, 9, 0, time.UTC), time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Date(2026, 1, 2, 3, 4, 5, 120000000, time.FixedZone("x", -7*3600)),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 6, 1, 12, 0, 0, 100, time.UTC),
	}
	for i := range 1000 {
		times = append(times, time.Unix(int64(i)*7919*86400/3+int64(i*i), int64(i)*999983%1000000000))
	}
	for _, tm := range times {
		a := &events.AccessRecord{Time: tm}
		b, _ := a.CanonicalJSON()
		want := `"time":"` + tm.UTC().Format(time.RFC3339Nano) + `"`
		if !bytes.Contains(b, []byte(want)) {
			t.Fatalf("%v: %s lacks %s", tm, b, want)
		}
	}
}

// slowOutput is an Output whose writes take a while, so that concurrent
// records queue behind them, and fail while down.
type slowOutput struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
	down   bool
}

func (o *slowOutput) Write(p []byte) (int, error) {
	time.Sleep(200 * time.Microsecond)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.writes++
	if o.down {
		return 0, errors.New("disk full")
	}
	return o.b.Write(p)
}

func (o *slowOutput) setDown(v bool) {
	o.mu.Lock()
	o.down = v
	o.mu.Unlock()
}

// TestAccessLogGroupCommit logs from many goroutines at once to a slow
// Output, part of the time failing: records are written whole, in
// sequence order, in fewer writes than records; a Log call succeeds
// exactly when its record was written; the chain stays intact.
func TestAccessLogGroupCommit(t *testing.T) {
	out := &slowOutput{}
	l, err := events.NewAccessLog(&events.AccessLogOptions{Output: out})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	ok, failed := map[int64]bool{}, map[int64]bool{}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 50 {
				if g == 0 && i == 20 {
					out.setDown(true)
				}
				if g == 0 && i == 30 {
					out.setDown(false)
				}
				rec := &events.AccessRecord{Time: time.Unix(int64(i), 0), RequestID: fmt.Sprint(g, "-", i), Method: "GET", Route: events.RouteBase, Status: 200}
				err := l.Log(context.Background(), rec)
				mu.Lock()
				if err != nil {
					failed[rec.Seq] = true
				} else {
					ok[rec.Seq] = true
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(ok)+len(failed) != 800 || len(failed) == 0 || len(ok) == 0 {
		t.Fatalf("%d logged, %d failed", len(ok), len(failed))
	}
	if out.writes >= 800 {
		t.Errorf("%d writes for 800 records: no group commit", out.writes)
	}
	var seqs []int64
	for _, line := range lines(out.b.String()) {
		rec, err := events.DecodeAccessRecord([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, rec.Seq)
		if !ok[rec.Seq] {
			t.Errorf("record %d was written but its Log call failed", rec.Seq)
		}
	}
	if len(seqs) != len(ok) || !slices.IsSorted(seqs) {
		t.Errorf("%d records written (sorted %v) for %d successful calls", len(seqs), slices.IsSorted(seqs), len(ok))
	}
	// The failed writes left gaps, which the verifier reports as such;
	// around them the chain holds.
	rep := verify(t, lines(out.b.String()), nil)
	missing := int64(0)
	for _, p := range rep.Problems {
		if p.Kind != events.ProblemDeleted || !failed[p.Seq] {
			t.Errorf("problem other than the gap of a failed write: %v", p)
		}
		missing += p.Count
	}
	if missing != int64(len(failed)) {
		t.Errorf("the verifier finds %d records missing, %d failed", missing, len(failed))
	}
	t.Logf("%d records in %d writes; %d failed", len(ok)+len(failed), out.writes, len(failed))
}
