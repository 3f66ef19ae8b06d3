package registry

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/internal/ociname"
	"github.com/berth-dev/berth/storage"
	"github.com/opencontainers/go-digest"
)

func (h *Handler) manifest(q *request) error {
	name, ref := q.rt.name, q.rt.ref
	switch q.r.Method {
	case http.MethodGet, http.MethodHead:
		if err := h.authorize(q, name, auth.Pull); err != nil {
			return err
		}
		return h.getManifest(q, name, ref)
	case http.MethodPut:
		if err := h.authorize(q, name, auth.Pull, auth.Push); err != nil {
			return err
		}
		return h.putManifest(q, name, ref)
	case http.MethodDelete:
		if err := h.authorize(q, name, auth.Delete); err != nil {
			return err
		}
		var err error
		if strings.Contains(ref, ":") {
			err = h.store.DeleteManifest(q.r.Context(), name, digest.Digest(ref), subject(q.id))
		} else {
			err = h.store.DeleteTag(q.r.Context(), name, ref, subject(q.id))
		}
		if err != nil {
			return classify(err, codeManifestUnknown)
		}
		q.w.WriteHeader(http.StatusAccepted)
		return nil
	}
	return methodNotAllowed()
}

func (h *Handler) getManifest(q *request, name, ref string) error {
	ctx := q.r.Context()
	m, err := h.resolveMaybeMirrored(q, name, ref)
	if err != nil {
		return classify(err, codeManifestUnknown)
	}
	hd := q.w.Header()
	hd.Set("Content-Type", m.MediaType)
	hd.Set("Content-Length", strconv.FormatInt(m.Size, 10))
	hd.Set("Docker-Content-Digest", string(m.Digest))
	hd.Set("ETag", `"`+string(m.Digest)+`"`)
	if q.r.Method == http.MethodHead {
		q.w.WriteHeader(http.StatusOK)
		return nil
	}
	if inm := q.r.Header.Get("If-None-Match"); inm != "" && strings.Contains(inm, string(m.Digest)) {
		q.w.WriteHeader(http.StatusNotModified)
		return nil
	}
	b, err := h.store.ReadManifest(ctx, m)
	if err != nil {
		return classify(err, codeManifestUnknown)
	}
	h.store.MarkPulled(name, m.Digest)
	q.w.WriteHeader(http.StatusOK)
	_, _ = q.w.Write(b)
	return nil
}

func (h *Handler) putManifest(q *request, name, ref string) error {
	if q.r.ContentLength > h.opts.MaxManifestBytes {
		return newErr(http.StatusRequestEntityTooLarge, codeSizeInvalid, "manifest is larger than this registry accepts")
	}
	body, err := io.ReadAll(http.MaxBytesReader(q.w, q.r.Body, h.opts.MaxManifestBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return newErr(http.StatusRequestEntityTooLarge, codeSizeInvalid, "manifest is larger than this registry accepts")
		}
		return err
	}
	// A push by digest may name tags in "tag" query parameters
	// (distribution-spec, pushing manifests with tags); the response
	// lists the tags set in OCI-Tag.
	tags := q.r.URL.Query()["tag"]
	if len(tags) > storage.MaxTagsPerPush {
		return newErr(http.StatusBadRequest, codeManifestInvalid, "too many tag parameters")
	}
	for _, t := range tags {
		if err := ociname.ValidateTag(t); err != nil {
			return classify(err, codeManifestUnknown)
		}
	}
	m, err := h.store.PutManifest(q.r.Context(), storage.ManifestInput{
		Repository: name, Reference: ref, ContentType: q.r.Header.Get("Content-Type"), Body: body, Tags: tags, By: subject(q.id),
	})
	if err != nil {
		return classify(err, codeManifestUnknown)
	}
	hd := q.w.Header()
	hd.Set("Location", "/v2/"+name+"/manifests/"+string(m.Digest))
	hd.Set("Docker-Content-Digest", string(m.Digest))
	if m.Subject != "" {
		hd.Set("OCI-Subject", string(m.Subject))
	}
	for _, t := range tags {
		hd.Add("OCI-Tag", t)
	}
	hd.Set("Content-Length", "0")
	q.w.WriteHeader(http.StatusCreated)
	return nil
}
