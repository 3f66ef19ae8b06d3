// Package native is Berth's offline vulnerability scanner: it inventories
// the packages in an image's layers and matches them against OSV records
// (https://ossf.github.io/osv-schema/) loaded from local files.
//
//	db, err := native.LoadDB("/var/lib/berth/osv") // directories, *.zip, *.json
//	s, err := native.New(db, nil)
//	report, err := s.Scan(ctx, img, nil)
//
// # Inventory
//
// [Scanner.Index] walks the layers once, top layer first, applying OCI
// whiteouts (".wh.NAME" and opaque ".wh..wh..opq" directories), so that a
// file deleted or replaced by an upper layer is never read. It lists:
//
//   - Debian and Ubuntu packages from /var/lib/dpkg/status (installed
//     ones only) and distroless /var/lib/dpkg/status.d/* files, with their
//     source package (Source: field);
//
//   - Alpine packages from /lib/apk/db/installed, with their origin;
//
//   - Go executables' build information (debug/buildinfo): the Go
//     version as package "stdlib" and every module, for ELF files with an
//     executable bit up to Options.MaxBinarySize;
//
//   - npm packages (node_modules/[@scope/]name/package.json) and Python
//     distributions (*.dist-info/METADATA, *.egg-info/PKG-INFO);
//
//   - the OS from /etc/os-release (or /usr/lib/os-release), which gives
//     OS packages their OSV ecosystem ("Debian:12", "Ubuntu:22.04",
//     "Alpine:v3.19", "Rocky Linux:9", "AlmaLinux:9").
//
//   - RPM packages from rpmdb.sqlite (/var/lib/rpm or
//     /usr/lib/sysimage/rpm; RHEL 9 and its rebuilds, Fedora 33+), read
//     in memory through a read-only SQLite VFS. Older Berkeley DB and NDB
//     databases are detected but not read: such images get
//     scan.StatusUnknown.
//
// Every package carries a package URL. Other ecosystems (Java archives,
// Ruby gems, Rust binaries, PHP, .NET) are not inventoried, and a report
// does not say so: use scan/trivyscan or scan/grypescan where they
// matter.
//
// # Matching
//
// [Scanner.Match] looks each package up by OSV ecosystem and name.
// Distribution packages are matched on the distribution's own advisories
// by the names those feeds use — source package name and version for
// Debian, Ubuntu and Alpine, binary package name and epoch:version-release
// for Rocky Linux and AlmaLinux — never by CPE guessing. Versions are
// compared with each ecosystem's rules: dpkg's for Debian and Ubuntu
// (epochs, the '~' rule), apk-tools' for Alpine, rpmvercmp for RPM
// distributions, semantic versioning for Go and npm (and for SEMVER
// ranges), PEP 440 for PyPI. Ranges are evaluated as the OSV
// schema specifies (introduced, fixed, last_affected; explicit versions
// lists); GIT ranges are ignored. Advisories sharing an ID or alias (a GO-
// record and its GHSA- twin) are merged into one finding, identified by
// its CVE when there is one. Ratings are every CVSS vector of the merged
// records, with the source named after the record's ID prefix ("CVE-" →
// "nvd", "GHSA-" → "ghsa", "GO-" → "go", "DEBIAN-"/"DSA-" → "debian");
// without a vector, GitHub's database_specific.severity is used.
//
// A report is scan.StatusUnknown, with findings for what could be read,
// when no vulnerability data is loaded at all, when the image has an unsupported OS or a package database that was
// not read (RPM; larger than Options.MaxDBSize; malformed), when its
// distribution's package database is missing, when the vulnerability
// data has no records for the image's OS ecosystem (so that a database
// lacking Alpine data does not pass Alpine images silently), or when
// nothing recognisable was found.
//
// # Vulnerability data
//
// [LoadDB] reads osv.dev exports (for example
// https://osv-vulnerabilities.storage.googleapis.com/Debian/all.zip) or
// any directory of OSV JSON files. [DB.Version] hashes the names and
// contents of the files read, so two loads of the same data have the same
// version; it is the scanner's scan.DBVersioner version, and the Pipeline
// rescans when it changes. [Scanner.SetDB] swaps data atomically.
//
// # Concurrency
//
// Scanner and DB are safe for concurrent use. Each scan reads layers
// sequentially and holds at most one executable (≤ MaxBinarySize) in
// memory.
//
// # Security
//
// Image contents are untrusted. Paths are cleaned before use, nothing is
// written to disk (rpmdb.sqlite is opened read-only from memory), symbolic links are never followed, package databases
// are read up to Options.MaxDBSize, manifests and metadata up to fixed
// small bounds, OSV records up to MaxRecordSize, and version strings of
// any shape get a total order without panicking (the comparators are
// fuzzed). CVSS scores are recomputed from vectors.
package native
