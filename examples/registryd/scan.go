package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/auth/token"
	"github.com/berth-dev/berth/registry"
	"github.com/berth-dev/berth/scan"
	"github.com/berth-dev/berth/scan/harbor"
	"github.com/berth-dev/berth/scan/native"
	"github.com/berth-dev/berth/scan/scanapi"
	"github.com/berth-dev/berth/storage"
	"github.com/berth-dev/berth/storage/driver"
	"github.com/berth-dev/berth/storage/imagesource"
)

// vulnDBReloadInterval is how often the offline vulnerability data
// directory is re-read; a change of its contents triggers rescans.
const vulnDBReloadInterval = 10 * time.Minute

// scanning is the running vulnerability-scanning subsystem.
type scanning struct {
	pipeline *scan.Pipeline
	api      *scanapi.Handler
}

// startScanning scans every pushed image in the background and serves the
// vulnerability routes: the native offline scanner over the OSV files in
// --vulndb (or the Harbor Scanner Adapter at --scanner-url, which pulls
// with a short-lived token minted per scan for that repository only); a
// pipeline whose jobs live in the metadata database (shared by every
// node), reading images straight from the store; the rescan loop; and
// GET …/images/{digest}/vulnerabilities and POST …/images/{digest}/scan
// under /api/v1/repositories/, authorized by the registry's policy (pull
// to read, push to trigger).
func startScanning(ctx context.Context, c *config, store *storage.Store, reg driver.Registry, h *registry.Handler,
	svc *token.Service, base string, log *slog.Logger) (*scanning, error) {
	var scanner scan.Scanner
	if c.scannerURL != "" {
		creds, err := harbor.BearerCredentials(base, pullTokenMinter(svc))
		if err != nil {
			return nil, err
		}
		hs, err := harbor.New(c.scannerURL, creds, &harbor.Options{Client: c.outbound.client})
		if err != nil {
			return nil, err
		}
		scanner = hs
		log.Info("scanning with a Harbor Scanner Adapter", "url", redact(c.scannerURL))
	} else {
		if err := os.MkdirAll(c.vulnDB, 0o700); err != nil {
			return nil, err
		}
		db, err := native.LoadDB(c.vulnDB)
		if err != nil {
			return nil, fmt.Errorf("--vulndb: %w", err)
		}
		ns, err := native.New(db, nil)
		if err != nil {
			return nil, err
		}
		scanner = ns
		if db.Len() == 0 {
			log.Warn("no vulnerability data: every report will have status Unknown until OSV files (for example https://osv-vulnerabilities.storage.googleapis.com/Debian/all.zip) are put in the directory",
				"vulndb", c.vulnDB)
		} else {
			log.Info("vulnerability data loaded", "vulndb", c.vulnDB, "records", db.Len(), "version", db.Version())
		}
		go reloadVulnDB(ctx, ns, c.vulnDB, log)
	}
	src, err := imagesource.New(store)
	if err != nil {
		return nil, err
	}
	p, err := scan.NewPipeline(scanner, src, reg, reg, &scan.PipelineOptions{Logger: log})
	if err != nil {
		return nil, err
	}
	api, err := scanapi.NewHandler(p, reg, func(r *http.Request, repo string, write bool) error {
		actions := []string{auth.Pull}
		if write {
			actions = append(actions, auth.Push)
		}
		_, err := h.Authorize(r, repo, actions...)
		return err
	}, &scanapi.HandlerOptions{Logger: log})
	if err != nil {
		return nil, err
	}
	opts := p.Options()
	log.Info("vulnerability scanning", "scanner", scanner.Info().String(), "pipeline", opts.String(), "sharedJobs", p.Durable())
	p.Start(ctx)
	return &scanning{pipeline: p, api: api}, nil
}

// Wrap serves the vulnerability routes and queues a scan of every
// manifest pushed through next.
func (s *scanning) Wrap(next http.Handler) http.Handler {
	return s.api.Wrap(scanapi.QueuePushes(s.pipeline, next))
}

// Close stops the pipeline; its unfinished jobs stay in the database.
func (s *scanning) Close() error { return s.pipeline.Close() }

// reloadVulnDB re-reads the vulnerability data periodically; the
// pipeline's rescan loop then rescans recent images with the new data.
func reloadVulnDB(ctx context.Context, s *native.Scanner, dir string, log *slog.Logger) {
	t := time.NewTicker(vulnDBReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed, err := s.Reload(dir)
		switch {
		case err != nil:
			log.Error("reloading vulnerability data; keeping the previous data", "vulndb", dir, "err", err)
		case changed:
			log.Info("vulnerability data changed; recent images will be rescanned", "records", s.DB().Len(), "version", s.DB().Version())
		}
	}
}

// scanTokenLifetime bounds the tokens minted for external scanners (the
// token service's own lifetime, 5 minutes by default, may shorten it).
const scanTokenLifetime = 15 * time.Minute

// scannerSubject is the subject of the tokens minted for external
// scanners.
const scannerSubject = "berth-scanner"

// scannerSubjects is the token.Revalidator of scannerSubject, so that the
// token service's Verifier, which re-checks the subject of every token it
// accepts, honours the tokens minted for scanners. The identity grants
// nothing itself: the tokens' access claims are their only grants, and a
// refresh (never requested for these tokens) would obtain nothing.
type scannerSubjects struct{}

// Revalidate implements token.Revalidator.
func (scannerSubjects) Revalidate(_ context.Context, subject string) (*auth.Identity, error) {
	if subject != scannerSubject {
		return nil, auth.ErrUnauthenticated
	}
	return &auth.Identity{Subject: scannerSubject, Scopes: []auth.Scope{}}, nil
}

// pullTokenMinter mints, with the registry's token service, a token whose
// only grant is pull on the one repository being scanned.
func pullTokenMinter(svc *token.Service) harbor.TokenMinter {
	return func(ctx context.Context, repo string) (string, error) {
		sc := auth.Scope{Type: auth.TypeRepository, Name: repo, Actions: []string{auth.Pull}}
		id := &auth.Identity{Subject: scannerSubject, Scopes: []auth.Scope{sc}, ExpiresAt: time.Now().Add(scanTokenLifetime)}
		resp, err := svc.Issue(ctx, id, []auth.Scope{sc}, false)
		if err != nil {
			return "", err
		}
		if resp.Scope != sc.String() {
			return "", errors.New("registryd: the token service did not grant pull on " + repo)
		}
		return resp.Token, nil
	}
}
