package manage_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/registry/manage"
	"github.com/berth-dev/berth/storage/driver"
)

// TestConcurrentCreate creates one repository from many clients at once:
// exactly one creates it, the others replace its settings, and the outbox
// holds one created event.
func TestConcurrentCreate(t *testing.T) {
	backends(t, func(t *testing.T, metaURL string) {
		s := newServer(t, metaURL)
		const n = 8
		codes := make(chan int, n)
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				req, _ := http.NewRequest("PUT", s.srv.URL+repos+"/team/race", strings.NewReader(`{"visibility":"public"}`))
				req.SetBasicAuth("admin", adminPassword)
				req.Header.Set("Content-Type", "application/json")
				resp, err := s.srv.Client().Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				codes <- resp.StatusCode
			})
		}
		wg.Wait()
		close(codes)
		count := map[int]int{}
		for c := range codes {
			count[c]++
		}
		if count[201] != 1 || count[200] != n-1 {
			t.Errorf("statuses %v, want one 201 and %d 200", count, n-1)
		}
		if got := s.events(); countOf(got, "dev.berth.repository.created team/race") != 1 {
			t.Errorf("events %v", got)
		}
	})
}

// TestListShortPages lists few visible repositories among many with a
// small examination bound: pages come short, with Links, and together
// list exactly the visible repositories.
func TestListShortPages(t *testing.T) {
	defer manage.SetMaxExamined(3)()
	s := newServer(t, "sqlite://"+filepath.ToSlash(filepath.Join(t.TempDir(), "meta.db")))
	ctx := context.Background()
	now := time.Now()
	var want []string
	for i := range 12 {
		r := &driver.Repository{Name: fmt.Sprintf("r/%02d", i), Visibility: driver.Private, CreatedAt: now, UpdatedAt: now}
		if i%5 == 0 {
			r.Visibility = driver.Public
			want = append(want, r.Name)
		}
		if err := s.reg.CreateRepository(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	pages := 0
	for path := repos + "?n=2"; path != ""; pages++ {
		res := s.do(step{name: "short page", method: "GET", path: path, wantStatus: 200})
		var l manage.RepositoryList
		if err := json.Unmarshal(res.body, &l); err != nil {
			t.Fatal(err)
		}
		if len(l.Repositories) > 2 {
			t.Fatalf("page of %d", len(l.Repositories))
		}
		for _, r := range l.Repositories {
			got = append(got, r.Name)
		}
		path = strings.TrimSuffix(strings.TrimPrefix(res.Header.Get("Link"), "<"), `>; rel="next"`)
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
	}
	if !slices.Equal(got, want) || pages < 4 {
		t.Errorf("listed %v in %d pages, want %v in at least 4", got, pages, want)
	}
}
