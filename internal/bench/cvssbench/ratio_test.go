package cvssbench

import (
	"flag"
	"slices"
	"testing"
	"time"

	"github.com/berth-dev/berth/cvss"
	gocvss31 "github.com/pandatix/go-cvss/31"
	gocvss40 "github.com/pandatix/go-cvss/40"
)

var ratio = flag.Bool("ratio", false, "run TestSpeedRatio")

// timeLoop returns the mean time per call of f over n calls.
func timeLoop(n int, f func()) float64 {
	start := time.Now()
	for range n {
		f()
	}
	return float64(time.Since(start).Nanoseconds()) / float64(n)
}

// TestSpeedRatio measures berth and pandatix alternately in short slices,
// so that both see the same machine load (the benchmark machine is
// shared), and reports the median time per parse+score of each and the
// median of the per-slice ratios. Run with -ratio.
func TestSpeedRatio(t *testing.T) {
	if !*ratio {
		t.Skip("use -ratio")
	}
	cases := []struct {
		name            string
		berth, pandatix func()
	}{
		{"v3.1", func() {
			v, _ := cvss.Parse(benchV31)
			sink = v.BaseScore()
		}, func() {
			v, _ := gocvss31.ParseVector(benchV31)
			sink = v.BaseScore()
		}},
		{"v4.0", func() {
			v, _ := cvss.Parse(benchV40)
			sink = v.Score()
		}, func() {
			v, _ := gocvss40.ParseVector(benchV40)
			sink = v.Score()
		}},
		{"v4.0 all metrics", func() {
			v, _ := cvss.Parse(benchV40All)
			sink = v.Score()
		}, func() {
			v, _ := gocvss40.ParseVector(benchV40All)
			sink = v.Score()
		}},
	}
	for _, c := range cases {
		var bs, ps, rs []float64
		for range 200 {
			b := timeLoop(20000, c.berth)
			p := timeLoop(5000, c.pandatix)
			bs, ps, rs = append(bs, b), append(ps, p), append(rs, p/b)
		}
		slices.Sort(bs)
		slices.Sort(ps)
		slices.Sort(rs)
		t.Logf("%-17s berth %6.1f ns/op  pandatix %7.1f ns/op  ratio %.2f× (median of 200 alternating slices; min %.1f vs %.1f)",
			c.name, bs[len(bs)/2], ps[len(ps)/2], rs[len(rs)/2], bs[0], ps[0])
	}
}
