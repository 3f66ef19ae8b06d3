// Package storagetest holds the conformance suites that every storage
// backend must pass, for Berth's own backends and for users writing theirs.
//
// [RunBlobTests] checks a *storage.Store over a bucket and a metadata
// backend: run it with your gocloud.dev bucket driver (or an isolated prefix
// of a real bucket) to prove that blobs, ranges, uploads, encryption, key
// rotation and failure handling behave as the storage package documents.
// The suite injects metadata failures (a crash between "object durable" and
// "metadata committed") and corrupts stored objects, and checks that nothing
// half-written ever becomes visible and that no altered byte is ever read.
//
// [RunMetadataTests] checks a metadata backend (storage/driver): error
// codes, keyset pagination, cascades, cancellation, compare-and-set and
// first-writer-wins races, immutable-tag races, the outbox, and, when the
// backend implements driver.Registry, repositories, manifests, tags and
// their history, referrers, links, references, policies, scan results and
// tokens, and, when it implements driver.ScanJobs, the durable scan-job
// queue (leases, retries, exactly-once claims among concurrent claimers;
// [ScanJobClaimRace] runs the claim race across several handles of one
// database). memmeta, SQLite and PostgreSQL all run it.
//
// The package imports "testing" and is meant for _test.go files only.
package storagetest
