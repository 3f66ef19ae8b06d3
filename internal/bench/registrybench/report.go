package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
)

// Ratio compares registryd with each peer on one measurement. For
// throughputs and request rates a ratio above 1 means registryd is faster;
// for rss-peak a ratio below 1 means registryd uses less memory.
type Ratio struct {
	Measurement  string  `json:"measurement"`
	BlobSize     int64   `json:"blobSize"`
	Label        string  `json:"label"`
	Registryd    float64 `json:"registryd"`
	Unit         string  `json:"unit"`
	Distribution float64 `json:"vsDistribution,omitempty"` // registryd / distribution
	GGCR         float64 `json:"vsGGCR,omitempty"`         // registryd / ggcr
	Goal         string  `json:"goal,omitempty"`
	Pass         *bool   `json:"pass,omitempty"`
}

// goal is a target the project tracks for registryd.
type goal struct {
	text string
	ok   func(r Ratio) bool
}

func goalFor(m string, size int64) *goal {
	switch m {
	case mPushMono, mPushChunked:
		return &goal{"≥ 1.5× distribution", func(r Ratio) bool { return r.Distribution >= 1.5 }}
	case mPull:
		return &goal{"≥ 1× distribution", func(r Ratio) bool { return r.Distribution >= 1 }}
	case mManifestGet:
		return &goal{"≥ 3× distribution", func(r Ratio) bool { return r.Distribution >= 3 }}
	case mRSSPeak:
		return &goal{"< 200 MiB", func(r Ratio) bool { return r.Registryd < 200 }}
	}
	return nil
}

func ratios(results []Result) []Ratio {
	type key struct {
		m    string
		size int64
	}
	by := map[string]map[key]Result{}
	for _, r := range results {
		if by[r.Registry] == nil {
			by[r.Registry] = map[key]Result{}
		}
		by[r.Registry][key{r.Measurement, r.BlobSize}] = r
	}
	var out []Ratio
	for _, r := range results {
		if r.Registry != nameRegistryd {
			continue
		}
		k := key{r.Measurement, r.BlobSize}
		ra := Ratio{Measurement: r.Measurement, BlobSize: r.BlobSize, Label: r.label(), Registryd: r.Value, Unit: r.Unit}
		if d, ok := by[nameDistribution][k]; ok && d.Value > 0 {
			ra.Distribution = r.Value / d.Value
		}
		if g, ok := by[nameGGCR][k]; ok && g.Value > 0 {
			ra.GGCR = r.Value / g.Value
		}
		if g := goalFor(r.Measurement, r.BlobSize); g != nil {
			ra.Goal = g.text
			// A ratio goal needs the distribution figure.
			if r.Measurement == mRSSPeak || ra.Distribution > 0 {
				p := g.ok(ra)
				ra.Pass = &p
			}
		}
		out = append(out, ra)
	}
	return out
}

func (rep *Report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

func num(v float64) string {
	switch {
	case v == 0:
		return "-"
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func (rep *Report) writeText(w io.Writer) {
	sha := "no SHA-NI"
	if rep.SHANI {
		sha = "SHA-NI"
	}
	fmt.Fprintf(w, "registrybench %s  host %s  %d CPUs (%s, %s)  %s\n", rep.Date.Format("2006-01-02 15:04 MST"), rep.Host, rep.CPUs, rep.CPUModel, sha, rep.GoVersion)
	sizes := make([]string, len(rep.Sizes))
	for i, s := range rep.Sizes {
		sizes[i] = formatSize(s)
	}
	fmt.Fprintf(w, "blobs %s, each push/pull kind ≥ %d times and ≥ %s per size, chunk %s, pull verify %v; manifest GET: %d clients for %s",
		strings.Join(sizes, ","), rep.Reps, formatSize(rep.MinBytes), formatSize(rep.Chunk), rep.Verify, rep.Concurrency, rep.ManifestDur)
	if rep.Rounds > 1 {
		fmt.Fprintf(w, "; best of %d rounds", rep.Rounds)
	}
	fmt.Fprint(w, "\n")
	if busy := rep.busiest(); busy > 0.10 {
		fmt.Fprintf(w, "WARNING: other processes used up to %.0f%% of the machine's CPU time during a measurement (column others): compare figures with care, use -rounds, or run on an idle machine\n", busy*100)
	}
	fmt.Fprint(w, "\n")

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "registry\tmeasurement\tvalue\tunit\tp50 ms\tp99 ms\tops\tserver CPU s\tclient CPU s\tothers CPU s\t")
	for _, r := range rep.Results {
		p50, p99 := "", ""
		if r.Measurement == mManifestGet {
			p50, p99 = fmt.Sprintf("%.2f", r.P50ms), fmt.Sprintf("%.2f", r.P99ms)
		}
		cpu, ccpu, ops := fmt.Sprintf("%.2f", r.ServerCPU), fmt.Sprintf("%.2f", r.ClientCPU), fmt.Sprint(r.Requests)
		if r.Measurement == mRSSPeak {
			cpu, ccpu, ops = fmt.Sprintf("(%.1f so far)", r.ServerCPU), "", ""
		}
		ocpu := fmt.Sprintf("%.2f", r.OtherCPU)
		if r.Measurement == mRSSPeak {
			ocpu = ""
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Registry, r.label(), num(r.Value), r.Unit, p50, p99, ops, cpu, ccpu, ocpu)
	}
	tw.Flush()

	if len(rep.Ratios) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "measurement\tregistryd\tunit\t÷ distribution\t÷ ggcr\tgoal\t\t")
		for _, r := range rep.Ratios {
			status := ""
			if r.Pass != nil {
				status = map[bool]string{true: "PASS", false: "MISS"}[*r.Pass]
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Label, num(r.Registryd), r.Unit, ratio(r.Distribution), ratio(r.GGCR), r.Goal, status)
		}
		tw.Flush()
	}
	for _, n := range rep.Notes {
		fmt.Fprintln(w, "NOTE:", n)
	}
	for _, f := range rep.Failures {
		fmt.Fprintln(w, "FAILED:", firstLine(f))
	}
}

func ratio(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f×", v)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

// busiest is the largest share of the machine's CPU time that other
// processes took during any one measurement of a second or more (shorter
// ones are below what the 10 ms CPU-time ticks can tell).
func (rep *Report) busiest() float64 {
	var worst float64
	for _, r := range rep.Results {
		if r.Seconds >= 1 && rep.CPUs > 0 {
			worst = max(worst, r.OtherCPU/(r.Seconds*float64(rep.CPUs)))
		}
	}
	return worst
}
