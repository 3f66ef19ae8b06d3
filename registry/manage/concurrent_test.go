package manage_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
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
