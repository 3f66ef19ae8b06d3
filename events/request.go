package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Authorization decisions recorded in access records.
const (
	DecisionAllow           = "allow"
	DecisionDeny            = "deny"
	DecisionUnauthenticated = "unauthenticated"
	DecisionRateLimited     = "rate-limited"
	// DecisionLogUnavailable marks requests refused because the access
	// log could not be written (fail closed).
	DecisionLogUnavailable = "log-unavailable"
)

// Record is what the middlewares of this package know about the request
// being served. The first of them to see a request creates it and puts it
// in the request's context; the others, and the handler, share it.
//
// A handler annotates it with what only the handler knows, the
// authenticated identity and the authorization decision:
//
//	if rec := events.RecordFromContext(r.Context()); rec != nil {
//		rec.SetIdentity(id.Subject)
//		rec.SetDecision(events.DecisionAllow)
//	}
//
// Without annotations the access log infers the decision from the status
// (401 unauthenticated, 403 deny, 429 rate-limited) and the identity from
// an HTTP Basic user name the handler accepted (any status but 401).
// A Record is used by one request at a time: set it from the goroutine
// serving the request, before the handler returns.
type Record struct {
	// RequestID identifies the request; it is sent back in the
	// X-Request-Id response header.
	RequestID string
	// Start is when the middleware received the request.
	Start time.Time
	// Method is the request method.
	Method string
	// Route is the route template, e.g. "/v2/{name}/manifests/{reference}".
	Route string
	// Repository and Reference are parsed from /v2/ and /api/v1/ paths:
	// the repository name and the tag, digest or upload ID.
	Repository, Reference string
	// ClientAddr is the client's address (host only).
	ClientAddr string
	// Status is the response status (200 until the handler sets one).
	Status int
	// BytesIn and BytesOut count the request and response bodies.
	BytesIn, BytesOut int64

	identity, decision string
	charged            bool // the identity's rate limit was applied
	wroteHeader        bool
	w                  *recordWriter
	end                time.Time // when the handler returned, if measured

	// Allocated with the Record, so that a request costs one allocation
	// for all of them: the writer w points to, the context carrying the
	// Record, and the X-Request-Id header value.
	rw    recordWriter
	ctx   recordContext
	idHdr [1]string
}

// recordContext is a context carrying a Record, as context.WithValue
// would, without an allocation of its own.
type recordContext struct {
	context.Context
	rec *Record
}

func (c *recordContext) Value(key any) any {
	if _, ok := key.(recordKey); ok {
		return c.rec
	}
	return c.Context.Value(key)
}

// SetIdentity records who made the request (an identity's subject;
// "anonymous" for none).
func (r *Record) SetIdentity(subject string) { r.identity = subject }

// SetDecision records the authorization decision (Decision…).
func (r *Record) SetDecision(d string) { r.decision = d }

// Identity returns the identity set with SetIdentity.
func (r *Record) Identity() string { return r.identity }

// Decision returns the decision set with SetDecision.
func (r *Record) Decision() string { return r.decision }

type recordKey struct{}

// RecordFromContext returns the request's Record, or nil when no
// middleware of this package serves the request.
func RecordFromContext(ctx context.Context) *Record {
	if c, ok := ctx.(*recordContext); ok { // the usual case, without a search
		return c.rec
	}
	r, _ := ctx.Value(recordKey{}).(*Record)
	return r
}

// ContextWithRecord returns ctx carrying rec.
func ContextWithRecord(ctx context.Context, rec *Record) context.Context {
	return context.WithValue(ctx, recordKey{}, rec)
}

// requestIDs makes request IDs: a random per-process prefix and a counter,
// unique without a random read per request.
var requestIDs = func() struct {
	prefix string
	n      *atomic.Uint64
} {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return struct {
		prefix string
		n      *atomic.Uint64
	}{hex.EncodeToString(b[:]) + "-", new(atomic.Uint64)}
}()

func newRequestID() string {
	var b [32]byte
	n := copy(b[:], requestIDs.prefix)
	v := requestIDs.n.Add(1)
	// The counter in hex, without leading zeros.
	digits := 1
	for x := v >> 4; x != 0; x >>= 4 {
		digits++
	}
	for i := n + digits - 1; i >= n; i-- {
		b[i] = hexDigits[v&0xF]
		v >>= 4
	}
	return string(b[:n+digits])
}

// validRequestID accepts client-supplied IDs of up to 64 safe characters.
func validRequestID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// hostOnly returns the host part of a RemoteAddr.
func hostOnly(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// begin returns the request's Record and the writer to pass on, creating
// both when no middleware of this package did yet.
func begin(w http.ResponseWriter, r *http.Request, now time.Time, clientAddr func(*http.Request) string) (*Record, http.ResponseWriter, *http.Request, bool) {
	if rec := RecordFromContext(r.Context()); rec != nil {
		return rec, w, r, false
	}
	if now.IsZero() {
		now = time.Now()
	}
	rec := &Record{Start: now, Method: r.Method, Status: http.StatusOK}
	// Servers canonicalise header names: index the map directly rather
	// than canonicalise again (Header.Get).
	if ids := r.Header["X-Request-Id"]; len(ids) > 0 && validRequestID(ids[0]) {
		rec.RequestID = ids[0]
	} else {
		rec.RequestID = newRequestID()
	}
	if clientAddr != nil {
		rec.ClientAddr = clientAddr(r)
	} else {
		rec.ClientAddr = hostOnly(r.RemoteAddr)
	}
	rec.Route, rec.Repository, rec.Reference = ParseRoute(r.URL.Path)
	if rec.Route == RouteUpload && r.Method == http.MethodPut {
		if d := r.URL.Query().Get("digest"); d != "" && len(d) <= 200 {
			rec.Reference = d
		}
	}
	rec.idHdr[0] = rec.RequestID
	w.Header()["X-Request-Id"] = rec.idHdr[:]
	rec.ctx = recordContext{Context: r.Context(), rec: rec}
	r = r.WithContext(&rec.ctx) // a copy: the caller's request is not changed
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &countingBody{ReadCloser: r.Body, n: &rec.BytesIn}
	}
	rec.rw = recordWriter{ResponseWriter: w, rec: rec}
	rec.w = &rec.rw
	return rec, rec.w, r, true
}

type countingBody struct {
	io.ReadCloser
	n *int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	*b.n += int64(n)
	return n, err
}

// recordWriter counts what the handler writes into the Record and, when
// the access log asks it to (hold), holds the status and up to limit
// bytes of the body back until commit, so that the response can still be
// replaced with an error.
type recordWriter struct {
	http.ResponseWriter
	rec *Record

	limit     int // bytes held back at most; 0 when not holding
	held      bool
	status    int
	bp        *[]byte // from bufs; *bp holds what is held back
	committed bool
}

// hold starts holding the response back (before the handler runs).
func (w *recordWriter) hold(limit int) {
	if limit > 0 && !w.rec.wroteHeader {
		w.held, w.limit = true, limit
	}
}

func (w *recordWriter) WriteHeader(code int) {
	if code < 200 { // informational responses pass through
		w.ResponseWriter.WriteHeader(code)
		return
	}
	if w.rec.wroteHeader {
		return
	}
	w.rec.wroteHeader = true
	w.rec.Status = code
	if w.held && !w.committed {
		w.status = code
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recordWriter) Write(p []byte) (int, error) {
	if !w.rec.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.rec.BytesOut += int64(len(p))
	if w.held && !w.committed {
		if w.bp == nil && len(p) <= w.limit {
			w.bp = getBuf()
		}
		if w.bp != nil && len(*w.bp)+len(p) <= w.limit {
			*w.bp = append(*w.bp, p...)
			return len(p), nil
		}
		w.commit()
	}
	n, err := w.ResponseWriter.Write(p)
	if n < len(p) {
		w.rec.BytesOut -= int64(len(p) - n)
	}
	return n, err
}

// commit sends what is held back and stops holding.
func (w *recordWriter) commit() {
	if !w.held || w.committed {
		return
	}
	w.committed = true
	if w.status != 0 {
		w.ResponseWriter.WriteHeader(w.status)
	}
	if w.bp != nil {
		if len(*w.bp) > 0 {
			_, _ = w.ResponseWriter.Write(*w.bp)
		}
		putBuf(w.bp)
		w.bp = nil
	}
}

// bufs recycles the buffers that hold responses back.
var bufs sync.Pool

func getBuf() *[]byte {
	if b, ok := bufs.Get().(*[]byte); ok {
		*b = (*b)[:0]
		return b
	}
	b := make([]byte, 0, 4096)
	return &b
}

func putBuf(b *[]byte) {
	if b != nil && cap(*b) <= 64<<10 {
		bufs.Put(b)
	}
}

// replace discards what is held back and reports whether it could (the
// response was not committed yet), so that another can be written.
func (w *recordWriter) replace() bool {
	if !w.held || w.committed {
		return false
	}
	w.committed = true
	putBuf(w.bp)
	w.bp = nil
	return true
}

func (w *recordWriter) Flush() {
	w.commit()
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		if !w.rec.wroteHeader {
			w.rec.wroteHeader = true
		}
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *recordWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Route templates reported by ParseRoute. They are few and fixed, so they
// are safe as metric labels.
const (
	RouteBase      = "/v2/"
	RouteCatalog   = "/v2/_catalog"
	RouteTags      = "/v2/{name}/tags/list"
	RouteManifest  = "/v2/{name}/manifests/{reference}"
	RouteBlob      = "/v2/{name}/blobs/{digest}"
	RouteUploads   = "/v2/{name}/blobs/uploads/"
	RouteUpload    = "/v2/{name}/blobs/uploads/{uuid}"
	RouteReferrers = "/v2/{name}/referrers/{digest}"
	RouteV2Other   = "/v2/*"
	RouteAPI       = "/api/v1/*"
	RouteMetrics   = "/metrics"
	RouteOther     = "*"
)

// ParseRoute maps a request path to its route template, repository name
// and reference (tag, digest or upload ID), as the registry routes /v2/
// paths: the last segments decide, since repository names may contain
// the route words. Management API paths /api/v1/repositories/{name}/…
// yield the repository name when it can be told apart.
func ParseRoute(p string) (route, repo, ref string) {
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		switch {
		case p == "/v2":
			return RouteBase, "", ""
		case strings.HasPrefix(p, "/api/v1/"):
			repo, ref := apiRepository(p)
			return RouteAPI, repo, ref
		case p == "/metrics":
			return RouteMetrics, "", ""
		}
		return RouteOther, "", ""
	}
	switch rest {
	case "":
		return RouteBase, "", ""
	case "_catalog":
		return RouteCatalog, "", ""
	}
	// Peel off up to three trailing segments without allocating.
	rest1, last := cutLast(rest)
	rest2, second := cutLast(rest1)
	rest3, third := cutLast(rest2)
	switch {
	case rest2 != "" && second == "tags" && last == "list":
		return RouteTags, rest2, ""
	case rest2 != "" && second == "manifests":
		return RouteManifest, rest2, last
	case rest2 != "" && second == "referrers":
		return RouteReferrers, rest2, last
	case rest2 != "" && second == "blobs" && last == "uploads":
		return RouteUploads, rest2, ""
	case rest3 != "" && third == "blobs" && second == "uploads":
		if last == "" {
			return RouteUploads, rest3, ""
		}
		return RouteUpload, rest3, last
	case rest2 != "" && second == "blobs":
		return RouteBlob, rest2, last
	}
	return RouteV2Other, "", ""
}

// cutLast splits p at its last slash: "a/b/c" → "a/b", "c". Without a
// slash, before is "" and last is p.
func cutLast(p string) (before, last string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}

// apiRepository extracts {name} from /api/v1/repositories/{name}[/…],
// and the digest or tag of …/images/{digest}[/…] and …/tags/{tag}[/…].
func apiRepository(p string) (repo, ref string) {
	rest, ok := strings.CutPrefix(p, "/api/v1/repositories/")
	if !ok {
		return "", ""
	}
	for _, kw := range []string{"/images", "/tags/", "/lifecycle-policy"} {
		i := strings.LastIndex(rest, kw)
		if i <= 0 {
			continue
		}
		tail := rest[i+len(kw):]
		if !strings.HasSuffix(kw, "/") && tail != "" && tail[0] != '/' {
			continue // a name such as team/images-cache
		}
		after := strings.TrimPrefix(tail, "/")
		if kw != "/lifecycle-policy" {
			ref, _, _ = strings.Cut(after, "/")
		}
		return rest[:i], ref
	}
	return strings.TrimSuffix(rest, "/"), ""
}
