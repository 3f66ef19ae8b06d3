package manage

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/scan"
	"github.com/berth-dev/berth/storage"
	"github.com/berth-dev/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// Image is a manifest stored in a repository (an image, an index or an
// artifact) as the API shows it.
type Image struct {
	// Digest is the manifest's digest.
	Digest digest.Digest `json:"digest"`
	// MediaType is the manifest's media type; ArtifactType its artifact
	// type, when it has one.
	MediaType    string `json:"mediaType"`
	ArtifactType string `json:"artifactType,omitempty"`
	// Tags are the tags pointing at it, sorted.
	Tags []string `json:"tags"`
	// Platforms are the image's platform (from its config) or, for an
	// index, its entries' platforms (from the index's descriptors).
	Platforms []driver.Platform `json:"platforms"`
	// Size is the number of bytes the image occupies: its manifest,
	// config and layers and, for an index, everything of its children in
	// the repository, each distinct blob counted once.
	Size int64 `json:"size"`
	// ManifestSize is the length of the manifest itself.
	ManifestSize int64 `json:"manifestSize"`
	// Subject is the manifest this one refers to (OCI referrers).
	Subject digest.Digest `json:"subject,omitempty"`
	// Children are the manifests an index lists.
	Children []digest.Digest `json:"children,omitempty"`
	// Annotations are the manifest's annotations.
	Annotations map[string]string `json:"annotations,omitempty"`
	// PushedAt is when it was pushed to the repository; LastPulledAt
	// when it was last pulled, absent if never.
	PushedAt     time.Time  `json:"pushedAt"`
	LastPulledAt *time.Time `json:"lastPulledAt,omitempty"`
	// Scan is the state of its vulnerability scan.
	Scan ImageScan `json:"scan"`
}

// ImageScan is the state of an image's latest vulnerability report.
type ImageScan struct {
	// Status is "Pending" (no report yet), "Succeeded", "Unknown" (the
	// image could not be analysed) or "Failed".
	Status scan.Status `json:"status"`
	// Scanner names the scanner of the latest report.
	Scanner string `json:"scanner,omitempty"`
	// LastScanned is when the latest report was made.
	LastScanned *time.Time `json:"lastScanned,omitempty"`
	// Summary counts the latest report's findings.
	Summary *scan.Summary `json:"summary,omitempty"`
}

// ImageList is the body of a page of images.
type ImageList struct {
	Images []*Image `json:"images"`
}

// imageViewer builds Image views, remembering blob sizes across the
// images of one request.
type imageViewer struct {
	h     *Handler
	repo  string
	sizes map[digest.Digest]int64
}

func (h *Handler) viewer(repo string) *imageViewer {
	return &imageViewer{h: h, repo: repo, sizes: map[digest.Digest]int64{}}
}

func (v *imageViewer) view(ctx context.Context, m *driver.Manifest) (*Image, error) {
	img := &Image{Digest: m.Digest, MediaType: m.MediaType, ArtifactType: m.ArtifactType, Platforms: m.Platforms,
		ManifestSize: m.Size, Subject: m.Subject, Children: m.Children, Annotations: m.Annotations,
		PushedAt: m.PushedAt.UTC(), LastPulledAt: utc(m.LastPulledAt), Scan: ImageScan{Status: scan.StatusPending}}
	if img.Platforms == nil {
		img.Platforms = []driver.Platform{}
	}
	tags, err := v.h.reg.TagsOf(ctx, v.repo, m.Digest)
	if err != nil {
		return nil, err
	}
	img.Tags = append([]string{}, tags...)
	if img.Size, err = v.size(ctx, m); err != nil {
		return nil, err
	}
	if img.Scan, err = v.h.scanState(ctx, m.Digest); err != nil {
		return nil, err
	}
	return img, nil
}

// maxDepth bounds the nesting of indexes followed when sizing an image.
const maxDepth = 8

// size adds up the distinct manifests and blobs of m and, for an index,
// of its children in the repository. Children deleted from the repository
// count for nothing.
func (v *imageViewer) size(ctx context.Context, m *driver.Manifest) (int64, error) {
	seen := map[digest.Digest]bool{}
	var total int64
	var walk func(m *driver.Manifest, depth int) error
	walk = func(m *driver.Manifest, depth int) error {
		if seen[m.Digest] {
			return nil
		}
		seen[m.Digest] = true
		total += m.Size
		for _, b := range m.Blobs {
			if seen[b] {
				continue
			}
			seen[b] = true
			n, err := v.blobSize(ctx, b)
			if err != nil {
				return err
			}
			total += n
		}
		if depth >= maxDepth {
			return nil
		}
		for _, c := range m.Children {
			if seen[c] {
				continue
			}
			child, err := v.h.reg.GetManifest(ctx, v.repo, c)
			if errors.Is(err, driver.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if err := walk(child, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	err := walk(m, 0)
	return total, err
}

func (v *imageViewer) blobSize(ctx context.Context, d digest.Digest) (int64, error) {
	if n, ok := v.sizes[d]; ok {
		return n, nil
	}
	desc, err := v.h.store.StatBlob(ctx, d)
	if errors.Is(err, storage.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	v.sizes[d] = desc.Size
	return desc.Size, nil
}

// reportHead is the part of a stored scan.Report the image view shows.
type reportHead struct {
	Status      scan.Status   `json:"status"`
	Scanner     scan.Info     `json:"scanner"`
	LastScanned time.Time     `json:"lastScanned"`
	Summary     *scan.Summary `json:"summary"`
}

// scanState reads the latest vulnerability report of d; Pending when
// there is none.
func (h *Handler) scanState(ctx context.Context, d digest.Digest) (ImageScan, error) {
	st := ImageScan{Status: scan.StatusPending}
	results, err := h.reg.ListScanResults(ctx, d)
	if err != nil {
		return st, err
	}
	var latest time.Time
	for _, r := range results {
		if r.Kind != driver.ScanReport || (!latest.IsZero() && !r.ScannedAt.After(latest)) {
			continue
		}
		var head reportHead
		if err := json.Unmarshal(r.Data, &head); err != nil || head.Status == "" {
			h.opts.Logger.Warn("manage: unreadable scan report", "digest", d, "scanner", r.Scanner, "err", err)
			continue
		}
		latest = r.ScannedAt
		st = ImageScan{Status: head.Status, Scanner: r.Scanner, LastScanned: utc(r.ScannedAt), Summary: head.Summary}
		if head.Status == scan.StatusPending {
			st.LastScanned, st.Summary = nil, nil
		}
	}
	return st, nil
}

func (h *Handler) listImages(q *request) *apiError {
	if err := h.allow(q, auth.Pull); err != nil {
		return err
	}
	n, apiErr := pageSize(q.r)
	if apiErr != nil {
		return apiErr
	}
	var after digest.Digest
	if s := q.r.URL.Query().Get("last"); s != "" {
		d, err := storage.ParseDigest(s)
		if err != nil {
			return fieldError(http.StatusBadRequest, codeDigestInvalid, "last must be the digest of the previous page's last image", "last")
		}
		after = d
	}
	ctx := q.r.Context()
	page, more, err := h.reg.ListManifests(ctx, q.rt.name, after, n)
	if err != nil {
		return repoUnknown(err)
	}
	v := h.viewer(q.rt.name)
	out := make([]*Image, 0, len(page))
	for _, m := range page {
		img, err := v.view(ctx, m)
		if err != nil {
			return internal(err)
		}
		out = append(out, img)
	}
	if more && len(out) > 0 {
		q.w.Header().Set("Link", nextLink(repositoryPath(q.rt.name)+"/images", n, string(out[len(out)-1].Digest)))
	}
	writeJSON(q.w, q.r, http.StatusOK, ImageList{Images: out})
	return nil
}

// manifest returns the route's manifest, after checking the repository
// exists (NAME_UNKNOWN) and holds it (MANIFEST_UNKNOWN).
func (h *Handler) manifest(q *request) (*driver.Manifest, *apiError) {
	d, err := storage.ParseDigest(q.rt.ref)
	if err != nil {
		return nil, fieldError(http.StatusBadRequest, codeDigestInvalid, err.Error(), "digest")
	}
	ctx := q.r.Context()
	m, err := h.reg.GetManifest(ctx, q.rt.name, d)
	if errors.Is(err, driver.ErrNotFound) {
		if _, err := h.reg.GetRepository(ctx, q.rt.name); err != nil {
			return nil, repoUnknown(err)
		}
		return nil, newError(http.StatusNotFound, codeManifestUnknown, "manifest unknown to the repository")
	}
	if err != nil {
		return nil, internal(err)
	}
	return m, nil
}

func (h *Handler) getImage(q *request) *apiError {
	if err := h.allow(q, auth.Pull); err != nil {
		return err
	}
	m, apiErr := h.manifest(q)
	if apiErr != nil {
		return apiErr
	}
	img, err := h.viewer(q.rt.name).view(q.r.Context(), m)
	if err != nil {
		return internal(err)
	}
	writeJSON(q.w, q.r, http.StatusOK, img)
	return nil
}

// maxParentsShown bounds the parents a 409 names.
const maxParentsShown = 20

// deleteImage removes a manifest and the tags pointing at it. An index
// of the repository that lists it keeps it unless ?force=true: forcing
// leaves the index referring to a missing manifest, whose platform can no
// longer be pulled. Referrers of the manifest (signatures, SBOMs) stay.
func (h *Handler) deleteImage(q *request) *apiError {
	if err := h.allow(q, auth.Delete); err != nil {
		return err
	}
	force := false
	if s := q.r.URL.Query().Get("force"); s != "" {
		var err error
		if force, err = strconv.ParseBool(s); err != nil {
			return fieldError(http.StatusBadRequest, codeBodyInvalid, "force must be true or false", "force")
		}
	}
	m, apiErr := h.manifest(q)
	if apiErr != nil {
		return apiErr
	}
	ctx := q.r.Context()
	if !force {
		parents, more, err := h.reg.ListParents(ctx, q.rt.name, m.Digest, "", maxParentsShown)
		if err != nil {
			return repoUnknown(err)
		}
		if len(parents) > 0 {
			return &apiError{status: http.StatusConflict, items: []errorItem{{Code: codeManifestReferenced,
				Message: "an index in the repository lists the manifest; delete the index first, or repeat with ?force=true",
				Detail:  map[string]any{"parents": parents, "more": more}}}}
		}
	}
	if err := h.store.DeleteManifest(ctx, q.rt.name, m.Digest, q.by()); err != nil {
		return storageError(err, codeManifestUnknown, "manifest unknown to the repository")
	}
	q.w.WriteHeader(http.StatusNoContent)
	return nil
}
