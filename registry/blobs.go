package registry

import (
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/internal/httprange"
	"github.com/berth-dev/berth/storage"
	"github.com/opencontainers/go-digest"
)

func (h *Handler) blob(q *request) error {
	name := q.rt.name
	d, err := storage.ParseDigest(q.rt.ref)
	if err != nil {
		return classify(err, codeBlobUnknown)
	}
	switch q.r.Method {
	case http.MethodGet, http.MethodHead:
		if err := h.authorize(q, name, auth.Pull); err != nil {
			return err
		}
		return h.getBlob(q, name, d)
	case http.MethodDelete:
		if err := h.authorize(q, name, auth.Delete); err != nil {
			return err
		}
		if err := h.store.UnlinkBlob(q.r.Context(), name, d); err != nil {
			return classify(err, codeBlobUnknown)
		}
		q.w.Header().Set("Content-Length", "0")
		q.w.WriteHeader(http.StatusAccepted)
		return nil
	}
	return methodNotAllowed()
}

func (h *Handler) getBlob(q *request, name string, d digest.Digest) error {
	ctx := q.r.Context()
	desc, err := h.store.StatRepoBlob(ctx, name, d)
	if isStoreNotFound(err) && h.mirrors(name) {
		return h.mirrorBlob(q, name, d)
	}
	if err != nil {
		return classify(err, codeBlobUnknown)
	}
	hd := q.w.Header()
	hd.Set("Docker-Content-Digest", string(d))
	hd.Set("ETag", `"`+string(d)+`"`)
	hd.Set("Accept-Ranges", "bytes")
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("Cache-Control", "max-age=31536000")
	rg := httprange.Range{Start: 0, Length: desc.Size}
	status := http.StatusOK
	if rh := q.r.Header.Get("Range"); rh != "" && q.r.Method == http.MethodGet {
		switch r, err := httprange.Parse(rh, desc.Size); {
		case err == nil:
			rg, status = r, http.StatusPartialContent
			hd.Set("Content-Range", r.ContentRange(desc.Size))
		case errors.Is(err, httprange.ErrMultiple):
			// RFC 9110 lets a server ignore a Range it does not support.
		default:
			// Unsatisfiable, or invalid such as "bytes=500-0": 416, as
			// net/http's ServeContent answers (RFC 9110 §15.5.17).
			return newErr(http.StatusRequestedRangeNotSatisfiable, codeBlobUnknown, "range not satisfiable: "+err.Error()).
				with("Content-Range", "bytes */"+strconv.FormatInt(desc.Size, 10))
		}
	}
	hd.Set("Content-Length", strconv.FormatInt(rg.Length, 10))
	if q.r.Method == http.MethodHead {
		q.w.WriteHeader(http.StatusOK)
		return nil
	}
	rd, err := h.store.OpenBlob(ctx, d, rg.Start, rg.Length)
	if err != nil {
		return classify(err, codeBlobUnknown)
	}
	defer rd.Close()
	q.w.WriteHeader(status)
	if _, err := io.Copy(q.w, rd); err != nil && ctx.Err() == nil {
		// Headers are sent: the client sees a short body. Log it.
		h.opts.Logger.Error("registry: blob read failed mid-stream", "repository", name, "digest", d, "err", err)
		panic(http.ErrAbortHandler) // abort the connection so the client cannot mistake it for success
	}
	return nil
}
