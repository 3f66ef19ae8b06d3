// Package scan defines how Berth finds known vulnerabilities in images:
// the [Scanner] interface, the [Report] it returns, the [Inventory] of
// packages that indexing scanners compute once per manifest, and the
// [Pipeline] that runs scanners on pushed images and rescans them when
// vulnerability data changes.
//
// Scanners take go-containerregistry's v1.Image, so that any image source
// (a registry via remote.Image, an OCI layout, a tarball, Berth's own
// storage) can be scanned; an index is scanned image by image with
// [ScanIndex]. Implementations:
//
//   - scan/native: offline scanner; inventories dpkg, apk, Go binaries,
//     npm and PyPI packages and matches them against OSV data on disk;
//   - scan/trivyscan, scan/grypescan: the JSON output of Trivy and Grype;
//   - scan/harbor: any Harbor Scanner Adapter (API v1.1) over HTTP;
//   - scan/scantest: a fake with scripted results, and the conformance
//     suite RunScannerTests.
//
// Optional upgrades are found by type assertion: [DBVersioner] (the
// vulnerability-data version, to rescan when it changes) and
// [Indexer]/[Matcher] (inventory once, match many times).
//
// # Pipeline
//
// [Pipeline] runs a Scanner in the background: [Pipeline.OnPush] and
// [Pipeline.OnPull] queue work without waiting, bounded workers scan
// images opened through an [ImageSource] (Berth's storage, or
// [RemoteSource] for a registry over HTTP), failed scans are retried with
// exponential backoff and end as StatusFailed reports, and results are
// stored with driver.ScanResults (kinds driver.ScanInventory and
// driver.ScanReport, keyed by digest and scanner name). With a [Catalog],
// every image pushed or pulled within PipelineOptions.RescanWindow (30
// days) is rescanned when the scanner's data version changes. When the
// result store also implements driver.ScanJobs (storage/sqlmeta and
// storage/memmeta do), jobs are durable and shared by every registry
// node: claimed with a lease, retried with backoff, removed when done;
// otherwise they are queued in memory and survive restarts of a single
// process with a [JobStore] ([FileJobs]). Durability is described on
// Pipeline. Every stored report comes with an [EventScanCompleted]
// outbox event, in the same transaction. Reports are encoded for other
// tools by scan/sarif (SARIF 2.1.0) and scan/cyclonedx (CycloneDX VEX),
// and served by scan/scanapi, the management API's vulnerability routes.
// storage/imagesource is the ImageSource reading images straight from
// Berth's storage.
//
// # Report JSON
//
// A Report encodes as one JSON object whose field names and meanings are
// stable for a given [ReportSchema]:
//
//	{
//	  "schema": "berth.dev/scan-report/v1",
//	  "scanner": {"name": "berth-native", "version": "1"},
//	  "dbVersion": "sha256:…",
//	  "digest": "sha256:…",
//	  "status": "Succeeded",          // Pending | Succeeded | Unknown | Failed
//	  "reason": "…",                  // for Unknown and Failed
//	  "lastScanned": "2026-11-23T08:00:00Z", // RFC 3339, absent when Pending
//	  "os": "debian 12",
//	  "vulnerabilities": [{
//	    "id": "CVE-2023-4911", "aliases": ["DSA-5514-1"],
//	    "package": {"name": "libc6", "version": "2.36-9", "ecosystem": "Debian:12",
//	                "purl": "pkg:deb/debian/libc6@2.36-9?distro=debian-12",
//	                "sourceName": "glibc", "location": "/var/lib/dpkg/status"},
//	    "fixedVersion": "2.36-9+deb12u3", "fixable": true,
//	    "ratings": [{"source": "nvd", "vector": "CVSS:3.1/…", "version": "3.1",
//	                 "score": 7.8, "severity": "High"}],
//	    "score": 7.8, "severity": "High", "severitySource": "nvd",
//	    "description": "…", "references": ["https://…"]
//	  }],
//	  "summary": {"total": 1, "critical": 0, "high": 1, "medium": 0, "low": 0,
//	              "none": 0, "unknown": 0, "fixable": 1}
//	}
//
// Optional fields are omitted when empty; "vulnerabilities" is always an
// array. [Report.Finalize] puts a report in canonical form (scores
// recomputed from vectors with cvss.Highest, findings, aliases and
// references sorted), so that equal scans encode to equal bytes. Severity
// names are those of [Severity]: "Unknown" (no source rated the
// vulnerability), "None", "Low", "Medium", "High", "Critical".
//
// # Errors
//
// A scan that ran but could not analyse the image is not an error: its
// report has [StatusUnknown]. Scanners return errors only when they could
// not scan (the Pipeline retries those); errors from a cancelled context
// match ctx.Err() with errors.Is. [ErrQueueFull] and [ErrClosed] carry
// Berth's error codes (ResourceExhausted, FailedPrecondition) so that the
// management API maps them to HTTP statuses in its one table. Messages
// start with the package name.
//
// # Concurrency
//
// Reports are plain values owned by whoever holds them. Scanner
// implementations, ScanIndex and Pipeline are safe for concurrent use.
//
// # Security
//
// Image contents, vulnerability feeds and external scanners' output are
// untrusted: scores are always recomputed from vectors rather than taken
// from a feed, and parsers bound what they read (see each subpackage).
package scan
