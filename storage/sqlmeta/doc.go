// Package sqlmeta is the SQL metadata backend for
// [github.com/berth-dev/berth/storage]: SQLite embedded in the process (the
// default, pure Go, no cgo) or PostgreSQL shared by any number of registry
// nodes. One code base serves both; the schema differs only where the
// dialects do, in per-dialect migration files embedded in the binary.
//
// It implements every interface in storage/driver (driver.Metadata,
// driver.Registry and driver.ScanJobs) and passes the conformance suite in
// storage/storagetest. Scan jobs (migration 0004, table scan_jobs) are
// claimed like outbox events: on PostgreSQL with FOR UPDATE SKIP LOCKED,
// so that nodes claim disjoint jobs without waiting for each other.
//
// # URLs
//
// Open and URLOpener.OpenMetadataURL accept the URLs below. Importing the
// package also registers the sqlite, postgres and postgresql schemes with
// driver.DefaultMetadataURLMux.
//
//	sqlite:///var/lib/berth/meta.db   absolute path
//	sqlite://./berth-data/meta.db     path relative to the working directory
//	sqlite://:memory:                 a private in-memory database (tests)
//	postgres://user@host:5432/db?sslmode=verify-full
//	postgresql://…                    alias of postgres://
//
// SQLite URLs take no query parameters. PostgreSQL URLs accept sslmode,
// sslrootcert, sslcert, sslkey, sslsni, connect_timeout, application_name,
// target_session_attrs and search_path, passed to the client unchanged.
// Any other query parameter is an error. Prefer supplying the PostgreSQL
// password through PGPASSWORD or a passfile rather than in the URL; either
// way it is redacted (see Redact) from every error and from String.
//
// Open creates the SQLite file if needed and applies pending schema
// migrations on every start-up, in one transaction: concurrent Opens of one
// database (several nodes starting together) serialise on a PostgreSQL
// advisory lock or on SQLite's write lock (BEGIN IMMEDIATE), and the later
// ones find the schema current. A database migrated by a newer release is
// refused.
//
// # Events
//
// Every state-changing method takes trailing driver.Event values and
// inserts them into the outbox table in the same transaction as the
// change, so an event exists exactly when its change committed. A relay
// claims events with ClaimEvents (a lease; FOR UPDATE SKIP LOCKED on
// PostgreSQL, so relays on several nodes take disjoint batches), publishes
// them and deletes them with AckEvents; delivery is at least once.
//
// # Errors
//
// Methods return errors wrapping driver.ErrNotFound, driver.ErrAlreadyExists,
// driver.ErrConflict and driver.ErrInvalidArgument exactly where the
// storage/driver contracts say;
// test them with errors.Is. A cancelled or expired context yields an error
// wrapping context.Canceled or context.DeadlineExceeded. Other errors are
// database failures, prefixed "sqlmeta:" and never containing credentials.
//
// # Concurrency
//
// A *Metadata is safe for concurrent use, and any number of them, in one
// process or many, may share one database. Every decision about who wins a
// race is made inside the database in one statement or transaction:
// first-writer-wins inserts use INSERT … ON CONFLICT DO NOTHING,
// compare-and-set updates are conditional UPDATEs on a version, and
// multi-statement changes run in transactions (BEGIN IMMEDIATE on SQLite,
// READ COMMITTED with row locks on PostgreSQL, retried on serialisation
// failures and deadlocks).
//
// SQLite runs in WAL mode with synchronous=FULL, foreign keys on and a busy
// timeout (Options.BusyTimeout). Each Metadata writes through exactly one
// connection, so writers in a process queue instead of failing with
// SQLITE_BUSY, and reads through a small pool that never blocks the writer.
//
// PostgreSQL is reached through database/sql with the pgx driver
// (github.com/jackc/pgx/v5/stdlib), so both dialects share every query and
// transaction helper; Options.MaxConns bounds the pool.
//
// # Schema
//
// Times are stored as Unix nanoseconds (so between the years 1678 and 2262)
// and returned in UTC; the zero time is stored as 0. Lists are
// byte-ordered on both dialects (PostgreSQL key columns use the "C"
// collation), the order of Go's string comparison. Record fields without
// their own columns (parts, hashes, labels, platforms, annotations) are
// JSON text.
//
// # As
//
// Metadata.As supports **sql.DB (the pool that writes; for PostgreSQL the
// only pool).
//
// # Security
//
// URLs and errors are redacted of passwords. Open creates an SQLite
// database file, and any missing parent directories, readable by the
// owner only (0600 and 0700). Data is stored as the
// storage package hands it over: blob data keys arrive wrapped by a
// key-encryption key, and token secrets arrive hashed.
package sqlmeta
