package storagetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// runScanJobTests runs the subtests of driver.ScanJobs, or skips them
// when the backend does not implement it.
func runScanJobTests(t *testing.T, open NewMetadata) {
	jobs := func(t *testing.T) driver.ScanJobs {
		t.Helper()
		m := open(t)
		j, ok := m.(driver.ScanJobs)
		if !ok {
			t.Skipf("%T does not implement driver.ScanJobs", m)
		}
		return j
	}
	t.Run("ScanJobs", func(t *testing.T) {
		t.Parallel()
		t.Run("Enqueue", func(t *testing.T) { t.Parallel(); testScanJobEnqueue(t, jobs(t)) })
		t.Run("Leases", func(t *testing.T) { t.Parallel(); testScanJobLeases(t, jobs(t)) })
		t.Run("Retry", func(t *testing.T) { t.Parallel(); testScanJobRetry(t, jobs(t)) })
		t.Run("ConcurrentClaims", func(t *testing.T) { t.Parallel(); testScanJobConcurrentClaims(t, jobs(t)) })
		t.Run("ConcurrentEnqueue", func(t *testing.T) { t.Parallel(); testScanJobConcurrentEnqueue(t, jobs(t)) })
		t.Run("Cancellation", func(t *testing.T) {
			t.Parallel()
			m := jobs(t)
			c := cancelled()
			if _, err := m.EnqueueScanJob(c, scanJob("a", 0)); err == nil {
				t.Error("EnqueueScanJob with a cancelled context succeeded")
			}
			if _, err := m.ClaimScanJobs(c, at(0), time.Minute, 1); err == nil {
				t.Error("ClaimScanJobs with a cancelled context succeeded")
			}
			got, err := m.ClaimScanJobs(bg, at(0), time.Minute, 10)
			must(t, "ClaimScanJobs", err)
			if len(got) != 0 {
				t.Errorf("a cancelled EnqueueScanJob stored %+v", got[0])
			}
		})
	})
}

// scanJob is a job for the digest of content, due at(n).
func scanJob(content string, n int) *driver.ScanJob {
	return &driver.ScanJob{Repository: "team/app", Digest: digestOf(content), NextAttemptAt: at(n), CreatedAt: at(n)}
}

func jobDigests(js []*driver.ScanJob) []digest.Digest {
	return keys(js, func(j *driver.ScanJob) digest.Digest { return j.Digest })
}

func mustClaim(t *testing.T, m driver.ScanJobs, now time.Time, lease time.Duration, limit int) []*driver.ScanJob {
	t.Helper()
	got, err := m.ClaimScanJobs(bg, now, lease, limit)
	must(t, "ClaimScanJobs", err)
	if got == nil {
		t.Fatal("ClaimScanJobs returned a nil slice")
	}
	return got
}

func testScanJobEnqueue(t *testing.T, m driver.ScanJobs) {
	if got := mustClaim(t, m, at(0), time.Minute, 10); len(got) != 0 {
		t.Errorf("claim from an empty queue = %v", got)
	}
	_, err := m.ClaimScanJobs(bg, at(0), time.Minute, 0)
	wantErr(t, "ClaimScanJobs with limit 0", err, driver.ErrInvalidArgument)
	_, err = m.EnqueueScanJob(bg, &driver.ScanJob{Digest: digestOf("a")})
	wantErr(t, "EnqueueScanJob without a repository", err, driver.ErrInvalidArgument)
	_, err = m.EnqueueScanJob(bg, &driver.ScanJob{Repository: "r"})
	wantErr(t, "EnqueueScanJob without a digest", err, driver.ErrInvalidArgument)

	// Fields the caller does not own are ignored.
	j := scanJob("a", 10)
	j.IfMissing, j.Attempts, j.LastError, j.LeasedUntil, j.ID = true, 7, "x", at(100), 99
	created, err := m.EnqueueScanJob(bg, j)
	if err != nil || !created {
		t.Fatalf("EnqueueScanJob = %v, %v; want created", created, err)
	}
	if got := mustClaim(t, m, at(9), time.Minute, 10); len(got) != 0 {
		t.Errorf("a job due at(10) was claimed at(9): %v", jobDigests(got))
	}
	// A second enqueue of the digest merges: the earlier time wins, and
	// IfMissing stays only if both ask for it.
	again := scanJob("a", 5)
	again.Repository = "other/repo"
	created, err = m.EnqueueScanJob(bg, again)
	if err != nil || created {
		t.Fatalf("second EnqueueScanJob = %v, %v; want not created", created, err)
	}
	later := scanJob("a", 50)
	later.IfMissing = true
	if created, err := m.EnqueueScanJob(bg, later); err != nil || created {
		t.Fatalf("third EnqueueScanJob = %v, %v", created, err)
	}
	got := mustClaim(t, m, at(5), time.Minute, 10)
	if len(got) != 1 {
		t.Fatalf("claim at(5) = %v, want the merged job", jobDigests(got))
	}
	g := got[0]
	if g.ID == 0 || g.Repository != "team/app" || g.Digest != digestOf("a") || g.IfMissing || g.Attempts != 1 ||
		!sameTime(g.NextAttemptAt, at(5)) || !sameTime(g.LeasedUntil, at(5).Add(time.Minute)) || g.LastError != "" || !sameTime(g.CreatedAt, at(10)) {
		t.Errorf("claimed job = %+v", g)
	}
	must(t, "CompleteScanJob", m.CompleteScanJob(bg, g.ID, g.Attempts))
	wantErr(t, "CompleteScanJob twice", m.CompleteScanJob(bg, g.ID, g.Attempts), driver.ErrNotFound)

	// Enqueued again after completion: a new job with a new ID.
	j2 := scanJob("a", 0)
	j2.IfMissing = true
	if created, err := m.EnqueueScanJob(bg, j2); err != nil || !created {
		t.Fatalf("EnqueueScanJob after completion = %v, %v; want created", created, err)
	}
	got = mustClaim(t, m, at(0), time.Minute, 10)
	if len(got) != 1 || got[0].ID == g.ID || got[0].Attempts != 1 || !got[0].IfMissing {
		t.Fatalf("claim of the new job = %+v (old ID %d)", got, g.ID)
	}
	wantErr(t, "CompleteScanJob of the old job's claim", m.CompleteScanJob(bg, g.ID, 1), driver.ErrNotFound)
}

func testScanJobLeases(t *testing.T, m driver.ScanJobs) {
	for i, c := range []string{"c", "a", "b", "d"} {
		if _, err := m.EnqueueScanJob(bg, scanJob(c, []int{2, 1, 1, 3}[i])); err != nil {
			t.Fatal(err)
		}
	}
	first := mustClaim(t, m, at(10), time.Minute, 3)
	// Order: due time, then enqueue order (ID).
	if want := []digest.Digest{digestOf("a"), digestOf("b"), digestOf("c")}; !slices.Equal(jobDigests(first), want) {
		t.Fatalf("first claim = %v, want %v", jobDigests(first), want)
	}
	during := mustClaim(t, m, at(30), time.Minute, 10)
	if !slices.Equal(jobDigests(during), []digest.Digest{digestOf("d")}) {
		t.Errorf("claim during the lease = %v, want only the unclaimed job", jobDigests(during))
	}
	// Extending a lease keeps the job from others.
	a := first[0]
	must(t, "ExtendScanJob", m.ExtendScanJob(bg, a.ID, a.Attempts, at(200)))
	wantErr(t, "ExtendScanJob of a wrong attempt", m.ExtendScanJob(bg, a.ID, a.Attempts+1, at(300)), driver.ErrConflict)
	wantErr(t, "ExtendScanJob of an unknown job", m.ExtendScanJob(bg, 1<<40, 1, at(300)), driver.ErrNotFound)
	// The other leases expire at(70): those jobs go to the next claimer,
	// with Attempts 2 — a crashed worker's attempt counts.
	expired := mustClaim(t, m, at(70), time.Minute, 10)
	if want := []digest.Digest{digestOf("b"), digestOf("c")}; !slices.Equal(jobDigests(expired), want) {
		t.Fatalf("claim after the leases expired = %v, want %v", jobDigests(expired), want)
	}
	for _, j := range expired {
		if j.Attempts != 2 {
			t.Errorf("re-claimed job Attempts = %d, want 2", j.Attempts)
		}
	}
	b := first[1]
	wantErr(t, "CompleteScanJob with an expired, re-claimed lease", m.CompleteScanJob(bg, b.ID, b.Attempts), driver.ErrConflict)
	wantErr(t, "RetryScanJob with an expired, re-claimed lease", m.RetryScanJob(bg, b.ID, b.Attempts, at(0), "x"), driver.ErrConflict)
	must(t, "CompleteScanJob of the current claim", m.CompleteScanJob(bg, expired[0].ID, expired[0].Attempts))
	// An expired lease that nobody claimed again is still the current
	// claim.
	must(t, "CompleteScanJob after the lease expired", m.CompleteScanJob(bg, during[0].ID, during[0].Attempts))
	// At(150), c's second lease has expired, a's extended one has not.
	if got := mustClaim(t, m, at(150), time.Minute, 10); !slices.Equal(jobDigests(got), []digest.Digest{digestOf("c")}) {
		t.Errorf("claim during the extended lease = %v, want only c", jobDigests(got))
	}
	if got := mustClaim(t, m, at(200), time.Minute, 10); !slices.Equal(jobDigests(got), []digest.Digest{digestOf("a")}) || got[0].Attempts != 2 {
		t.Errorf("claim after the extended lease expired = %v", got)
	}
}

func testScanJobRetry(t *testing.T, m driver.ScanJobs) {
	if _, err := m.EnqueueScanJob(bg, scanJob("a", 0)); err != nil {
		t.Fatal(err)
	}
	j := mustClaim(t, m, at(0), time.Hour, 1)[0]
	must(t, "RetryScanJob", m.RetryScanJob(bg, j.ID, j.Attempts, at(40), "layer unreadable"))
	wantErr(t, "RetryScanJob of a released claim", m.RetryScanJob(bg, j.ID, j.Attempts, at(40), "x"), driver.ErrConflict)
	wantErr(t, "CompleteScanJob of a released claim", m.CompleteScanJob(bg, j.ID, j.Attempts), driver.ErrConflict)
	wantErr(t, "RetryScanJob of an unknown job", m.RetryScanJob(bg, 1<<40, 1, at(40), "x"), driver.ErrNotFound)
	if got := mustClaim(t, m, at(39), time.Hour, 1); len(got) != 0 {
		t.Errorf("a job retried at(40) was claimed at(39)")
	}
	got := mustClaim(t, m, at(40), time.Minute, 1)
	if len(got) != 1 || got[0].ID != j.ID || got[0].Attempts != 2 || got[0].LastError != "layer unreadable" || !sameTime(got[0].NextAttemptAt, at(40)) {
		t.Fatalf("claim after the retry time = %+v", got)
	}
	// An enqueue while a retry is pending makes the job due earlier.
	must(t, "RetryScanJob", m.RetryScanJob(bg, j.ID, 2, at(500), "again"))
	if _, err := m.EnqueueScanJob(bg, scanJob("a", 60)); err != nil {
		t.Fatal(err)
	}
	if got := mustClaim(t, m, at(60), time.Minute, 1); len(got) != 1 || got[0].Attempts != 3 {
		t.Errorf("claim after an enqueue moved the retry earlier = %+v", got)
	}
}

func testScanJobConcurrentClaims(t *testing.T, m driver.ScanJobs) {
	ScanJobClaimRace(t, []driver.ScanJobs{m}, 60)
}

// ScanJobClaimRace enqueues n jobs through handles[0], then claims and
// completes them from 6 goroutines per handle, as registry nodes sharing
// one database would (pass several handles opened on the same database
// to test across connections or processes), and checks that every job
// is claimed exactly once and that each claim can be completed. The
// queue must start empty.
func ScanJobClaimRace(t *testing.T, handles []driver.ScanJobs, n int) {
	t.Helper()
	for i := range n {
		if _, err := handles[0].EnqueueScanJob(bg, scanJob(fmt.Sprint(i), i%7)); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	seen := map[int64]int{}
	var wg sync.WaitGroup
	for _, m := range handles {
		for range 6 {
			wg.Go(func() {
				for {
					js, err := m.ClaimScanJobs(bg, at(10), time.Hour, 3)
					if err != nil {
						t.Errorf("ClaimScanJobs: %v", err)
						return
					}
					if len(js) == 0 {
						return
					}
					for _, j := range js {
						mu.Lock()
						seen[j.ID]++
						mu.Unlock()
						if err := m.CompleteScanJob(bg, j.ID, j.Attempts); err != nil {
							t.Errorf("CompleteScanJob of a claimed job: %v", err)
						}
					}
				}
			})
		}
	}
	wg.Wait()
	if len(seen) != n {
		t.Errorf("claimed %d distinct jobs, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("job %d claimed %d times within its lease", id, c)
		}
	}
	if got := mustClaim(t, handles[0], at(1<<20), time.Hour, 10); len(got) != 0 {
		t.Errorf("jobs left after completing all: %v", jobDigests(got))
	}
}

func testScanJobConcurrentEnqueue(t *testing.T, m driver.ScanJobs) {
	var mu sync.Mutex
	created := 0
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			c, err := m.EnqueueScanJob(bg, scanJob("same", i))
			if err != nil {
				t.Errorf("EnqueueScanJob: %v", err)
			}
			if c {
				mu.Lock()
				created++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if created != 1 {
		t.Errorf("%d concurrent enqueues of one digest created a job, want exactly 1", created)
	}
	got := mustClaim(t, m, at(100), time.Hour, 10)
	if len(got) != 1 || !sameTime(got[0].NextAttemptAt, at(0)) {
		t.Errorf("after concurrent enqueues: %+v, want one job due at the earliest time", got)
	}
}
