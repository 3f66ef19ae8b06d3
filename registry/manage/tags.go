package manage

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/internal/ociname"
	"github.com/berth-dev/berth/storage"
	"github.com/berth-dev/berth/storage/driver"
	"github.com/opencontainers/go-digest"
)

// TagChange is one entry of a tag's history.
type TagChange struct {
	// Seq orders changes; the history is paginated by it.
	Seq int64 `json:"seq"`
	// Old is the digest before the change, absent when the tag was
	// created; New the digest after, absent when it was deleted.
	Old digest.Digest `json:"old,omitempty"`
	New digest.Digest `json:"new,omitempty"`
	// At and By say when and by whom the change was made.
	At time.Time `json:"at"`
	By string    `json:"by"`
}

// TagHistory is the body of a page of a tag's history, oldest first.
type TagHistory struct {
	Repository string       `json:"repository"`
	Tag        string       `json:"tag"`
	Changes    []*TagChange `json:"changes"`
}

// Tag is a tag as the API shows it.
type Tag struct {
	Repository string        `json:"repository"`
	Name       string        `json:"name"`
	Digest     digest.Digest `json:"digest"`
	// UpdatedAt and UpdatedBy say when and by whom the tag was last
	// pointed at Digest.
	UpdatedAt time.Time `json:"updatedAt"`
	UpdatedBy string    `json:"updatedBy"`
}

// RestoreRequest is the body of a restore: the digest to point the tag
// back at.
type RestoreRequest struct {
	Digest digest.Digest `json:"digest"`
}

func (h *Handler) checkTag(q *request) *apiError {
	if err := ociname.ValidateTag(q.rt.ref); err != nil {
		return fieldError(http.StatusBadRequest, codeTagInvalid, err.Error(), "tag")
	}
	return nil
}

func (h *Handler) tagHistory(q *request) *apiError {
	if err := h.allow(q, auth.Pull); err != nil {
		return err
	}
	if err := h.checkTag(q); err != nil {
		return err
	}
	n, apiErr := pageSize(q.r)
	if apiErr != nil {
		return apiErr
	}
	var after int64
	if s := q.r.URL.Query().Get("last"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 0 {
			return fieldError(http.StatusBadRequest, codePaginationInvalid, "last must be the seq of the previous page's last change", "last")
		}
		after = v
	}
	page, more, err := h.reg.ListTagHistory(q.r.Context(), q.rt.name, q.rt.ref, after, n)
	if err != nil {
		return repoUnknown(err)
	}
	out := TagHistory{Repository: q.rt.name, Tag: q.rt.ref, Changes: make([]*TagChange, 0, len(page))}
	for _, c := range page {
		out.Changes = append(out.Changes, &TagChange{Seq: c.Seq, Old: c.Old, New: c.New, At: c.At.UTC(), By: c.By})
	}
	if more && len(page) > 0 {
		q.w.Header().Set("Link", nextLink(repositoryPath(q.rt.name)+"/tags/"+q.rt.ref+"/history", n, strconv.FormatInt(page[len(page)-1].Seq, 10)))
	}
	writeJSON(q.w, q.r, http.StatusOK, out)
	return nil
}

// restoreTag points the tag back at a digest from its history that the
// repository still holds, as a push would: honouring immutability,
// recording the change in the history and emitting the tag event.
func (h *Handler) restoreTag(q *request) *apiError {
	if err := h.allow(q, auth.Pull, auth.Push); err != nil {
		return err
	}
	if err := h.checkTag(q); err != nil {
		return err
	}
	b, apiErr := readBody(q, "application/json")
	if apiErr != nil {
		return apiErr
	}
	var body RestoreRequest
	if err := decodeStrict(b, &body); err != nil {
		return err
	}
	if body.Digest == "" {
		return fieldError(http.StatusBadRequest, codeDigestInvalid, "digest is required", "digest")
	}
	d, err := storage.ParseDigest(string(body.Digest))
	if err != nil {
		return fieldError(http.StatusBadRequest, codeDigestInvalid, err.Error(), "digest")
	}
	ctx := q.r.Context()
	name, tag := q.rt.name, q.rt.ref
	found, empty, err := h.inHistory(q, d)
	if err != nil {
		return repoUnknown(err)
	}
	switch {
	case empty:
		return newError(http.StatusNotFound, codeTagUnknown, fmt.Sprintf("tag %s has no history in %s", tag, name))
	case !found:
		return fieldError(http.StatusBadRequest, codeDigestInvalid, fmt.Sprintf("tag %s never pointed at %s", tag, d), "digest")
	}
	if _, err := h.reg.GetManifest(ctx, name, d); err != nil {
		return storageError(err, codeManifestUnknown, fmt.Sprintf("%s is no longer in the repository", d))
	}
	if err := h.store.SetTag(ctx, name, tag, d, q.by()); err != nil {
		return storageError(err, codeManifestUnknown, fmt.Sprintf("%s is no longer in the repository", d))
	}
	t, err := h.reg.GetTag(ctx, name, tag)
	if err != nil {
		// Deleted again since: report what was set.
		if !errors.Is(err, driver.ErrNotFound) {
			return internal(err)
		}
		t = &driver.Tag{Repository: name, Name: tag, Digest: d, UpdatedAt: h.now(), UpdatedBy: q.by()}
	}
	writeJSON(q.w, q.r, http.StatusOK, &Tag{Repository: name, Name: tag, Digest: t.Digest, UpdatedAt: t.UpdatedAt.UTC(), UpdatedBy: t.UpdatedBy})
	return nil
}

// inHistory reports whether the tag ever pointed at d, and whether its
// history is empty.
func (h *Handler) inHistory(q *request, d digest.Digest) (found, empty bool, err error) {
	var after int64
	empty = true
	for {
		page, more, err := h.reg.ListTagHistory(q.r.Context(), q.rt.name, q.rt.ref, after, MaxPageSize)
		if err != nil {
			return false, false, err
		}
		for _, c := range page {
			empty = false
			if c.New == d || c.Old == d {
				return true, false, nil
			}
			after = c.Seq
		}
		if !more || len(page) == 0 {
			return false, empty, nil
		}
	}
}
