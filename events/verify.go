package events

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"gocloud.dev/blob"
)

// Problem kinds reported by VerifyAccessLog.
const (
	// ProblemMalformed: a line is not an access record.
	ProblemMalformed = "malformed"
	// ProblemAltered: a record's content differs from what the next
	// record's PrevHash covers (or from the expected head).
	ProblemAltered = "altered"
	// ProblemDeleted: records are missing (a gap in the sequence, or a
	// chain that does not start where expected).
	ProblemDeleted = "deleted"
	// ProblemReordered: a record appears after one with a later sequence
	// number.
	ProblemReordered = "reordered"
)

// Problem is one inconsistency found in an access log.
type Problem struct {
	// Kind is one of the Problem… constants.
	Kind string
	// Seq is the sequence number of the record concerned: the altered
	// or out-of-order record, or the first missing one.
	Seq int64
	// Count is how many records are missing (ProblemDeleted).
	Count int64
	// Line is the 1-based line (or object) where the problem was seen.
	Line int
	// Detail explains.
	Detail string
}

// String describes the problem in one line.
func (p Problem) String() string {
	return fmt.Sprintf("line %d: record %d %s: %s", p.Line, p.Seq, p.Kind, p.Detail)
}

// VerifyOptions says what a verified log must match beyond its own
// consistency. The zero value checks only the records themselves.
type VerifyOptions struct {
	// FirstSeq and FirstPrevHash, when set, are where the chain must
	// start (1 and GenesisHash for a whole log), so that deletions at the
	// head are found.
	FirstSeq      int64
	FirstPrevHash string
	// HeadSeq and HeadHash, when set, are the last record's sequence
	// number and hash as kept elsewhere (AccessLog.Head), so that
	// deletions and alterations at the tail are found.
	HeadSeq  int64
	HeadHash string
}

// VerifyReport is the result of a verification.
type VerifyReport struct {
	// Records is how many records were read.
	Records int
	// FirstSeq and LastSeq are the sequence numbers of the first and
	// last records read.
	FirstSeq, LastSeq int64
	// Problems lists every inconsistency, in log order; empty when the
	// log is intact.
	Problems []Problem
}

// OK reports whether no problem was found.
func (r *VerifyReport) OK() bool { return len(r.Problems) == 0 }

// VerifyAccessLog reads access records, one per line (canonical JSON, or
// log/slog JSON lines with the record under "access"; other slog lines
// are skipped), and checks the hash chain: every record's PrevHash must
// be the hash of the record before it, and sequence numbers must follow
// each other. It reports every deleted, reordered or altered record it
// can tell, and which. An error is returned only when r fails.
//
// A chain alone cannot show that its last records were removed, nor that
// the whole log was rewritten with freshly computed hashes: compare with
// a head kept outside the service (VerifyOptions.HeadSeq/HeadHash) or a
// write-once copy (BucketAccessWriter).
func VerifyAccessLog(r io.Reader, opts *VerifyOptions) (*VerifyReport, error) {
	v := newVerifier(opts)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		v.line(sc.Bytes())
	}
	if err := sc.Err(); err != nil {
		return v.rep, fmt.Errorf("events: read access log: %w", err)
	}
	return v.finish(), nil
}

// VerifyBucketAccessLog verifies the records a BucketAccessWriter wrote
// under prefix, in object-name (sequence) order.
func VerifyBucketAccessLog(ctx context.Context, b *blob.Bucket, prefix string, opts *VerifyOptions) (*VerifyReport, error) {
	v := newVerifier(opts)
	it := b.List(&blob.ListOptions{Prefix: prefix})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return v.rep, fmt.Errorf("events: list access log: %w", err)
		}
		if obj.IsDir || !strings.HasSuffix(obj.Key, ".json") {
			continue
		}
		data, err := b.ReadAll(ctx, obj.Key)
		if err != nil {
			return v.rep, fmt.Errorf("events: read access record %s: %w", obj.Key, err)
		}
		v.line(data)
	}
	return v.finish(), nil
}

type verifier struct {
	opts     VerifyOptions
	rep      *VerifyReport
	n        int
	prev     *AccessRecord
	prevHash string
	maxSeq   int64
	moved    map[int64]bool // sequence numbers seen out of order
}

func newVerifier(opts *VerifyOptions) *verifier {
	v := &verifier{rep: &VerifyReport{}}
	if opts != nil {
		v.opts = *opts
	}
	return v
}

func (v *verifier) add(p Problem) { v.rep.Problems = append(v.rep.Problems, p) }

func (v *verifier) line(b []byte) {
	v.n++
	if len(strings.TrimSpace(string(b))) == 0 {
		return
	}
	rec, err := DecodeAccessRecord(b)
	if err != nil {
		if !strings.Contains(string(b), `"access"`) && strings.Contains(string(b), `"msg"`) {
			return // another slog record
		}
		v.add(Problem{Kind: ProblemMalformed, Line: v.n, Detail: err.Error()})
		return
	}
	h, err := rec.Hash()
	if err != nil {
		v.add(Problem{Kind: ProblemMalformed, Seq: rec.Seq, Line: v.n, Detail: err.Error()})
		return
	}
	v.rep.Records++
	if v.rep.Records == 1 {
		v.rep.FirstSeq = rec.Seq
		if v.opts.FirstSeq > 0 && rec.Seq > v.opts.FirstSeq {
			v.add(Problem{Kind: ProblemDeleted, Seq: v.opts.FirstSeq, Count: rec.Seq - v.opts.FirstSeq, Line: v.n,
				Detail: fmt.Sprintf("the log starts at record %d, not %d", rec.Seq, v.opts.FirstSeq)})
		} else if v.opts.FirstPrevHash != "" && rec.Seq == v.opts.FirstSeq && rec.PrevHash != v.opts.FirstPrevHash {
			v.add(Problem{Kind: ProblemAltered, Seq: rec.Seq, Line: v.n, Detail: "the first record does not continue the expected chain"})
		}
	}
	switch {
	case v.prev == nil:
	case rec.Seq <= v.maxSeq:
		if v.moved == nil {
			v.moved = map[int64]bool{}
		}
		v.moved[rec.Seq] = true
		v.add(Problem{Kind: ProblemReordered, Seq: rec.Seq, Line: v.n,
			Detail: fmt.Sprintf("record %d comes after record %d", rec.Seq, v.maxSeq)})
		// Keep the chain position: a reordered record is checked by
		// neither neighbour.
		return
	case rec.Seq > v.prev.Seq+1:
		missing := rec.Seq - v.prev.Seq - 1
		v.add(Problem{Kind: ProblemDeleted, Seq: v.prev.Seq + 1, Count: missing, Line: v.n,
			Detail: fmt.Sprintf("records %d to %d are missing", v.prev.Seq+1, rec.Seq-1)})
	case rec.PrevHash != v.prevHash:
		v.add(Problem{Kind: ProblemAltered, Seq: v.prev.Seq, Line: v.n - 1,
			Detail: fmt.Sprintf("record %d does not hash to the PrevHash of record %d", v.prev.Seq, rec.Seq)})
	}
	v.prev, v.prevHash = rec, h
	v.maxSeq = max(v.maxSeq, rec.Seq)
	v.rep.LastSeq = rec.Seq
}

func (v *verifier) finish() *VerifyReport {
	v.dropReordered()
	if v.opts.HeadSeq > 0 {
		switch {
		case v.prev == nil || v.prev.Seq < v.opts.HeadSeq:
			last := int64(0)
			if v.prev != nil {
				last = v.prev.Seq
			}
			v.add(Problem{Kind: ProblemDeleted, Seq: last + 1, Count: v.opts.HeadSeq - last, Line: v.n,
				Detail: fmt.Sprintf("the log ends at record %d, the head is record %d", last, v.opts.HeadSeq)})
		case v.prev.Seq == v.opts.HeadSeq && v.opts.HeadHash != "" && v.prevHash != v.opts.HeadHash:
			v.add(Problem{Kind: ProblemAltered, Seq: v.prev.Seq, Line: v.n, Detail: "the last record does not match the head hash"})
		}
	}
	return v.rep
}

// dropReordered removes from the gaps the records that turned up later,
// out of order: they were moved, not deleted.
func (v *verifier) dropReordered() {
	if len(v.moved) == 0 {
		return
	}
	kept := v.rep.Problems[:0]
	for _, p := range v.rep.Problems {
		if p.Kind == ProblemDeleted && p.Count > 0 && p.Count <= 1<<20 {
			var still []int64
			for s := p.Seq; s < p.Seq+p.Count; s++ {
				if !v.moved[s] {
					still = append(still, s)
				}
			}
			if len(still) == 0 {
				continue
			}
			if int64(len(still)) != p.Count {
				p.Seq, p.Count = still[0], int64(len(still))
				p.Detail = fmt.Sprintf("%d records missing, the first %d", p.Count, p.Seq)
			}
		}
		kept = append(kept, p)
	}
	v.rep.Problems = kept
}
