package manage

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/internal/errcode"
	"github.com/berth-dev/berth/storage"
	"github.com/berth-dev/berth/storage/driver"
)

// Repository is a repository as the API shows it.
type Repository struct {
	// Name is the repository's name, e.g. "team/app".
	Name string `json:"name"`
	// Visibility is "private" or "public" (anyone may pull).
	Visibility driver.Visibility `json:"visibility"`
	// ImmutableTags forbids moving an existing tag to another digest,
	// except for tags matching one of ImmutableTagExclusions (path.Match
	// patterns).
	ImmutableTags          bool     `json:"immutableTags"`
	ImmutableTagExclusions []string `json:"immutableTagExclusions"`
	// Description is free text for people.
	Description string `json:"description"`
	// CreatedAt and UpdatedAt are when the repository was created and
	// last changed.
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

func viewRepository(r *driver.Repository) *Repository {
	v := &Repository{Name: r.Name, Visibility: r.Visibility, ImmutableTags: r.ImmutableTags,
		ImmutableTagExclusions: slices.Clone(r.ImmutableTagExclusions), Description: r.Description,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
	if v.ImmutableTagExclusions == nil {
		v.ImmutableTagExclusions = []string{}
	}
	return v
}

// RepositoryList is the body of a page of repositories.
type RepositoryList struct {
	Repositories []*Repository `json:"repositories"`
}

// Actions a caller needs on a repository to create, change or delete it:
// all of them, which the bootstrap admin holds, as does a token whose
// scope covers the name with "*".
var ownerActions = []string{auth.Pull, auth.Push, auth.Delete}

// maxExamined bounds the repositories one list request examines: a
// caller who may see few of many repositories gets short pages, each with
// a Link to the next, rather than one request walking the whole catalog.
var maxExamined = 5000

// listRepositories pages through the repositories the caller may pull
// from, and only those.
func (h *Handler) listRepositories(q *request) *apiError {
	// Authenticate once: invalid credentials are a 401, not an empty list.
	if err := h.allow(q); err != nil {
		return err
	}
	n, apiErr := pageSize(q.r)
	if apiErr != nil {
		return apiErr
	}
	ctx := q.r.Context()
	last := q.r.URL.Query().Get("last")
	out := []*Repository{}
	more, examined := true, 0
	for len(out) < n && more && examined < maxExamined {
		page, m, err := h.reg.ListRepositories(ctx, last, min(n, maxExamined-examined))
		if err != nil {
			return internal(err)
		}
		more = m
		if len(page) == 0 {
			break
		}
		for i, r := range page {
			last = r.Name
			examined++
			_, err := h.authorize(q.r, r.Name, auth.Pull)
			switch errcode.Of(err) {
			case errcode.OK:
				out = append(out, viewRepository(r))
			case errcode.Unauthenticated, errcode.PermissionDenied, errcode.NotFound:
				continue
			default:
				return h.authError(err)
			}
			if len(out) == n {
				more = more || i < len(page)-1
				break
			}
		}
	}
	// last is the last repository examined: the next page starts after
	// it, whether or not the caller could see it.
	if more {
		q.w.Header().Set("Link", nextLink(RepositoriesPath, n, last))
	}
	writeJSON(q.w, q.r, http.StatusOK, RepositoryList{Repositories: out})
	return nil
}

func (h *Handler) getRepository(q *request) *apiError {
	if err := h.allow(q, auth.Pull); err != nil {
		return err
	}
	r, err := h.reg.GetRepository(q.r.Context(), q.rt.name)
	if err != nil {
		return repoUnknown(err)
	}
	writeJSON(q.w, q.r, http.StatusOK, viewRepository(r))
	return nil
}

// repositoryBody is the body of PUT: every setting; absent ones take
// their defaults.
type repositoryBody struct {
	Name                   *string           `json:"name"`
	Visibility             driver.Visibility `json:"visibility"`
	ImmutableTags          bool              `json:"immutableTags"`
	ImmutableTagExclusions []string          `json:"immutableTagExclusions"`
	Description            string            `json:"description"`
}

// checkSettings validates the settings a request gives r.
func checkSettings(r *driver.Repository) *apiError {
	if r.Visibility != driver.Private && r.Visibility != driver.Public {
		return fieldError(http.StatusBadRequest, codeBodyInvalid, fmt.Sprintf("visibility must be %q or %q", driver.Private, driver.Public), "visibility")
	}
	if len(r.Description) > MaxDescriptionBytes || !utf8.ValidString(r.Description) {
		return fieldError(http.StatusBadRequest, codeBodyInvalid, fmt.Sprintf("description must be valid UTF-8 of at most %d bytes", MaxDescriptionBytes), "description")
	}
	if len(r.ImmutableTagExclusions) > MaxExclusions {
		return fieldError(http.StatusBadRequest, codeBodyInvalid, fmt.Sprintf("at most %d immutable tag exclusions", MaxExclusions), "immutableTagExclusions")
	}
	for i, p := range r.ImmutableTagExclusions {
		field := fmt.Sprintf("immutableTagExclusions[%d]", i)
		if p == "" || len(p) > MaxExclusionBytes {
			return fieldError(http.StatusBadRequest, codeBodyInvalid, fmt.Sprintf("%s: a pattern of 1 to %d bytes", field, MaxExclusionBytes), field)
		}
		if _, err := path.Match(p, ""); err != nil {
			return fieldError(http.StatusBadRequest, codeBodyInvalid, fmt.Sprintf("%s: %q is not a valid path.Match pattern", field, p), field)
		}
	}
	return nil
}

// putRepository creates the repository, or replaces its settings.
func (h *Handler) putRepository(q *request) *apiError {
	if err := h.allow(q, ownerActions...); err != nil {
		return err
	}
	b, apiErr := readBody(q, "application/json")
	if apiErr != nil {
		return apiErr
	}
	var body repositoryBody
	if err := decodeStrict(b, &body); err != nil {
		return err
	}
	name := q.rt.name
	if body.Name != nil && *body.Name != name {
		return fieldError(http.StatusBadRequest, codeBodyInvalid, "name must be the repository's name in the path (repositories cannot be renamed)", "name")
	}
	if body.Visibility == "" {
		body.Visibility = driver.Private
	}
	now := h.now()
	repo := &driver.Repository{Name: name, Visibility: body.Visibility, ImmutableTags: body.ImmutableTags,
		ImmutableTagExclusions: body.ImmutableTagExclusions, Description: body.Description, CreatedAt: now, UpdatedAt: now}
	if repo.ImmutableTagExclusions == nil {
		repo.ImmutableTagExclusions = []string{}
	}
	if err := checkSettings(repo); err != nil {
		return err
	}
	ctx := q.r.Context()
	err := h.reg.CreateRepository(ctx, repo, repositoryEvent(storage.EventRepositoryCreated, repo, q.by(), now))
	if err == nil {
		q.w.Header().Set("Location", repositoryPath(name))
		writeJSON(q.w, q.r, http.StatusCreated, viewRepository(repo))
		return nil
	}
	if !errors.Is(err, driver.ErrAlreadyExists) {
		return repoUnknown(err)
	}
	return h.update(q, func(cur *driver.Repository) { repo.CreatedAt = cur.CreatedAt; *cur = *repo })
}

// update applies change to the stored repository and writes the result.
// Concurrent updates are applied in some order; the last one wins.
func (h *Handler) update(q *request, change func(*driver.Repository)) *apiError {
	ctx := q.r.Context()
	cur, err := h.reg.GetRepository(ctx, q.rt.name)
	if err != nil {
		return repoUnknown(err)
	}
	before := *cur
	before.ImmutableTagExclusions = slices.Clone(cur.ImmutableTagExclusions)
	change(cur)
	if apiErr := checkSettings(cur); apiErr != nil {
		return apiErr
	}
	if sameSettings(&before, cur) {
		// Nothing changes: nothing is written and no event is sent.
		writeJSON(q.w, q.r, http.StatusOK, viewRepository(&before))
		return nil
	}
	now := h.now()
	cur.UpdatedAt = now
	if err := h.reg.UpdateRepository(ctx, cur, repositoryEvent(storage.EventRepositoryUpdated, cur, q.by(), now)); err != nil {
		return repoUnknown(err)
	}
	writeJSON(q.w, q.r, http.StatusOK, viewRepository(cur))
	return nil
}

// sameSettings reports whether a and b have the same settings.
func sameSettings(a, b *driver.Repository) bool {
	return a.Visibility == b.Visibility && a.ImmutableTags == b.ImmutableTags && a.Description == b.Description &&
		slices.Equal(a.ImmutableTagExclusions, b.ImmutableTagExclusions)
}

// patchRepository applies a JSON merge patch (RFC 7386) to the settings:
// fields present are set, null resets one to its default, absent ones
// stay.
func (h *Handler) patchRepository(q *request) *apiError {
	if err := h.allow(q, ownerActions...); err != nil {
		return err
	}
	b, apiErr := readBody(q, "application/merge-patch+json", "application/json")
	if apiErr != nil {
		return apiErr
	}
	var patch map[string]json.RawMessage
	if err := decodeStrict(b, &patch); err != nil {
		return err
	}
	if patch == nil {
		return newError(http.StatusBadRequest, codeBodyInvalid, "the request body is not a JSON object")
	}
	var set []func(*driver.Repository)
	for k, raw := range patch {
		null := string(raw) == "null"
		var err *apiError
		switch k {
		case "name":
			var s string
			if err = decodeField(k, raw, &s); err == nil && (null || s != q.rt.name) {
				err = fieldError(http.StatusBadRequest, codeBodyInvalid, "name must be the repository's name in the path (repositories cannot be renamed)", "name")
			}
		case "visibility":
			var v driver.Visibility
			if err = decodeField(k, raw, &v); err == nil {
				if null {
					v = driver.Private
				}
				set = append(set, func(r *driver.Repository) { r.Visibility = v })
			}
		case "immutableTags":
			var v bool
			if err = decodeField(k, raw, &v); err == nil {
				set = append(set, func(r *driver.Repository) { r.ImmutableTags = v })
			}
		case "immutableTagExclusions":
			var v []string
			if err = decodeField(k, raw, &v); err == nil {
				if v == nil {
					v = []string{}
				}
				set = append(set, func(r *driver.Repository) { r.ImmutableTagExclusions = v })
			}
		case "description":
			var v string
			if err = decodeField(k, raw, &v); err == nil {
				set = append(set, func(r *driver.Repository) { r.Description = v })
			}
		default:
			err = fieldError(http.StatusBadRequest, codeBodyInvalid, fmt.Sprintf("unknown field %q", k), k)
		}
		if err != nil {
			return err
		}
	}
	return h.update(q, func(r *driver.Repository) {
		for _, f := range set {
			f(r)
		}
	})
}

// decodeField decodes one field of a merge patch; null leaves v zero.
func decodeField(name string, raw json.RawMessage, v any) *apiError {
	if err := json.Unmarshal(raw, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fieldError(http.StatusBadRequest, codeBodyInvalid, fmt.Sprintf("%s: want %s, not %s", name, jsonType(te.Type.Kind().String()), te.Value), name)
		}
		return fieldError(http.StatusBadRequest, codeBodyInvalid, name+": "+err.Error(), name)
	}
	return nil
}

// deleteRepository removes the repository with its manifests, tags, tag
// history, blob links and lifecycle policy. Garbage collection reclaims
// the blobs no other repository uses.
func (h *Handler) deleteRepository(q *request) *apiError {
	if err := h.allow(q, ownerActions...); err != nil {
		return err
	}
	now := h.now()
	ev := event(storage.EventRepositoryDeleted, q.rt.name, now, map[string]any{"repository": q.rt.name, "by": q.by()})
	if err := h.reg.DeleteRepository(q.r.Context(), q.rt.name, ev); err != nil {
		return repoUnknown(err)
	}
	q.w.WriteHeader(http.StatusNoContent)
	return nil
}

func repositoryEvent(typ string, r *driver.Repository, by string, now time.Time) driver.Event {
	return event(typ, r.Name, now, map[string]any{
		"repository": r.Name, "visibility": r.Visibility, "immutableTags": r.ImmutableTags,
		"immutableTagExclusions": r.ImmutableTagExclusions, "by": by,
	})
}

func event(typ, subject string, now time.Time, data any) driver.Event {
	b, _ := json.Marshal(data)
	return driver.Event{Type: typ, Subject: subject, Data: b, CreatedAt: now}
}

// now is the store's clock, in UTC.
func (h *Handler) now() time.Time { return h.store.Options().Now().UTC() }
