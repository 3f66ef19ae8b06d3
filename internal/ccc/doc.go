// Package ccc assesses Berth against the FINOS Common Cloud Controls for
// container registries: the 23 assessment requirements of CCC.CntrReg and
// the CCC.Core controls it imports, listed in [Catalog] and described in
// shared/CCC.md.
//
// The package's tests are the assessment. There is one test per
// requirement, named by both identifiers, the current and the legacy one:
//
//	TestCCC_Core_CN01_AR01_C01_TR01_TLS13Only      CCC.Core.CN01.AR01 = CCC.Core.C01.TR01
//	TestCCC_CntrReg_CN02_AR01_C02_TR01_…           CCC.CntrReg.CN02.AR01 = CCC.CntrReg.C02.TR01
//
// Most tests work as an assessor would, from outside: they build
// examples/registryd once per run, start it as a child process on loopback
// with a fresh data directory and its generated TLS certificate, create
// the identities of shared/CCC.md through POST /api/v1/tokens, and talk
// to it over real TLS. Where the outside cannot observe what a requirement
// is about, they also look inside: at the raw files of its blob bucket,
// at its access log, or at an in-process registry with a fault injected.
//
// # Running
//
//	go test ./internal/ccc                 assess; the report goes to a temporary directory
//	go run ./internal/ccc/cmd/cccreport    assess and rewrite internal/ccc/REPORT.md and ccc-report.json
//
// Environment:
//
//   - BERTH_CCC_REPORT: a directory; when set, the run writes its report
//     there as ccc-report.json (Gemara-shaped records: id, legacyId,
//     title, test, result, evidence) and REPORT.md.
//   - BERTH_CCC_TLP: the data classification to assess for (clear, green,
//     amber or red; default red, where every requirement applies).
//     Requirements that do not apply at it are recorded NotApplicable.
//   - BERTH_CCC_STRICT: when true, a requirement recorded Failed also
//     fails its Go test. By default a requirement that Berth does not meet
//     for want of a mechanism is recorded Failed with the reason and the
//     Go test passes, so that the suite can run in CI while gaps are open;
//     a mechanism that exists but misbehaves always fails the Go test.
//   - BERTH_CCC_REGISTRYD: a registryd binary to assess instead of building
//     examples/registryd from this module.
//   - CI=true with the services of internal/testsvc: the tests that use
//     PostgreSQL and S3 run instead of skipping.
//
// # Results
//
// Passed means the test observed the requirement being met. Failed means
// it is not met, and the evidence says why. NeedsReview means Berth's
// mechanism works as tested but the requirement also needs a person's
// judgement (where a deployment really runs; what TCP itself reveals).
// NotApplicable means the requirement does not apply at the assessed
// classification, or concerns a surface Berth does not have (SSH).
package ccc
