package native_test

import (
	"archive/zip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/scan/native"
)

const (
	benchPackages   = 500
	benchAdvisories = 100_000
)

// benchRecords returns n synthetic OSV records: a quarter about the
// image's packages (every package gets ~50, half of them affecting its
// installed version), the rest about other packages of the same and other
// ecosystems.
func benchRecords(n int) []*native.Advisory {
	recs := make([]*native.Advisory, 0, n)
	for i := range n {
		a := &native.Advisory{
			ID:         fmt.Sprintf("BENCH-%06d", i),
			Aliases:    []string{fmt.Sprintf("CVE-2026-%06d", i)},
			Summary:    "synthetic advisory for benchmarking",
			Severity:   []native.OSVSeverity{{Type: "CVSS_V3", Score: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}},
			References: []native.Reference{{Type: "WEB", URL: fmt.Sprintf("https://example.invalid/%d", i)}},
		}
		var af native.Affected
		switch {
		case i%4 == 0: // about an installed package
			af.Package.Ecosystem, af.Package.Name = "Debian:12", fmt.Sprintf("src%03d", (i/4)%benchPackages)
		case i%4 == 1:
			af.Package.Ecosystem, af.Package.Name = "Debian:12", fmt.Sprintf("other%06d", i)
		case i%4 == 2:
			af.Package.Ecosystem, af.Package.Name = "Alpine:v3.19", fmt.Sprintf("src%03d", i%benchPackages)
		default:
			af.Package.Ecosystem, af.Package.Name = "Go", fmt.Sprintf("example.com/mod%06d", i)
		}
		fixed := "1.0-1"
		if i%8 == 0 {
			fixed = "9:2.0-1~deb12u1"
		}
		af.Ranges = []native.Range{{Type: "ECOSYSTEM", Events: []native.Event{{Introduced: "0"}, {Fixed: fixed}}}}
		a.Affected = []native.Affected{af}
		recs = append(recs, a)
	}
	return recs
}

func benchStatus() []byte {
	var b strings.Builder
	for i := range benchPackages {
		fmt.Fprintf(&b, "Package: pkg%03d\nStatus: install ok installed\nSource: src%03d\nVersion: 1:1.%d-%d+deb12u1\nArchitecture: amd64\nDescription: package %d\n long description line\n\n", i, i, i, i%7, i)
	}
	return []byte(b.String())
}

func BenchmarkScan500x100k(b *testing.B) {
	db, err := native.NewDB(benchRecords(benchAdvisories))
	if err != nil {
		b.Fatal(err)
	}
	s := newScanner(b, db)
	img := image(b, layer(b,
		file{Name: "etc/os-release", Body: []byte("ID=debian\nVERSION_ID=\"12\"\n")},
		file{Name: "var/lib/dpkg/status", Body: benchStatus()},
	))
	ctx := context.Background()
	r, err := s.Scan(ctx, img, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		if _, err := s.Scan(ctx, img, nil); err != nil {
			b.Fatal(err)
		}
	}
	cpu.report(b)
	b.ReportMetric(float64(r.Summary.Total), "findings")
}

// cpuTimer measures the process's CPU time (user and system, all
// threads, GC included), a figure less disturbed than wall time by other
// load on a shared machine.
type cpuTimer struct{ start time.Duration }

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU() cpuTimer { return cpuTimer{cpuNow()} }

func (c cpuTimer) report(b *testing.B) {
	b.ReportMetric(float64(cpuNow()-c.start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}

func BenchmarkMatch500x100k(b *testing.B) {
	db, err := native.NewDB(benchRecords(benchAdvisories))
	if err != nil {
		b.Fatal(err)
	}
	s := newScanner(b, db)
	img := image(b, layer(b,
		file{Name: "etc/os-release", Body: []byte("ID=debian\nVERSION_ID=\"12\"\n")},
		file{Name: "var/lib/dpkg/status", Body: benchStatus()},
	))
	ctx := context.Background()
	inv, err := s.Index(ctx, img)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		if _, err := s.Match(ctx, inv); err != nil {
			b.Fatal(err)
		}
	}
	cpu.report(b)
}

// BenchmarkLoadDB100k loads 100k records from one zip, as osv.dev
// publishes them, and reports the heap the DB keeps.
func BenchmarkLoadDB100k(b *testing.B) {
	zipPath := filepath.Join(b.TempDir(), "all.zip")
	f, err := os.Create(zipPath)
	if err != nil {
		b.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for _, a := range benchRecords(benchAdvisories) {
		w, err := zw.Create(a.ID + ".json")
		if err != nil {
			b.Fatal(err)
		}
		json.NewEncoder(w).Encode(a)
	}
	zw.Close()
	f.Close()
	b.ResetTimer()
	var cpu time.Duration
	for range b.N {
		b.StopTimer()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		c := cpuNow()
		b.StartTimer()
		db, err := native.LoadDB(zipPath)
		if err != nil || db.Len() != benchAdvisories {
			b.Fatal(err, db.Len())
		}
		b.StopTimer()
		cpu += cpuNow() - c
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MiB-retained")
		runtime.KeepAlive(db)
		b.StartTimer()
	}
	b.ReportMetric(float64(cpu)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}
