package events

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// AccessRecord is one access-log record: one per request. Its canonical
// form (CanonicalJSON) is what the hash chain covers.
type AccessRecord struct {
	// Seq numbers records from 1, without gaps.
	Seq int64 `json:"seq"`
	// Time is when the request arrived.
	Time time.Time `json:"time"`
	// RequestID is the request's ID (X-Request-Id).
	RequestID string `json:"requestId"`
	// Identity is who made the request, when known.
	Identity string `json:"identity,omitempty"`
	// ClientAddr is the client's address.
	ClientAddr string `json:"clientAddr"`
	// Method and Route are the request method and route template.
	Method string `json:"method"`
	Route  string `json:"route"`
	// Repository and Reference are the repository and the tag, digest or
	// upload ID the request is about.
	Repository string `json:"repository,omitempty"`
	Reference  string `json:"reference,omitempty"`
	// Query is the request's query with sensitive parameters redacted.
	Query string `json:"query,omitempty"`
	// Decision is the authorization decision (Decision…), when known.
	Decision string `json:"decision,omitempty"`
	// Status is the response status.
	Status int `json:"status"`
	// BytesIn and BytesOut count the request and response bodies.
	BytesIn  int64 `json:"bytesIn"`
	BytesOut int64 `json:"bytesOut"`
	// DurationMicros is how long serving took, in microseconds.
	DurationMicros int64 `json:"durationUs"`
	// UserAgent is the client's User-Agent header.
	UserAgent string `json:"userAgent,omitempty"`
	// PrevHash is "sha256:" and the hex SHA-256 of the previous record's
	// canonical JSON; the first record of a chain carries GenesisHash.
	PrevHash string `json:"prevHash"`
}

// GenesisHash is the PrevHash of the first record of a chain.
const GenesisHash = "sha256:0000000000000000000000000000000000000000000000000000000000000000"

// CanonicalJSON returns the record's canonical encoding: a JSON object
// with the fields in declaration order, those tagged omitempty left out
// when empty, Time in UTC as RFC 3339 with nanoseconds, no insignificant
// space, strings escaped as encoding/json does without HTML escaping
// except that invalid UTF-8 becomes U+FFFD unescaped (so that decoding
// and encoding again gives the same bytes).
func (a *AccessRecord) CanonicalJSON() ([]byte, error) {
	return a.appendCanonical(make([]byte, 0, 512)), nil
}

func (a *AccessRecord) appendCanonical(b []byte) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendInt(b, a.Seq, 10)
	b = a.appendBody(b)
	b = append(b, `,"prevHash":`...)
	b = appendJSONString(b, a.PrevHash)
	return append(b, '}')
}

// appendBody appends the canonical encoding of the fields between Seq
// and PrevHash, with the comma before each: the part of a record that
// does not depend on the chain, which AccessLog encodes before taking
// its lock.
func (a *AccessRecord) appendBody(b []byte) []byte {
	b = append(b, `,"time":"`...)
	b = appendRFC3339Nano(b, a.Time.UTC())
	b = append(b, `","requestId":`...)
	b = appendJSONString(b, a.RequestID)
	b = appendOpt(b, `,"identity":`, a.Identity)
	b = append(b, `,"clientAddr":`...)
	b = appendJSONString(b, a.ClientAddr)
	b = append(b, `,"method":`...)
	b = appendJSONString(b, a.Method)
	b = append(b, `,"route":`...)
	b = appendJSONString(b, a.Route)
	b = appendOpt(b, `,"repository":`, a.Repository)
	b = appendOpt(b, `,"reference":`, a.Reference)
	b = appendOpt(b, `,"query":`, a.Query)
	b = appendOpt(b, `,"decision":`, a.Decision)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(a.Status), 10)
	b = append(b, `,"bytesIn":`...)
	b = strconv.AppendInt(b, a.BytesIn, 10)
	b = append(b, `,"bytesOut":`...)
	b = strconv.AppendInt(b, a.BytesOut, 10)
	b = append(b, `,"durationUs":`...)
	b = strconv.AppendInt(b, a.DurationMicros, 10)
	return appendOpt(b, `,"userAgent":`, a.UserAgent)
}

func appendOpt(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	return appendJSONString(append(b, key...), v)
}

const hexDigits = "0123456789abcdef"

// jsonSafe marks the ASCII bytes a JSON string holds unescaped.
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendJSONString appends s quoted as encoding/json does with HTML
// escaping off, except for invalid UTF-8 (see CanonicalJSON).
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = utf8.AppendRune(b, utf8.RuneError)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendRFC3339Nano appends t (in UTC) as t.AppendFormat(b,
// time.RFC3339Nano) does, without its general formatting machinery.
func appendRFC3339Nano(b []byte, t time.Time) []byte {
	year, month, day := t.Date()
	if year < 0 || year > 9999 || t.Location() != time.UTC {
		return t.AppendFormat(b, time.RFC3339Nano)
	}
	hour, min, sec := t.Clock()
	b = append(b, byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-',
		byte('0'+int(month)/10), byte('0'+int(month)%10), '-', byte('0'+day/10), byte('0'+day%10), 'T',
		byte('0'+hour/10), byte('0'+hour%10), ':', byte('0'+min/10), byte('0'+min%10), ':', byte('0'+sec/10), byte('0'+sec%10))
	if ns := t.Nanosecond(); ns != 0 {
		var frac [9]byte
		for i := 8; i >= 0; i-- {
			frac[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := 9
		for frac[n-1] == '0' {
			n--
		}
		b = append(b, '.')
		b = append(b, frac[:n]...)
	}
	return append(b, 'Z')
}

// Hash returns "sha256:" and the hex SHA-256 of the canonical JSON: the
// next record's PrevHash.
func (a *AccessRecord) Hash() (string, error) {
	b, err := a.CanonicalJSON()
	if err != nil {
		return "", err
	}
	return hashOf(b), nil
}

func hashOf(canonical []byte) string {
	var h chainHash
	h.set(canonical)
	return string(h[:])
}

// chainHash is a record hash as it is written: "sha256:" and 64 hex
// digits.
type chainHash [len(GenesisHash)]byte

// set makes h the hash of canonical.
func (h *chainHash) set(canonical []byte) {
	sum := sha256.Sum256(canonical)
	copy(h[:], "sha256:")
	hex.Encode(h[7:], sum[:])
}

// attrs returns the record's fields as log/slog attributes, under the
// names and with the omissions of its canonical JSON, so that a JSON
// handler writes an object that decodes to the same record.
func (a *AccessRecord) attrs() []slog.Attr {
	at := make([]slog.Attr, 0, 18)
	at = append(at, slog.Int64("seq", a.Seq), slog.Time("time", a.Time.UTC()), slog.String("requestId", a.RequestID))
	if a.Identity != "" {
		at = append(at, slog.String("identity", a.Identity))
	}
	at = append(at, slog.String("clientAddr", a.ClientAddr), slog.String("method", a.Method), slog.String("route", a.Route))
	for _, kv := range [...]struct{ k, v string }{{"repository", a.Repository}, {"reference", a.Reference}, {"query", a.Query}, {"decision", a.Decision}} {
		if kv.v != "" {
			at = append(at, slog.String(kv.k, kv.v))
		}
	}
	at = append(at, slog.Int("status", a.Status), slog.Int64("bytesIn", a.BytesIn), slog.Int64("bytesOut", a.BytesOut),
		slog.Int64("durationUs", a.DurationMicros))
	if a.UserAgent != "" {
		at = append(at, slog.String("userAgent", a.UserAgent))
	}
	return append(at, slog.String("prevHash", a.PrevHash))
}

// DecodeAccessRecord decodes one record: either its canonical JSON, or a
// log/slog JSON line carrying it under the "access" key. Unknown fields
// are errors, so that additions are detected.
func DecodeAccessRecord(line []byte) (*AccessRecord, error) {
	line = bytes.TrimSpace(line)
	var probe struct {
		Access json.RawMessage `json:"access"`
	}
	if err := json.Unmarshal(line, &probe); err != nil {
		return nil, fmt.Errorf("events: decode access record: %w", err)
	}
	if len(probe.Access) > 0 {
		line = probe.Access
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	var a AccessRecord
	if err := dec.Decode(&a); err != nil {
		return nil, fmt.Errorf("events: decode access record: %w", err)
	}
	return &a, nil
}

// AccessWriter sends access records to a destination outside the service:
// a gocloud.dev/pubsub topic (TopicAccessWriter), a write-once bucket
// prefix (BucketAccessWriter), a test recorder.
type AccessWriter interface {
	// WriteAccessRecord stores line, the canonical JSON of record seq,
	// durably, returning nil only when it is stored. It must not keep line
	// after returning. It is called for one
	// record at a time, in sequence order; writing the same seq again
	// after a failure must succeed if the earlier write did not store it.
	WriteAccessRecord(ctx context.Context, seq int64, line []byte) error
}

// AccessLogOptions configures an AccessLog. The zero value of every field
// is a safe default.
type AccessLogOptions struct {
	// Logger receives every record as a log/slog record with message
	// "access" and the record under the key "access" (with a JSON
	// handler, one JSON line per request). Default slog.Default().
	Logger *slog.Logger
	// Level is the level of the records. Default slog.LevelInfo.
	Level slog.Level
	// Output, when set, receives every record as its canonical JSON and a
	// newline instead of Logger: the cheapest form (no second encoding),
	// and the one VerifyAccessLog reads directly. Records are written
	// whole and in sequence order; without a Writer, the records of
	// requests that finish together are written in one Write (group
	// commit), and each request waits for the Write of its own record.
	Output io.Writer
	// Writer, when set, also receives every record; it is the copy kept
	// outside the service.
	Writer AccessWriter
	// WriteTimeout bounds one write to Writer. Default 5 seconds.
	WriteTimeout time.Duration
	// FailOpen serves requests even when their records cannot be written.
	// By default (false) the log fails closed: a request whose record
	// cannot be written gets 503, if its response is still buffered, and
	// while the log is failing, requests are refused with 503 until a
	// record can be written again.
	FailOpen bool
	// BufferBytes is how much of a response the middleware holds back so
	// that it can still replace it with a 503 if the record cannot be
	// written. Larger responses are streamed. Default 64 KiB; negative
	// disables buffering.
	BufferBytes int
	// FirstSeq and PrevHash continue an existing chain: the next record
	// gets sequence FirstSeq (default 1) and PrevHash (default
	// GenesisHash).
	FirstSeq int64
	PrevHash string
	// ClientAddr returns the client address of a request. Default: the
	// host of RemoteAddr (forwarding headers are not trusted).
	ClientAddr func(*http.Request) string
	// RedactParams are query parameters whose values are replaced with
	// "REDACTED", in addition to the built-in list (password, token,
	// access_token, refresh_token, secret, client_secret, signature, sig,
	// code, key, credential and the X-Amz-/X-Goog- signing parameters).
	RedactParams []string
	// Clock timestamps records. Default SystemClock.
	Clock Clock
}

func (o *AccessLogOptions) validate() error {
	if o.WriteTimeout < 0 || o.FirstSeq < 0 {
		return errors.New("events: AccessLogOptions.WriteTimeout and FirstSeq must not be negative")
	}
	if o.PrevHash != "" && (!strings.HasPrefix(o.PrevHash, "sha256:") || len(o.PrevHash) != len(GenesisHash)) {
		return errors.New("events: AccessLogOptions.PrevHash must be sha256: and 64 hex digits")
	}
	return nil
}

// String describes the effective options, for start-up logs.
func (o AccessLogOptions) String() string {
	w := "none"
	if o.Writer != nil {
		w = fmt.Sprintf("%T", o.Writer)
	}
	return fmt.Sprintf("writer=%s failOpen=%v bufferBytes=%d firstSeq=%d", w, o.FailOpen, o.BufferBytes, o.FirstSeq)
}

// AccessLog writes hash-chained access records, and is the middleware
// that produces one per request.
type AccessLog struct {
	opts    AccessLogOptions
	handler slog.Handler
	redact  map[string]bool

	mu   sync.Mutex
	seq  int64     // next sequence number
	prev chainHash // hash of the last written record
	buf  []byte    // reused for canonical JSON

	failing atomic.Bool

	// Group commit of Output writes (when there is no Writer): records
	// join pending under mu in sequence order; whoever finds no write in
	// progress writes all pending records in one Write, outside mu, while
	// the others wait on cond for theirs. Each request still returns only
	// once its record was written (or failed), but requests that finish
	// together share a write.
	cond     *sync.Cond
	pending  []byte // records (with newlines) not yet written
	spare    []byte // the buffer pending had before the last write
	pendLast int64  // seq of the last record in pending
	writing  bool   // a write is in progress
	written  int64  // seq through which writes have finished
	fails    [64]failedWrite
	nfails   uint64 // failed writes so far; fails is a ring of the last ones
}

// failedWrite is a group-commit write of records first…last that failed.
type failedWrite struct {
	first, last int64
	err         error
}

var defaultRedact = []string{"password", "passwd", "token", "access_token", "refresh_token", "id_token", "secret",
	"client_secret", "signature", "sig", "code", "key", "api_key", "apikey", "credential",
	"x-amz-signature", "x-amz-credential", "x-amz-security-token", "x-goog-signature", "x-goog-credential"}

// NewAccessLog returns an access log.
func NewAccessLog(opts *AccessLogOptions) (*AccessLog, error) {
	var o AccessLogOptions
	if opts != nil {
		o = *opts
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = 5 * time.Second
	}
	if o.BufferBytes == 0 {
		o.BufferBytes = 64 << 10
	}
	if o.FirstSeq == 0 {
		o.FirstSeq = 1
	}
	if o.PrevHash == "" {
		o.PrevHash = GenesisHash
	}
	if o.Clock == nil {
		o.Clock = SystemClock{}
	}
	if o.Output == nil && !o.Logger.Handler().Enabled(context.Background(), o.Level) {
		// Records would be dropped without an error: refuse instead.
		return nil, fmt.Errorf("events: the access log's Logger does not enable level %s", o.Level)
	}
	l := &AccessLog{opts: o, handler: o.Logger.Handler(), seq: o.FirstSeq, redact: map[string]bool{}, written: o.FirstSeq - 1}
	l.cond = sync.NewCond(&l.mu)
	copy(l.prev[:], o.PrevHash)
	for _, p := range append(defaultRedact, o.RedactParams...) {
		l.redact[strings.ToLower(p)] = true
	}
	return l, nil
}

// Head returns the sequence number and hash of the last record written
// (0 and GenesisHash, or the configured FirstSeq-1 and PrevHash, before
// any). Keep it outside the service to detect truncation of the tail.
func (l *AccessLog) Head() (seq int64, hash string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq - 1, string(l.prev[:])
}

// Log assigns rec its Seq and PrevHash and writes it: to Writer first
// (the external copy), then to Output or Logger, and returns once it is
// written. Records are written in sequence order. When Writer fails, the
// chain does not advance and the error is returned; when only Output or
// Logger fails, the chain has advanced (the external copy, if any, holds
// the record) and the error is returned too.
func (l *AccessLog) Log(ctx context.Context, rec *AccessRecord) error {
	return l.log(ctx, rec, true)
}

// log is Log; setPrev false leaves rec.PrevHash unset where nothing reads
// it (the middleware writing to Output), which saves an allocation.
func (l *AccessLog) log(ctx context.Context, rec *AccessRecord, setPrev bool) error {
	// The fields that do not depend on the chain are encoded before the
	// lock is taken, so that requests on other cores wait only for the
	// chained part: sequence number, previous hash, SHA-256 and write.
	bp := getBuf()
	defer putBuf(bp)
	*bp = rec.appendBody(*bp)
	l.mu.Lock()
	defer l.mu.Unlock()
	rec.Seq = l.seq
	if setPrev || l.opts.Output == nil {
		rec.PrevHash = string(l.prev[:])
	}
	line := append(l.buf[:0], `{"seq":`...)
	line = strconv.AppendInt(line, rec.Seq, 10)
	line = append(line, *bp...)
	line = append(line, `,"prevHash":"`...)
	line = append(line, l.prev[:]...)
	line = append(line, `"}`...)
	l.buf = line
	if l.opts.Writer != nil {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.opts.WriteTimeout)
		err := l.opts.Writer.WriteAccessRecord(wctx, rec.Seq, line)
		cancel()
		if err != nil {
			l.failing.Store(true)
			return fmt.Errorf("events: write access record %d: %w", rec.Seq, err)
		}
	}
	l.seq++
	l.prev.set(line)
	var herr error
	if l.opts.Output != nil && l.opts.Writer == nil {
		l.pending = append(append(l.pending, line...), '\n')
		l.pendLast = rec.Seq
		if err := l.commit(rec.Seq); err != nil {
			return fmt.Errorf("events: log access record %d: %w", rec.Seq, err)
		}
		return nil
	} else if l.opts.Output != nil {
		l.buf = append(line, '\n')
		_, herr = l.opts.Output.Write(l.buf)
	} else {
		r := slog.NewRecord(rec.Time, l.opts.Level, "access", 0)
		r.AddAttrs(slog.Attr{Key: "access", Value: slog.GroupValue(rec.attrs()...)})
		herr = l.handler.Handle(context.WithoutCancel(ctx), r)
	}
	if herr != nil {
		l.failing.Store(true)
		return fmt.Errorf("events: log access record %d: %w", rec.Seq, herr)
	}
	l.failing.Store(false)
	return nil
}

// commit returns once record seq, pending, has been written to Output,
// writing it (with every other pending record) itself when no write is
// in progress, and whether its write failed. l.mu is held.
func (l *AccessLog) commit(seq int64) error {
	fails0 := l.nfails
	for l.written < seq {
		if l.writing {
			l.cond.Wait()
			continue
		}
		l.writing = true
		// Let the goroutines that are ready to run first add their
		// records to this write: on a busy server they are many, and
		// this is one syscall for them all; on an idle one none is
		// waiting and this returns at once.
		l.mu.Unlock()
		runtime.Gosched()
		l.mu.Lock()
		batch, first, last := l.pending, l.written+1, l.pendLast
		l.pending = l.spare[:0]
		l.mu.Unlock()
		_, err := l.opts.Output.Write(batch)
		l.mu.Lock()
		l.spare = batch[:0]
		if err != nil {
			l.fails[l.nfails%uint64(len(l.fails))] = failedWrite{first, last, err}
			l.nfails++
		}
		l.failing.Store(err != nil)
		l.written, l.writing = last, false
		l.cond.Broadcast()
	}
	if n := l.nfails - fails0; n > 0 {
		if n > uint64(len(l.fails)) { // too many failures to tell: fail closed
			return l.fails[(l.nfails-1)%uint64(len(l.fails))].err
		}
		for i := l.nfails - n; i < l.nfails; i++ {
			if f := l.fails[i%uint64(len(l.fails))]; f.first <= seq && seq <= f.last {
				return f.err
			}
		}
	}
	return nil
}

// redactQuery returns the raw query with sensitive values replaced.
func (l *AccessLog) redactQuery(raw string) string {
	if raw == "" {
		return ""
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return "REDACTED-UNPARSEABLE"
	}
	changed := false
	for k, vs := range q {
		if l.redact[strings.ToLower(k)] {
			for i := range vs {
				vs[i] = "REDACTED"
			}
			changed = true
		}
	}
	if !changed {
		return raw
	}
	return q.Encode()
}

// Middleware returns next wrapped so that every request yields one access
// record. See AccessLogOptions.FailOpen for what happens when a record
// cannot be written.
func (l *AccessLog) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := l.opts.Clock.Now()
		rec, w, r, _ := begin(w, r, now, l.opts.ClientAddr)
		if !l.opts.FailOpen && l.failing.Load() {
			// Refuse while the log is down. This request's record is the
			// probe: once it can be written, the next request is served.
			rec.SetDecision(DecisionLogUnavailable)
			writeUnavailable(w)
			var a AccessRecord
			l.fill(&a, rec, r, now)
			_ = l.log(r.Context(), &a, false)
			return
		}
		if !l.opts.FailOpen && rec.w != nil {
			rec.w.hold(l.opts.BufferBytes)
		}
		next.ServeHTTP(w, r)
		var a AccessRecord
		l.fill(&a, rec, r, now)
		err := l.log(r.Context(), &a, false)
		if rec.w == nil {
			return
		}
		if err != nil && !l.opts.FailOpen && rec.w.replace() {
			writeUnavailable(rec.w.ResponseWriter)
			return
		}
		rec.w.commit()
	})
}

// elapsed returns how long the request took: from the metrics
// middleware's measurement when it ran inside this one on the same clock.
func (l *AccessLog) elapsed(rec *Record, start time.Time) time.Duration {
	if _, sys := l.opts.Clock.(SystemClock); sys && !rec.end.IsZero() && rec.Start.Equal(start) {
		return rec.end.Sub(start)
	}
	return l.opts.Clock.Now().Sub(start)
}

// fill sets a from what the middlewares recorded about the request.
func (l *AccessLog) fill(a *AccessRecord, rec *Record, r *http.Request, start time.Time) {
	*a = AccessRecord{
		Time: start.UTC(), RequestID: rec.RequestID, Identity: rec.identity, ClientAddr: rec.ClientAddr,
		Method: rec.Method, Route: rec.Route, Repository: rec.Repository, Reference: rec.Reference,
		Query: l.redactQuery(r.URL.RawQuery), Decision: rec.decision, Status: rec.Status,
		BytesIn: rec.BytesIn, BytesOut: rec.BytesOut,
		DurationMicros: l.elapsed(rec, start).Microseconds(),
	}
	if ua := r.Header["User-Agent"]; len(ua) > 0 { // r.UserAgent() without canonicalising the name
		a.UserAgent = ua[0]
	}
	// A refusal states the decision, whatever an earlier check recorded.
	switch a.Status {
	case http.StatusUnauthorized:
		// Known credentials that lack access (a bearer token without the
		// scope) are denied; missing or invalid ones are unauthenticated.
		if a.Identity != "" && a.Identity != "anonymous" {
			a.Decision = DecisionDeny
		} else {
			a.Decision = DecisionUnauthenticated
		}
	case http.StatusForbidden:
		a.Decision = DecisionDeny
	case http.StatusTooManyRequests:
		a.Decision = DecisionRateLimited
	}
	if a.Identity == "" && a.Status != http.StatusUnauthorized && a.Status != http.StatusTooManyRequests {
		// The handler accepted these credentials (it answers 401 to
		// wrong ones), so the user name is who made the request.
		if u, _, ok := r.BasicAuth(); ok {
			a.Identity = u
		}
	}
}

// writeUnavailable writes the 503 of a request refused because its record
// cannot be written.
func writeUnavailable(w http.ResponseWriter) {
	h := w.Header()
	for k := range h {
		if k != "X-Request-Id" {
			delete(h, k)
		}
	}
	h.Set("Content-Type", "application/json")
	h.Set("Retry-After", "5")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write([]byte(`{"errors":[{"code":"UNAVAILABLE","message":"the access log cannot be written; try again later"}]}`))
}
