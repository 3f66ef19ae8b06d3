package ccc_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/events/eventstest"
	"github.com/berth-dev/berth/lifecycle"
	"github.com/berth-dev/berth/registry/registrytest"
	"github.com/berth-dev/berth/storage"
	"github.com/berth-dev/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

const retentionPolicy = `{"rules":[{"rulePriority":1,"description":"expire after 14 days","selection":{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}}]}`

func TestCCC_CntrReg_CN02_AR01_C02_TR01_RetentionExpiry(t *testing.T) {
	a := assess(t)
	t.Parallel()
	const day = 24 * time.Hour
	t0 := time.Now().UTC().Truncate(time.Second)
	clock := eventstest.NewClock(t0)
	srv := registrytest.NewServer(t, &registrytest.Options{Storage: storage.Options{Now: clock.Now}})
	reg, err := srv.Store.Registry()
	if err != nil {
		t.Fatal(err)
	}
	runner, err := lifecycle.NewRunner(reg, srv.Store, &lifecycle.Options{Clock: clock, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	lh, err := lifecycle.NewHandler(runner, func(r *http.Request, repo string, write bool) error {
		_, err := srv.Handler.Authorize(r, repo, auth.Pull, auth.Push, auth.Delete)
		return err
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewTLSServer(lh.Wrap(srv.Handler))
	t.Cleanup(ts.Close)
	s := &server{URL: ts.URL, client: ts.Client(), Admin: identity{Name: "admin", User: registrytest.AdminUser, Secret: registrytest.AdminPassword}}

	// Five images pushed on days 0, 1, 2, 10 and 12, sharing one layer.
	repo := "team-a/retention"
	shared := randomBytes(2048)
	days := []int{0, 1, 2, 10, 12}
	var imgs []image
	for i, d := range days {
		clock.Advance(time.Duration(d)*day - clock.Now().Sub(t0))
		imgs = append(imgs, s.pushImage(t, s.Admin, repo, "d"+string(rune('0'+i)), shared, randomBytes(512)))
	}
	a.Evidence("in-process registry on a fake clock: pushed 5 images on days 0, 1, 2, 10 and 12, each with its own layer plus one shared layer")
	js := []string{"Content-Type", "application/json"}
	if r := s.do(t, s.Admin, http.MethodPut, "/api/v1/repositories/"+repo+"/lifecycle-policy", []byte(retentionPolicy), js...); r.Status/100 != 2 {
		a.Fatalf("PUT the policy: %d %s", r.Status, r.Body)
	}
	// Day 20: the first three are older than 14 days.
	clock.Advance(20*day - clock.Now().Sub(t0))
	r := s.do(t, s.Admin, http.MethodPost, "/api/v1/repositories/"+repo+"/lifecycle-policy/preview", nil, js...)
	var preview struct {
		Expire []struct {
			Digest digest.Digest `json:"digest"`
		} `json:"expire"`
	}
	if r.Status != http.StatusOK || json.Unmarshal(r.Body, &preview) != nil {
		a.Fatalf("preview: %d %s", r.Status, r.Body)
	}
	var got []digest.Digest
	for _, e := range preview.Expire {
		got = append(got, e.Digest)
	}
	want := []digest.Digest{imgs[0].Digest, imgs[1].Digest, imgs[2].Digest}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		a.Errorf("preview on day 20 lists %v, want the images of days 0, 1 and 2 %v", got, want)
	}
	a.Evidence("PUT the ECR policy (sinceImagePushed > 14 days, tagStatus any); POST …/lifecycle-policy/preview on day 20 lists exactly the 3 images of days 0-2 and changes nothing")

	rep, err := runner.RunOnce(t.Context())
	if err != nil {
		a.Fatalf("runner: %v", err)
	}
	if rep.Expired() != 3 {
		a.Errorf("the run expired %d images, want 3", rep.Expired())
	}
	for i, img := range imgs {
		h := s.do(t, s.Admin, http.MethodHead, "/v2/"+repo+"/manifests/"+img.Digest.String(), nil)
		wantStatus := http.StatusOK
		if i < 3 {
			wantStatus = http.StatusNotFound
		}
		if h.Status != wantStatus {
			a.Errorf("after the run, HEAD the day-%d image: %d, want %d", days[i], h.Status, wantStatus)
		}
	}
	tags := string(s.do(t, s.Admin, http.MethodGet, "/v2/"+repo+"/tags/list", nil).Body)
	if strings.Contains(tags, `"d0"`) || strings.Contains(tags, `"d2"`) || !strings.Contains(tags, `"d3"`) || !strings.Contains(tags, `"d4"`) {
		a.Errorf("tags after the run: %s, want d3 and d4 only", tags)
	}
	a.Evidence("one runner pass on day 20 expired %d images: their manifests answer 404, the tags list is %s, the day-10 and day-12 images remain", rep.Expired(), strings.TrimSpace(tags))

	// Events: one image.expired per deletion.
	expired := 0
	if ob, ok := reg.(driver.Outbox); ok {
		evs, err := ob.ClaimEvents(t.Context(), clock.Now(), time.Minute, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Type == lifecycle.EventImageExpired {
				expired++
			}
		}
		if expired != 3 {
			a.Errorf("%d %s events, want 3", expired, lifecycle.EventImageExpired)
		}
		a.Evidence("the outbox holds %d %s events, one per deleted image (the audit trail of automatic deletions)", expired, lifecycle.EventImageExpired)
	}

	// Past the GC grace, the expired images' own blobs are reclaimed; the
	// shared layer stays.
	clock.Advance(2 * time.Hour)
	st, err := srv.Store.GC(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for i, img := range imgs {
		for _, l := range img.Layers[1:] {
			_, err := srv.Store.StatBlob(t.Context(), l)
			stored := err == nil
			if i >= 3 && !stored {
				a.Errorf("after GC, the own layer of the day-%d image (not expired) is gone: %v", days[i], err)
			}
			if i < 3 && stored {
				h := s.do(t, s.Admin, http.MethodHead, "/v2/"+repo+"/blobs/"+l.String(), nil)
				kept = append(kept, fmt.Sprintf("day %d: HEAD → %d", days[i], h.Status))
			}
		}
	}
	if _, err := srv.Store.StatBlob(t.Context(), imgs[0].Layers[0]); err != nil {
		a.Errorf("after GC, the shared layer is gone: %v", err)
	}
	a.Evidence("online GC past its grace period reclaimed %d blobs (%d bytes); the shared layer and the remaining images' blobs are still stored", st.BlobsDeleted, st.BlobBytes)
	if len(kept) > 0 {
		a.Gap("the expired images' own layers are still stored and still linked to the repository (%s): expiry deletes manifests and tags, but the layers pushed with them stay linked, so GC, which reclaims only blobs no repository links, never removes them", strings.Join(kept, ", "))
	}
	if f := sharedFixIfStarted(); f != nil && strings.Contains(f.Log(), "lifecycle: run finished") {
		a.Evidence("registryd runs the same runner automatically (its log shows \"lifecycle: run finished\" at start, then hourly)")
	}
}

// sharedFixIfStarted returns the shared registryd if a test started it.
func sharedFixIfStarted() *fixture { return sharedFix.f }
