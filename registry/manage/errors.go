package manage

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/berth-dev/berth/internal/errcode"
	"github.com/berth-dev/berth/storage"
	"github.com/berth-dev/berth/storage/driver"
)

// The error codes of the API's error bodies.
const (
	codeBodyInvalid        = "BODY_INVALID"
	codeDenied             = "DENIED"
	codeDigestInvalid      = "DIGEST_INVALID"
	codeManifestReferenced = "MANIFEST_REFERENCED"
	codeManifestUnknown    = "MANIFEST_UNKNOWN"
	codeNameInvalid        = "NAME_INVALID"
	codeNameUnknown        = "NAME_UNKNOWN"
	codeNotFound           = "NOT_FOUND"
	codePaginationInvalid  = "PAGINATION_NUMBER_INVALID"
	codeSizeInvalid        = "SIZE_INVALID"
	codeTagImmutable       = "TAG_IMMUTABLE"
	codeTagInvalid         = "TAG_INVALID"
	codeTagUnknown         = "TAG_UNKNOWN"
	codeTooManyRequests    = "TOOMANYREQUESTS"
	codeUnauthorized       = "UNAUTHORIZED"
	codeUnknown            = "UNKNOWN"
	codeUnsupported        = "UNSUPPORTED"
)

// apiError is an error response: a status and a list of errors.
type apiError struct {
	status int
	items  []errorItem
	allow  string // the Allow header of a 405
	// challenge adds a Basic WWW-Authenticate header (401).
	challenge bool
	// cause is logged for server errors, never sent.
	cause error
}

type errorItem struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

func newError(status int, code, msg string) *apiError {
	return &apiError{status: status, items: []errorItem{{Code: code, Message: msg}}}
}

// fieldError is an error about one field of the request, named in the
// detail.
func fieldError(status int, code, msg, field string) *apiError {
	return &apiError{status: status, items: []errorItem{{Code: code, Message: msg, Detail: map[string]any{"field": field}}}}
}

func notAllowed(allow string) *apiError {
	e := newError(http.StatusMethodNotAllowed, codeUnsupported, "method not allowed")
	e.allow = allow
	return e
}

func internal(err error) *apiError {
	if errors.Is(err, context.Canceled) || errcode.Of(err) == errcode.Canceled {
		return &apiError{status: 499, items: []errorItem{{Code: codeUnknown, Message: "request cancelled"}}}
	}
	return &apiError{status: http.StatusInternalServerError, items: []errorItem{{Code: codeUnknown, Message: "internal server error"}}, cause: err}
}

// storageError maps an error from storage: the one table of the package.
// notFoundCode and notFoundMsg answer ErrNotFound on the route at hand.
func storageError(err error, notFoundCode, notFoundMsg string) *apiError {
	var ie *storage.ImmutableTagError
	switch {
	case errors.As(err, &ie):
		return &apiError{status: http.StatusConflict, items: []errorItem{{Code: codeTagImmutable, Message: ie.Error(),
			Detail: map[string]any{"tag": ie.Tag, "digest": ie.Current}}}}
	case errors.Is(err, driver.ErrNotFound):
		return newError(http.StatusNotFound, notFoundCode, notFoundMsg)
	case errors.Is(err, driver.ErrInvalidArgument), errcode.Of(err) == errcode.InvalidArgument:
		return newError(http.StatusBadRequest, codeBodyInvalid, err.Error())
	}
	return internal(err)
}

func repoUnknown(err error) *apiError {
	return storageError(err, codeNameUnknown, "repository name not known to registry")
}

// write sends the error (no body for HEAD). A cancelled request, whose
// client is gone, is answered 400.
func (e *apiError) write(w http.ResponseWriter, r *http.Request, realm string) {
	h := w.Header()
	if e.allow != "" {
		h.Set("Allow", e.allow)
	}
	if e.challenge {
		h.Set("WWW-Authenticate", `Basic realm="`+realm+`"`)
	}
	status := e.status
	if status == 499 {
		status = http.StatusBadRequest
	}
	b, _ := json.Marshal(map[string][]errorItem{"errors": e.items})
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
}
