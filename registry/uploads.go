package registry

import (
	"fmt"
	"net/http"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/internal/httprange"
	"github.com/berth-dev/berth/internal/ociname"
	"github.com/berth-dev/berth/storage"
	"github.com/opencontainers/go-digest"
)

// UploadRepositoryLabel is the upload-session label (storage.Upload.Labels)
// naming the repository a session belongs to.
const UploadRepositoryLabel = "repository"

// UploadSubjectLabel is the upload-session label naming the subject of the
// identity that started the session ("anonymous" for anonymous requests):
// what auth.UploadSession.StartedBy needs, so that only the session's
// starter is given the upload grace (auth.WithUploadSessions).
const UploadSubjectLabel = "started-by"

func (h *Handler) upload(q *request) error {
	name := q.rt.name
	want := []auth.Scope{{Type: auth.TypeRepository, Name: name, Actions: []string{auth.Pull, auth.Push}}}
	// A bearer token for a mount must also cover pull on the source: ask
	// for both in the challenge, as clients expect; other identities fall
	// back to a regular upload when they cannot read the source.
	if from := q.r.URL.Query().Get("from"); q.rt.kind == "uploads" && from != "" && from != name &&
		q.r.URL.Query().Get("mount") != "" && isBearer(q.r) && ociname.ValidateName(from) == nil {
		want = append(want, auth.Scope{Type: auth.TypeRepository, Name: from, Actions: []string{auth.Pull}})
	}
	if err := h.authorizeAll(q, want...); err != nil {
		return err
	}
	if q.rt.kind == "uploads" {
		if q.r.Method != http.MethodPost {
			return methodNotAllowed()
		}
		return h.startUpload(q, name)
	}
	ctx := q.r.Context()
	u, err := h.store.ResumeUpload(ctx, q.rt.ref)
	if err == nil && u.Labels()[UploadRepositoryLabel] != name {
		err = storage.ErrNotFound // a session of another repository
	}
	if err != nil {
		return classify(err, codeBlobUploadUnknown)
	}
	switch q.r.Method {
	case http.MethodGet:
		h.uploadAccepted(q, name, u, http.StatusNoContent)
		return nil
	case http.MethodPatch:
		offset := u.Offset()
		if cr := q.r.Header.Get("Content-Range"); cr != "" {
			rg, err := httprange.ParseContentRange(cr)
			if err != nil {
				return newErr(http.StatusBadRequest, codeBlobUploadInvalid, err.Error())
			}
			if rg.Start != u.Offset() {
				return newErr(http.StatusRequestedRangeNotSatisfiable, codeBlobUploadInvalid, "chunk does not start at the end of the upload").
					with("Range", rangeHeader(u.Offset())).with("Location", uploadLocation(name, u))
			}
			if q.r.ContentLength >= 0 && q.r.ContentLength != rg.Length {
				return newErr(http.StatusBadRequest, codeBlobUploadInvalid, "Content-Range and Content-Length disagree")
			}
			offset = rg.Start
		}
		if _, err := u.Append(ctx, offset, q.r.Body, q.r.ContentLength); err != nil {
			re := classify(err, codeBlobUploadUnknown)
			if re.Status == http.StatusRequestedRangeNotSatisfiable || re.Status == http.StatusConflict {
				re.with("Location", uploadLocation(name, u))
			}
			return re
		}
		h.uploadAccepted(q, name, u, http.StatusAccepted)
		return nil
	case http.MethodPut:
		d, err := storage.ParseDigest(q.r.URL.Query().Get("digest"))
		if err != nil {
			return classify(err, codeBlobUploadInvalid)
		}
		if cr := q.r.Header.Get("Content-Range"); cr != "" {
			rg, err := httprange.ParseContentRange(cr)
			if err != nil {
				return newErr(http.StatusBadRequest, codeBlobUploadInvalid, err.Error())
			}
			if rg.Start != u.Offset() {
				return newErr(http.StatusRequestedRangeNotSatisfiable, codeBlobUploadInvalid, "chunk does not start at the end of the upload").
					with("Range", rangeHeader(u.Offset()))
			}
		}
		desc, err := u.Commit(ctx, d, q.r.Body, q.r.ContentLength)
		if err != nil {
			return classify(err, codeBlobUploadUnknown)
		}
		if err := h.store.LinkBlob(ctx, name, desc.Digest, subject(q.id)); err != nil {
			return classify(err, codeBlobUnknown)
		}
		h.blobCreated(q, name, desc.Digest)
		return nil
	case http.MethodDelete:
		if err := u.Cancel(ctx); err != nil {
			return classify(err, codeBlobUploadUnknown)
		}
		q.w.Header().Set("Content-Length", "0")
		q.w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return methodNotAllowed()
}

func (h *Handler) startUpload(q *request, name string) error {
	ctx := q.r.Context()
	qs := q.r.URL.Query()
	if mount := qs.Get("mount"); mount != "" {
		d, err := storage.ParseDigest(mount)
		if err != nil {
			return classify(err, codeBlobUnknown)
		}
		// Mounting needs pull on the source; otherwise (or when the
		// source lacks the blob) fall back to a regular upload, as the
		// specification says. Without "from", the source is any
		// repository the caller may pull that holds the blob.
		from := qs.Get("from")
		if from == "" {
			if from, err = h.mountSource(q, d); err != nil {
				// The search is an optimisation: upload instead.
				h.opts.Logger.Warn("registry: looking for a repository to mount from failed", "repository", name, "digest", d, "err", err)
				from = ""
			}
		}
		if from != "" && h.canMount(q, from, d) {
			if err := h.store.LinkBlob(ctx, name, d, subject(q.id)); err != nil {
				return classify(err, codeBlobUnknown)
			}
			h.blobCreated(q, name, d)
			return nil
		}
	}
	if dg := qs.Get("digest"); dg != "" {
		d, err := storage.ParseDigest(dg)
		if err != nil {
			return classify(err, codeBlobUploadInvalid)
		}
		desc, err := h.store.PutBlob(ctx, q.r.Body, storage.Descriptor{Digest: d, Size: q.r.ContentLength})
		if err != nil {
			return classify(err, codeBlobUploadInvalid)
		}
		if err := h.store.LinkBlob(ctx, name, desc.Digest, subject(q.id)); err != nil {
			return classify(err, codeBlobUnknown)
		}
		h.blobCreated(q, name, desc.Digest)
		return nil
	}
	if _, err := h.store.EnsureRepository(ctx, name, subject(q.id)); err != nil {
		return classify(err, codeNameUnknown)
	}
	u, err := h.store.StartUpload(ctx, &storage.UploadOptions{Labels: map[string]string{UploadRepositoryLabel: name, UploadSubjectLabel: subject(q.id)}})
	if err != nil {
		return classify(err, codeBlobUploadUnknown)
	}
	h.uploadAccepted(q, name, u, http.StatusAccepted)
	return nil
}

func (h *Handler) canMount(q *request, from string, d digest.Digest) bool {
	if from == q.rt.name || h.authorize(q, from, auth.Pull) != nil {
		return false
	}
	_, err := h.store.StatRepoBlob(q.r.Context(), from, d)
	return err == nil
}

// mountSearchLimit bounds how many repositories a mount without "from"
// examines before falling back to a regular upload.
const mountSearchLimit = 1000

// mountSource returns a repository other than the request's that links d
// and that the caller may pull from, or "" when there is none among the
// first mountSearchLimit repositories. It looks only when some repository
// links d, which is one indexed query.
func (h *Handler) mountSource(q *request, d digest.Digest) (string, error) {
	if h.opts.Authorizer == nil {
		return "", nil
	}
	ctx := q.r.Context()
	reg, err := h.store.Registry()
	if err != nil {
		return "", err
	}
	links, _, err := reg.CountBlobReferences(ctx, d)
	if err != nil || links == 0 {
		return "", err
	}
	after := ""
	for seen := 0; seen < mountSearchLimit; {
		page, more, err := reg.ListRepositories(ctx, after, defaultPage)
		if err != nil {
			return "", err
		}
		want := make([]auth.Scope, 0, len(page))
		for _, r := range page {
			if r.Name != q.rt.name {
				want = append(want, auth.Scope{Type: auth.TypeRepository, Name: r.Name, Actions: []string{auth.Pull}})
			}
		}
		granted, err := h.opts.Authorizer.Authorize(ctx, q.id, want)
		if err != nil {
			return "", fmt.Errorf("registry: authorize: %w", err)
		}
		for _, w := range want {
			if !auth.Granted(granted, auth.TypeRepository, w.Name, auth.Pull) {
				continue
			}
			ok, err := reg.BlobLinked(ctx, w.Name, d)
			if err != nil {
				return "", err
			}
			if ok {
				return w.Name, nil
			}
		}
		seen += len(page)
		if !more || len(page) == 0 {
			break
		}
		after = page[len(page)-1].Name
	}
	return "", nil
}

func uploadLocation(name string, u *storage.Upload) string {
	return "/v2/" + name + "/blobs/uploads/" + u.ID()
}

func (h *Handler) uploadAccepted(q *request, name string, u *storage.Upload, status int) {
	hd := q.w.Header()
	hd.Set("Location", uploadLocation(name, u))
	hd.Set("Range", rangeHeader(u.Offset()))
	hd.Set("Docker-Upload-UUID", u.ID())
	hd.Set("Content-Length", "0")
	q.w.WriteHeader(status)
}

func (h *Handler) blobCreated(q *request, name string, d digest.Digest) {
	hd := q.w.Header()
	hd.Set("Location", "/v2/"+name+"/blobs/"+string(d))
	hd.Set("Docker-Content-Digest", string(d))
	hd.Set("Content-Length", "0")
	q.w.WriteHeader(http.StatusCreated)
}
