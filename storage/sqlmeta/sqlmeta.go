package sqlmeta

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/storage/driver"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// URL schemes understood by Open and URLOpener.
const (
	// SchemeSQLite selects the embedded SQLite backend:
	// sqlite:///abs/path/meta.db, sqlite://./rel/meta.db, sqlite://:memory:.
	SchemeSQLite = "sqlite"
	// SchemePostgres selects PostgreSQL: postgres://host:port/dbname?sslmode=….
	SchemePostgres = "postgres"
	// SchemePostgreSQL is an alias of SchemePostgres.
	SchemePostgreSQL = "postgresql"
)

// Defaults used when the corresponding Options field is zero.
const (
	DefaultBusyTimeout      = 30 * time.Second
	DefaultMaxConns         = 10
	DefaultSQLiteReadConns  = 4
	defaultMigrationLockKey = 0x6265727468 // "berth"
)

// Options configures a backend. The zero value is safe and is what Open
// uses.
type Options struct {
	// MaxConns bounds the open connections to PostgreSQL, or the reading
	// connections to an SQLite file (SQLite always has exactly one writing
	// connection). Zero means DefaultMaxConns for PostgreSQL and
	// DefaultSQLiteReadConns for SQLite.
	MaxConns int
	// BusyTimeout is how long an SQLite writer waits for another process
	// holding the write lock before failing. Zero means DefaultBusyTimeout.
	BusyTimeout time.Duration
}

func (o *Options) validate() error {
	if o.MaxConns < 0 {
		return fmt.Errorf("sqlmeta: Options.MaxConns is negative (%d)", o.MaxConns)
	}
	if o.BusyTimeout < 0 {
		return fmt.Errorf("sqlmeta: Options.BusyTimeout is negative (%s)", o.BusyTimeout)
	}
	return nil
}

// String describes the options, for logging the effective configuration.
// Options hold no secrets.
func (o *Options) String() string {
	if o == nil {
		o = &Options{}
	}
	return fmt.Sprintf("sqlmeta.Options{MaxConns: %d, BusyTimeout: %s}", o.MaxConns, o.BusyTimeout)
}

// URLOpener opens metadata backends from URLs; see the package
// documentation for the URL forms. The zero value is ready to use.
type URLOpener struct {
	// Options configures every backend the opener opens.
	Options Options
}

func init() {
	for _, s := range []string{SchemeSQLite, SchemePostgres, SchemePostgreSQL} {
		driver.DefaultMetadataURLMux().RegisterMetadata(s, &URLOpener{})
	}
}

var _ driver.MetadataURLOpener = (*URLOpener)(nil)

// OpenMetadataURL opens the backend that u names and brings its schema up
// to date. The result is a *Metadata.
func (o *URLOpener) OpenMetadataURL(ctx context.Context, u *url.URL) (driver.Metadata, error) {
	m, err := o.open(ctx, u)
	if err != nil {
		return nil, err
	}
	return m, nil
}

func (o *URLOpener) open(ctx context.Context, u *url.URL) (*Metadata, error) {
	opts := o.Options
	if err := opts.validate(); err != nil {
		return nil, err
	}
	switch u.Scheme {
	case SchemeSQLite:
		return openSQLite(ctx, u, &opts)
	case SchemePostgres, SchemePostgreSQL:
		return openPostgres(ctx, u, &opts)
	}
	return nil, fmt.Errorf("sqlmeta: unsupported URL scheme %q in %s", u.Scheme, Redact(u.String()))
}

// Open opens the backend that rawURL names with default Options and brings
// its schema up to date. The caller closes the result.
func Open(ctx context.Context, rawURL string) (*Metadata, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Parse's error repeats the URL: do not return it.
		return nil, fmt.Errorf("sqlmeta: malformed URL %s", Redact(rawURL))
	}
	return (&URLOpener{}).open(ctx, u)
}

// Redact returns rawURL with any password replaced by "xxxxx", for logs
// and errors. Unparseable input is replaced entirely.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "<unparseable URL>"
	}
	return u.Redacted()
}

type dialect int

const (
	dialectSQLite dialect = iota
	dialectPostgres
)

func (d dialect) String() string {
	if d == dialectPostgres {
		return "postgres"
	}
	return "sqlite"
}

// Metadata is a driver.Metadata backed by SQLite or PostgreSQL. Create it
// with Open or URLOpener; it is safe for concurrent use.
type Metadata struct {
	dialect dialect
	// w runs every transaction and write. For SQLite it holds exactly one
	// connection, so writers in one process queue in Go rather than
	// spinning on the database lock.
	w *sql.DB
	// r runs single-statement reads. For PostgreSQL and in-memory SQLite
	// it is w.
	r    *sql.DB
	desc string

	qmu     sync.Mutex
	queries map[string]string

	// stmts caches prepared statements on r for SQLite, where preparing
	// costs about as much as running a point lookup. (pgx caches prepared
	// statements per connection itself.)
	smu   sync.Mutex
	stmts map[string]*sql.Stmt
}

var _ driver.Metadata = (*Metadata)(nil)

// String describes the backend with credentials redacted.
func (m *Metadata) String() string { return m.desc }

// Close closes the backend's connections.
func (m *Metadata) Close() error {
	var err error
	m.smu.Lock()
	for _, st := range m.stmts {
		err = errors.Join(err, st.Close())
	}
	m.stmts = nil
	m.smu.Unlock()
	err = errors.Join(err, m.w.Close())
	if m.r != m.w {
		err = errors.Join(err, m.r.Close())
	}
	return err
}

// As reaches the backend's *sql.DB: with a **sql.DB target it stores the
// writing pool (the only pool for PostgreSQL) and reports true. It
// reports false for any other target, including nil.
func (m *Metadata) As(target any) bool {
	p, ok := target.(**sql.DB)
	if !ok || p == nil {
		return false
	}
	*p = m.w
	return true
}

func openSQLite(ctx context.Context, u *url.URL, opts *Options) (*Metadata, error) {
	if u.User != nil {
		return nil, fmt.Errorf("sqlmeta: sqlite URL %s must not carry user information", Redact(u.String()))
	}
	if len(u.Query()) > 0 || u.ForceQuery {
		for k := range u.Query() {
			return nil, fmt.Errorf("sqlmeta: unknown query parameter %q in %s", k, u.Redacted())
		}
		return nil, fmt.Errorf("sqlmeta: empty query in %s", u.Redacted())
	}
	if u.Fragment != "" {
		return nil, fmt.Errorf("sqlmeta: unexpected fragment in %s", u.Redacted())
	}
	busy := opts.BusyTimeout
	if busy == 0 {
		busy = DefaultBusyTimeout
	}
	common := "_busy_timeout=" + strconv.FormatInt(busy.Milliseconds(), 10) +
		"&_foreign_keys=1&_txlock=immediate"
	m := &Metadata{dialect: dialectSQLite, queries: map[string]string{}, stmts: map[string]*sql.Stmt{}}
	if u.Host == ":memory:" && u.Path == "" {
		// A private database: one connection, since each connection to
		// ":memory:" would see its own empty database.
		db, err := sql.Open("sqlite", ":memory:?"+common)
		if err != nil {
			return nil, fmt.Errorf("sqlmeta: open in-memory sqlite: %w", err)
		}
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
		m.w, m.r, m.desc = db, db, "sqlite://:memory:"
	} else {
		path := u.Host + u.Path
		if path == "" {
			return nil, fmt.Errorf("sqlmeta: sqlite URL %s names no file", u.Redacted())
		}
		if strings.ContainsAny(path, "?#") {
			return nil, fmt.Errorf("sqlmeta: sqlite path %q must not contain '?' or '#'", path)
		}
		path = filepath.FromSlash(path)
		// The database holds token hashes and wrapped data keys: create it
		// (and its directory) readable by the owner only. SQLite gives its
		// -wal and -shm files the database file's permissions.
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("sqlmeta: create directory for %s: %w", path, err)
		}
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("sqlmeta: open sqlite %s: %w", path, err)
		}
		f.Close()
		w, err := sql.Open("sqlite", "file:"+path+"?"+common+"&_journal_mode=WAL&_synchronous=FULL")
		if err != nil {
			return nil, fmt.Errorf("sqlmeta: open sqlite %s: %w", path, err)
		}
		w.SetMaxOpenConns(1)
		w.SetMaxIdleConns(1)
		w.SetConnMaxLifetime(0)
		w.SetConnMaxIdleTime(0)
		if err := pingSQLite(ctx, w, busy); err != nil {
			w.Close()
			return nil, fmt.Errorf("sqlmeta: open sqlite %s: %w", path, err)
		}
		r, err := sql.Open("sqlite", "file:"+path+"?"+common+"&_query_only=1")
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("sqlmeta: open sqlite %s: %w", path, err)
		}
		n := opts.MaxConns
		if n == 0 {
			n = DefaultSQLiteReadConns
		}
		r.SetMaxOpenConns(n)
		r.SetMaxIdleConns(n)
		m.w, m.r, m.desc = w, r, "sqlite://"+filepath.ToSlash(path)
	}
	if err := m.migrate(ctx); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// pingSQLite opens db's first connection, which switches the database to
// WAL mode. Switching needs an exclusive lock, and SQLite reports
// SQLITE_BUSY at once, without consulting the busy timeout, when another
// connection (another node starting at the same moment) holds a lock
// then: retry for up to the busy timeout.
func pingSQLite(ctx context.Context, db *sql.DB, busy time.Duration) error {
	deadline := time.Now().Add(busy)
	delay := time.Millisecond
	for {
		err := db.PingContext(ctx)
		var se *sqlite.Error
		if err == nil || !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// postgresParams are the query parameters accepted in postgres URLs; they
// are passed to the PostgreSQL client unchanged.
var postgresParams = map[string]bool{
	"sslmode":              true,
	"sslrootcert":          true,
	"sslcert":              true,
	"sslkey":               true,
	"sslsni":               true,
	"connect_timeout":      true,
	"application_name":     true,
	"target_session_attrs": true,
	"search_path":          true,
}

func openPostgres(ctx context.Context, u *url.URL, opts *Options) (*Metadata, error) {
	for k := range u.Query() {
		if !postgresParams[k] {
			return nil, fmt.Errorf("sqlmeta: unknown query parameter %q in %s", k, u.Redacted())
		}
	}
	cfg, err := pgx.ParseConfig(u.String())
	if err != nil {
		// pgx's parse errors can quote the connection string: do not
		// wrap them.
		return nil, fmt.Errorf("sqlmeta: invalid postgres URL %s", u.Redacted())
	}
	db := stdlib.OpenDB(*cfg)
	n := opts.MaxConns
	if n == 0 {
		n = DefaultMaxConns
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxIdleTime(5 * time.Minute)
	m := &Metadata{dialect: dialectPostgres, w: db, r: db, desc: u.Redacted(), queries: map[string]string{}, stmts: map[string]*sql.Stmt{}}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlmeta: connect to %s: %w", u.Redacted(), err)
	}
	if err := m.migrate(ctx); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// q returns query s, written with ? placeholders, in the backend's
// dialect.
func (m *Metadata) q(s string) string {
	if m.dialect == dialectSQLite {
		return s
	}
	m.qmu.Lock()
	defer m.qmu.Unlock()
	if r, ok := m.queries[s]; ok {
		return r
	}
	var b strings.Builder
	n := 0
	for _, c := range s {
		if c == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	r := b.String()
	m.queries[s] = r
	return r
}

// stmt returns a cached prepared statement for query (in the backend's
// dialect) on the reading pool, or nil when statements are not cached or
// preparing failed (the caller then runs the query unprepared, which
// reports the error).
func (m *Metadata) stmt(ctx context.Context, query string) *sql.Stmt {
	if m.dialect != dialectSQLite {
		return nil
	}
	m.smu.Lock()
	st, ok := m.stmts[query]
	closed := m.stmts == nil
	m.smu.Unlock()
	if ok || closed {
		return st
	}
	st, err := m.r.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	m.smu.Lock()
	defer m.smu.Unlock()
	if prev, ok := m.stmts[query]; ok || m.stmts == nil {
		st.Close()
		return prev
	}
	m.stmts[query] = st
	return st
}

// readRow runs a single-row read, written with ? placeholders, on the
// reading pool.
func (m *Metadata) readRow(ctx context.Context, query string, args ...any) *sql.Row {
	query = m.q(query)
	if st := m.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return m.r.QueryRowContext(ctx, query, args...)
}

// read runs a read, written with ? placeholders, on the reading pool.
func (m *Metadata) read(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	query = m.q(query)
	if st := m.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return m.r.QueryContext(ctx, query, args...)
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// maxTxAttempts bounds retries of transactions that PostgreSQL aborted
// for serialization failures or deadlocks.
const maxTxAttempts = 5

// tx runs fn in a write transaction (BEGIN IMMEDIATE on SQLite), retrying
// it when the database reports a transient conflict. fn must not use m.r
// or m.w.
func (m *Metadata) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := m.tx1(ctx, fn)
		if err == nil || attempt == maxTxAttempts || !m.retryable(err) || ctx.Err() != nil {
			return err
		}
	}
}

func (m *Metadata) tx1(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := m.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func (m *Metadata) retryable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "40001" || pe.Code == "40P01"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code() & 0xff
		return c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED
	}
	return false
}

// isUniqueViolation reports whether err is a primary-key or unique
// constraint failure.
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
	}
	return false
}

// nanos encodes t as Unix nanoseconds; the zero time is 0.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromNanos decodes nanos' encoding into a UTC time.
func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// limitClause returns " LIMIT ?" and n as its argument, or nothing when n
// is negative (no limit).
func limitClause(n int) (string, []any) {
	if n < 0 {
		return "", nil
	}
	return " LIMIT ?", []any{n}
}
