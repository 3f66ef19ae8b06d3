// Package cvssbench compares github.com/berth-dev/berth/cvss with the
// independent implementation github.com/pandatix/go-cvss: exhaustive and
// sampled score agreement tests, and side-by-side benchmarks. It lives in
// its own module so that the main module does not depend on the peer. See
// README.md for the measured figures and the verdict on every
// disagreement.
package cvssbench
