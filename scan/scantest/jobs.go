package scantest

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/berth-dev/berth/scan"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Jobs is an in-memory scan.JobStore.
type Jobs struct {
	mu    sync.Mutex
	jobs  []scan.Job
	saves int
}

// NewJobs returns an empty Jobs.
func NewJobs() *Jobs { return &Jobs{} }

// SaveJobs implements scan.JobStore.
func (s *Jobs) SaveJobs(ctx context.Context, jobs []scan.Job) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jobs = slices.Clone(jobs)
	s.saves++
	return nil
}

// LoadJobs implements scan.JobStore.
func (s *Jobs) LoadJobs(ctx context.Context) ([]scan.Job, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.jobs == nil {
		return []scan.Job{}, nil
	}
	return slices.Clone(s.jobs), nil
}

// Saves returns how many times SaveJobs succeeded.
func (s *Jobs) Saves() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saves
}

// RunJobStoreTests checks the contract of scan.JobStore: an empty store
// loads as an empty, non-nil list; a save is loaded back in order, field
// by field; a save replaces the previous set (also with an empty set);
// cancelled contexts fail both methods; concurrent saves and loads are
// safe and each load sees one whole saved set. newStore is called once
// per subtest and returns an empty store.
func RunJobStoreTests(t *testing.T, newStore func(t *testing.T) scan.JobStore) {
	t.Helper()
	ctx := context.Background()
	jobs := []scan.Job{
		{Repository: "team/app", Digest: hash('a'), Attempt: 2},
		{Repository: "team/other", Digest: hash('b'), IfMissing: true},
	}
	t.Run("Empty", func(t *testing.T) {
		got, err := newStore(t).LoadJobs(ctx)
		if err != nil || got == nil || len(got) != 0 {
			t.Errorf("LoadJobs on an empty store = %v, %v; want [], nil", got, err)
		}
	})
	t.Run("RoundTrip", func(t *testing.T) {
		s := newStore(t)
		if err := s.SaveJobs(ctx, jobs); err != nil {
			t.Fatal(err)
		}
		got, err := s.LoadJobs(ctx)
		if err != nil || !reflect.DeepEqual(got, jobs) {
			t.Errorf("LoadJobs = %+v, %v; want %+v", got, err, jobs)
		}
		if err := s.SaveJobs(ctx, jobs[1:]); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.LoadJobs(ctx); !reflect.DeepEqual(got, jobs[1:]) {
			t.Errorf("after replacing: %+v", got)
		}
		if err := s.SaveJobs(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if got, err := s.LoadJobs(ctx); err != nil || got == nil || len(got) != 0 {
			t.Errorf("after saving nothing: %v, %v", got, err)
		}
	})
	t.Run("Cancelled", func(t *testing.T) {
		s := newStore(t)
		c, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.SaveJobs(c, jobs); !errors.Is(err, context.Canceled) {
			t.Errorf("SaveJobs: %v", err)
		}
		if _, err := s.LoadJobs(c); !errors.Is(err, context.Canceled) {
			t.Errorf("LoadJobs: %v", err)
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		s := newStore(t)
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				if err := s.SaveJobs(ctx, jobs[:i%2+1]); err != nil {
					t.Error(err)
				}
				got, err := s.LoadJobs(ctx)
				if err != nil || (!reflect.DeepEqual(got, jobs[:1]) && !reflect.DeepEqual(got, jobs)) {
					t.Errorf("LoadJobs during saves = %+v, %v", got, err)
				}
			})
		}
		wg.Wait()
	})
}

func hash(c byte) v1.Hash {
	b := make([]byte, 64)
	for i := range b {
		b[i] = c
	}
	return v1.Hash{Algorithm: "sha256", Hex: string(b)}
}
