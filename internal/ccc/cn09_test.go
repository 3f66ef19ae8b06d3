package ccc_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/events"
	"github.com/berth-dev/berth/events/eventstest"
	"github.com/berth-dev/berth/registry/registrytest"
	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob"
	_ "modernc.org/sqlite"
)

func TestCCC_Core_CN09_AR01_C09_TR01_LogsSeparated(t *testing.T) {
	a := assess(t)
	t.Parallel()
	f := shared(t)
	s := f.server
	// Leave a marker in the log, then crawl every readable route as admin.
	marker := s.do(t, s.Admin, http.MethodGet, "/v2/team-a/app/tags/list", nil).RequestID
	if _, ok := s.accessRecord(t, marker); !ok {
		a.Fatalf("the marker request %s was not logged", marker)
	}
	api, _ := openAPIRoutes(t)
	paths := []string{"/v2/", "/v2/_catalog", "/v2/team-a/app/tags/list", "/v2/team-a/app/manifests/v1",
		"/v2/team-a/app/blobs/" + f.App.Layers[0].String(), "/v2/team-a/app/referrers/" + f.App.Digest.String()}
	for _, rt := range api {
		if rt.method == "GET" {
			paths = append(paths, regexp.MustCompile(`\{[^}]+\}`).ReplaceAllStringFunc(rt.path, func(m string) string {
				return map[string]string{"{name}": "team-a/app", "{digest}": f.App.Digest.String(), "{tag}": "v1", "{id}": f.Reader.TokenID}[m]
			}))
		}
	}
	for _, guess := range []string{"/api/v1/audit", "/api/v1/access-log", "/api/v1/logs", "/api/v1/events", "/logs", "/debug/vars", "/metrics"} {
		paths = append(paths, guess)
	}
	for _, p := range paths {
		r := s.do(t, s.Admin, http.MethodGet, p, nil)
		if bytes.Contains(r.Body, []byte(marker)) || bytes.Contains(r.Body, []byte(`"prevHash"`)) {
			a.Errorf("GET %s as admin (%d) returned access-log content", p, r.Status)
		}
	}
	a.Evidence("no route serves access records: %d GET routes (the registry API, every GET operation of the OpenAPI documents, and common log paths) crawled as admin; none returned the marker request's ID or a record", len(paths))

	logs, _ := filepath.Glob(filepath.Join(s.Data, "access-*.log"))
	if !hasFlag(t, "access-log-url") {
		a.Gap("registryd writes its access log only to %s, inside its own --data directory beside the blob bucket and the database, with the registry's own file permissions: the process that records can also read and rewrite it", strings.Join(rel(s.Data, logs), ", "))
		return
	}
	a.Evidence("the local copy of the access log is %s, inside --data; the copy that counts is --access-log-url's", strings.Join(rel(s.Data, logs), ", "))

	// Destinations the registry stores data in are refused.
	data, err := os.MkdirTemp(workDir, "data-")
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := os.MkdirTemp(workDir, "blobs-")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct{ what, url string }{
		{"a directory inside --data", "file://" + filepath.ToSlash(filepath.Join(data, "audit")) + "?create_dir=true"},
		{"the blob bucket", "file://" + filepath.ToSlash(blobs)},
		{"a prefix of the blob bucket", "file://" + filepath.ToSlash(filepath.Join(blobs, "audit")) + "?create_dir=true"},
		{"an in-memory topic", "mem://audit"},
	} {
		sv, err := startServer(t, serverOptions{Data: data, Args: []string{"--blob-url", "file://" + filepath.ToSlash(blobs), "--access-log-url", bad.url}})
		if err == nil {
			a.Errorf("--access-log-url on %s: registryd started", bad.what)
			sv.stop()
			continue
		}
		var se *startError
		if errors.As(err, &se) {
			lines := strings.Split(strings.TrimSpace(se.Output), "\n")
			a.Evidence("--access-log-url on %s: refuses to start: %s", bad.what, lines[len(lines)-1])
		}
	}

	// A destination outside: every record arrives there, chained.
	outside := t.TempDir()
	s2 := mustStart(t, serverOptions{Args: []string{"--access-log-url", "file://" + filepath.ToSlash(outside)}})
	mark := s2.do(t, s2.Admin, http.MethodGet, "/v2/_catalog", nil).RequestID
	s2.do(t, anonymous, http.MethodGet, "/v2/_catalog", nil)
	s2.stop()
	b, err := blob.OpenBucket(t.Context(), "file://"+filepath.ToSlash(outside))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	rep, err := events.VerifyBucketAccessLog(t.Context(), b, "access/", nil)
	if err != nil || !rep.OK() || rep.Records < 2 {
		a.Errorf("the external copy does not verify: %v %+v", err, rep)
	}
	found := false
	_ = filepath.WalkDir(outside, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if c, _ := os.ReadFile(p); bytes.Contains(c, []byte(mark)) {
				found = true
			}
		}
		return nil
	})
	if !found {
		a.Errorf("the external copy lacks the record of request %s", mark)
	}
	a.Evidence("--access-log-url file://<a directory outside --data>: %d records arrived there as write-once objects (one per record, created only if absent) and their hash chain verifies (events.VerifyBucketAccessLog)", rep.Records)
	a.Review("whether the external destination is beyond the registry's reach (another account, write-once retention, credentials the registry cannot use to delete) is for the operator to attest")
}

// rel returns paths relative to base, as DATA/….
func rel(base string, paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		r, err := filepath.Rel(base, p)
		if err != nil {
			r = p
		}
		out[i] = "DATA/" + r
	}
	return out
}

// flakyWriter is an events.AccessWriter that fails while down.
type flakyWriter struct {
	next *eventstest.Recorder
	mu   sync.Mutex
	down bool
	seqs []int64
}

func (w *flakyWriter) setDown(d bool) { w.mu.Lock(); w.down = d; w.mu.Unlock() }

func (w *flakyWriter) WriteAccessRecord(ctx context.Context, seq int64, line []byte) error {
	w.mu.Lock()
	down := w.down
	if !down {
		w.seqs = append(w.seqs, seq)
	}
	w.mu.Unlock()
	if down {
		return errors.New("sink down")
	}
	return w.next.WriteAccessRecord(ctx, seq, line)
}

func TestCCC_Core_CN09_AR02_C09_TR02_LogFailClosed(t *testing.T) {
	a := assess(t)
	t.Parallel()
	// (a) Nothing in registryd turns the access log off.
	for _, fl := range []string{"no-access-log", "access-log-off", "disable-access-log", "access-log-fail-open", "fail-open", "audit-off", "no-audit"} {
		if hasFlag(t, fl) {
			a.Errorf("registryd offers --%s", fl)
		}
	}
	if m := regexp.MustCompile(`(?m)^\s*-(\S+)\s.*\n\s+.*(?i:disable|turn off).*(?i:log|audit)`).FindStringSubmatch(registrydHelp(t)); m != nil {
		a.Errorf("registryd flag --%s appears to disable logging", m[1])
	}
	a.Evidence("registryd has no flag that disables or weakens its access log (its -h output checked); it always writes one")
	typ := reflect.TypeFor[events.AccessLogOptions]()
	for i := range typ.NumField() {
		if fl := typ.Field(i); fl.Name == "FailOpen" {
			a.Evidence("library: events.AccessLogOptions.FailOpen (default false) lets an embedding program serve while records cannot be written; registryd never sets it")
		}
	}

	// (b) In process: a registry whose external sink fails.
	srv := registrytest.NewServer(t, nil)
	rec := eventstest.NewRecorder()
	sink := &flakyWriter{next: rec}
	var local bytes.Buffer
	var localMu sync.Mutex
	al, err := events.NewAccessLog(&events.AccessLogOptions{Writer: sink, Output: lockedWriter{&local, &localMu}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewTLSServer(al.Middleware(srv.Handler))
	t.Cleanup(ts.Close)
	s := &server{URL: ts.URL, client: ts.Client(), Admin: identity{Name: "admin", User: registrytest.AdminUser, Secret: registrytest.AdminPassword}}
	img := s.pushImage(t, s.Admin, "team-a/app", "v1", randomBytes(128))
	ct := []string{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}

	sink.setDown(true)
	r1 := s.do(t, s.Admin, http.MethodPut, "/v2/team-a/app/manifests/during-1", img.Manifest, ct...)
	r2 := s.do(t, s.Admin, http.MethodPut, "/v2/team-a/app/manifests/during-2", img.Manifest, ct...)
	r3 := s.do(t, s.Admin, http.MethodGet, "/v2/team-a/app/manifests/v1", nil)
	for i, r := range []*response{r1, r2, r3} {
		if r.Status != http.StatusServiceUnavailable {
			a.Errorf("request %d while the sink is down: %d, want 503", i+1, r.Status)
		}
	}
	a.Evidence("in-process registry with a failing access-log sink: manifest PUT → %d, a second manifest PUT → %d, manifest GET → %d %s", r1.Status, r2.Status, r3.Status, bytes.TrimSpace(r3.Body))
	sink.setDown(false)
	probe := s.do(t, s.Admin, http.MethodGet, "/v2/", nil)
	after := s.do(t, s.Admin, http.MethodHead, "/v2/team-a/app/manifests/during-2", nil)
	if after.Status != http.StatusNotFound {
		a.Errorf("the manifest PUT refused while the sink was down was stored: HEAD during-2 → %d", after.Status)
	}
	if r := s.do(t, s.Admin, http.MethodHead, "/v2/team-a/app/manifests/during-1", nil); r.Status == http.StatusOK {
		a.Evidence("note: the first request after the sink failed (the one whose record could not be written) was answered 503 although its effect (tag during-1) was applied; later ones were refused before being served")
	}
	ok := s.do(t, s.Admin, http.MethodGet, "/v2/team-a/app/manifests/v1", nil)
	if ok.Status != http.StatusOK {
		a.Errorf("after the sink recovered: GET → %d, want 200", ok.Status)
	}
	a.Evidence("sink recovered: the next request (the probe) → %d, then HEAD during-2 → %d (never stored), GET v1 → %d", probe.Status, after.Status, ok.Status)

	// (c) The external copy has no gap, and its chain verifies.
	lines := rec.AccessLines()
	rep, err := events.VerifyAccessLog(bytes.NewReader(bytes.Join(lines, []byte("\n"))), &events.VerifyOptions{FirstSeq: 1, FirstPrevHash: events.GenesisHash})
	if err != nil || !rep.OK() {
		a.Errorf("the sink's copy does not verify: %v %v", err, rep.Problems)
	}
	seqHead, hash := al.Head()
	if rep.LastSeq != seqHead {
		a.Errorf("the sink's copy ends at record %d, the log's head is %d (%s)", rep.LastSeq, seqHead, hash)
	}
	a.Evidence("the sink's copy holds records 1…%d with an unbroken hash chain up to the log's head (no record lost while it was down)", rep.LastSeq)
}

type lockedWriter struct {
	b  *bytes.Buffer
	mu *sync.Mutex
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func TestCCC_Core_CN09_AR03_C09_TR03_LogRedirection(t *testing.T) {
	a := assess(t)
	t.Parallel()
	data, err := os.MkdirTemp(workDir, "data-")
	if err != nil {
		t.Fatal(err)
	}
	s := mustStart(t, serverOptions{Data: data})
	for range 3 {
		s.do(t, s.Admin, http.MethodGet, "/v2/_catalog", nil)
	}
	// (a) No route changes where records go.
	api, _ := openAPIRoutes(t)
	for _, rt := range api {
		if regexp.MustCompile(`(?i)audit|access-?log|/logs?\b`).MatchString(rt.path) && rt.method != "GET" {
			a.Errorf("route %s %s may change the access log at run time", rt.method, rt.path)
		}
	}
	a.Evidence("no management route configures logging (%d operations checked): the destination is fixed at start-up", len(api))

	// (c) Tamper evidence: the chain verifies, and an edited record is named.
	files, _ := filepath.Glob(filepath.Join(data, "access-*.log"))
	if len(files) != 1 {
		a.Fatalf("want one access log, found %v", files)
	}
	log, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	rep, err := events.VerifyAccessLog(bytes.NewReader(log), &events.VerifyOptions{FirstSeq: 1, FirstPrevHash: events.GenesisHash})
	if err != nil || !rep.OK() || rep.Records < 3 {
		a.Fatalf("the access log does not verify: %v %+v", err, rep)
	}
	lines := bytes.Split(bytes.TrimSpace(log), []byte("\n"))
	victim := len(lines) / 2
	rec, err := events.DecodeAccessRecord(lines[victim])
	if err != nil {
		t.Fatal(err)
	}
	lines[victim] = bytes.Replace(lines[victim], fmt.Appendf(nil, `"status":%d`, rec.Status), fmt.Appendf(nil, `"status":%d`, rec.Status+1), 1)
	bad, _ := events.VerifyAccessLog(bytes.NewReader(bytes.Join(lines, []byte("\n"))), nil)
	named := false
	for _, p := range bad.Problems {
		named = named || p.Seq == rec.Seq
	}
	if bad.OK() || !named {
		a.Errorf("editing record %d's status was not detected at that record: %v", rec.Seq, bad.Problems)
	}
	a.Evidence("%s: %d records verify (events.VerifyAccessLog); changing record %d's status is reported at record %d (%v)", rel(data, files)[0], rep.Records, rec.Seq, rec.Seq, bad.Problems)

	// (b) A restart is the only way to change the destination: is it
	// announced, and does the chain go on?
	s.stop()
	var extra []string
	if hasFlag(t, "access-log-url") {
		extra = []string{"--access-log-url", "file://" + filepath.ToSlash(t.TempDir())}
	}
	s2 := mustStart(t, serverOptions{Data: data, Args: extra})
	s2.do(t, s2.Admin, http.MethodGet, "/v2/", nil)
	s2.stop()
	files, _ = filepath.Glob(filepath.Join(data, "access-*.log"))
	var all []byte
	for _, f := range files {
		b, _ := os.ReadFile(f)
		all = append(all, b...)
	}
	cont, _ := events.VerifyAccessLog(bytes.NewReader(all), &events.VerifyOptions{FirstSeq: 1, FirstPrevHash: events.GenesisHash})
	chained := len(files) == 2 && cont.OK()
	a.Evidence("after a restart on the same data directory there are %d local access logs (%s); read in order they form one chain: %v (%d records%s)", len(files), strings.Join(rel(data, files), ", "), chained, cont.Records, problems(cont))
	types := outboxTypes(t, a, data)
	var announcements []string
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "meta.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT type, subject, data FROM outbox ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var ty, subj string
		var d []byte
		_ = rows.Scan(&ty, &subj, &d)
		if regexp.MustCompile(`(?i)audit|access.?log|sink`).MatchString(ty) {
			announcements = append(announcements, fmt.Sprintf("%s %s %s", ty, subj, d))
		}
	}
	rows.Close()
	if len(announcements) < 2 {
		a.Gap("changing the access log's destination requires a restart (no run-time change), but the restart publishes no event announcing the old and new destinations (event types in the outbox: %v)", types)
		return
	}
	if !chained {
		a.Errorf("the restarted log does not continue the previous chain: %v", cont.Problems)
	}
	if extra != nil && !strings.Contains(announcements[len(announcements)-1], `"redirected":true`) {
		a.Errorf("the restart with a new --access-log-url was not announced as a redirection: %s", announcements[len(announcements)-1])
	}
	for _, an := range announcements {
		a.Evidence("outbox event: %s", an)
	}
	a.Evidence("each start appends an event naming the old and new destinations to the outbox, which the relay publishes on the configured event topic and webhooks; wiring those to a monitored channel is the operator's part")
}

// problems formats a verification's problems for evidence.
func problems(r *events.VerifyReport) string {
	if r == nil || r.OK() {
		return ""
	}
	return fmt.Sprintf(", problems %v", r.Problems)
}

// outboxTypes returns the distinct event types in the outbox of a
// stopped registryd's SQLite database.
func outboxTypes(t *testing.T, a *assessment, data string) []string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "meta.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var types []string
	rows, err := db.Query(`SELECT DISTINCT type FROM outbox ORDER BY type`)
	if err != nil {
		a.Fatalf("read the outbox: %v", err)
	}
	defer rows.Close()
	for rows.Next() {
		var ty string
		if err := rows.Scan(&ty); err != nil {
			t.Fatal(err)
		}
		types = append(types, ty)
	}
	return types
}
