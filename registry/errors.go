package registry

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/berth-dev/berth/auth"
	"github.com/berth-dev/berth/internal/errcode"
	"github.com/berth-dev/berth/internal/ociname"
	"github.com/berth-dev/berth/storage"
)

// The error codes of the OCI distribution specification.
const (
	codeBlobUnknown         = "BLOB_UNKNOWN"
	codeBlobUploadInvalid   = "BLOB_UPLOAD_INVALID"
	codeBlobUploadUnknown   = "BLOB_UPLOAD_UNKNOWN"
	codeDigestInvalid       = "DIGEST_INVALID"
	codeManifestBlobUnknown = "MANIFEST_BLOB_UNKNOWN"
	codeManifestInvalid     = "MANIFEST_INVALID"
	codeManifestUnknown     = "MANIFEST_UNKNOWN"
	codeNameInvalid         = "NAME_INVALID"
	codeNameUnknown         = "NAME_UNKNOWN"
	codeSizeInvalid         = "SIZE_INVALID"
	codeUnauthorized        = "UNAUTHORIZED"
	codeDenied              = "DENIED"
	codeUnsupported         = "UNSUPPORTED"
	codeTooManyRequests     = "TOOMANYREQUESTS"
	codeUnknown             = "UNKNOWN"
)

// regError is an error response: an HTTP status and one spec error.
type regError struct {
	Status  int
	Code    string
	Message string
	Detail  any
	// Header holds extra response headers (Range, WWW-Authenticate, …).
	Header http.Header
	// cause is logged for server errors, never sent.
	cause error
}

func (e *regError) Error() string { return e.Code + ": " + e.Message }

func newErr(status int, code, msg string) *regError {
	return &regError{Status: status, Code: code, Message: msg}
}

func (e *regError) with(k, v string) *regError {
	if e.Header == nil {
		e.Header = http.Header{}
	}
	e.Header.Set(k, v)
	return e
}

// classify maps an error from storage or auth to its response: the one
// table of the package. notFound is the spec code for ErrNotFound on the
// route at hand (BLOB_UNKNOWN, MANIFEST_UNKNOWN, …).
func classify(err error, notFound string) *regError {
	var (
		re  *regError
		de  *storage.InvalidDigestError
		dm  *storage.DigestMismatchError
		sm  *storage.SizeMismatchError
		tl  *storage.TooLargeError
		rg  *storage.RangeError
		oe  *storage.OffsetError
		me  *storage.ManifestError
		ie  *storage.ImmutableTagError
		ne  *ociname.Error
		se  *auth.ScopeError
		te  *auth.ThrottledError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.As(err, &re):
		return re
	case errors.As(err, &de):
		return newErr(http.StatusBadRequest, codeDigestInvalid, de.Error())
	case errors.As(err, &dm):
		return &regError{Status: http.StatusBadRequest, Code: codeDigestInvalid, Message: "provided digest did not match uploaded content",
			Detail: map[string]any{"declared": dm.Want, "computed": dm.Got, "size": dm.Size}}
	case errors.As(err, &sm):
		return &regError{Status: http.StatusBadRequest, Code: codeSizeInvalid, Message: sm.Error()}
	case errors.As(err, &tl), errors.As(err, &mbe):
		return newErr(http.StatusRequestEntityTooLarge, codeSizeInvalid, "content is larger than this registry accepts")
	case errors.As(err, &rg):
		return newErr(http.StatusRequestedRangeNotSatisfiable, codeBlobUploadInvalid, rg.Error()).
			with("Content-Range", "bytes */"+strconv.FormatInt(rg.Size, 10))
	case errors.As(err, &oe):
		return newErr(http.StatusRequestedRangeNotSatisfiable, codeBlobUploadInvalid, oe.Error()).
			with("Range", rangeHeader(oe.Want))
	case errors.As(err, &me):
		switch {
		case len(me.Missing) > 0:
			return &regError{Status: http.StatusBadRequest, Code: codeManifestBlobUnknown, Message: me.Error(), Detail: map[string]any{"missing": me.Missing}}
		case me.Unsupported:
			return newErr(http.StatusBadRequest, codeManifestInvalid, me.Reason)
		}
		return newErr(http.StatusBadRequest, codeManifestInvalid, me.Reason)
	case errors.As(err, &ie):
		return &regError{Status: http.StatusConflict, Code: codeDenied, Message: ie.Error(), Detail: map[string]any{"tag": ie.Tag, "digest": ie.Current}}
	case errors.As(err, &ne):
		if ne.Kind == "tag" {
			return newErr(http.StatusBadRequest, codeManifestInvalid, ne.Error())
		}
		return newErr(http.StatusBadRequest, codeNameInvalid, ne.Error())
	case errors.As(err, &se):
		return newErr(http.StatusBadRequest, codeDenied, se.Error())
	case errors.As(err, &te):
		return newErr(http.StatusTooManyRequests, codeTooManyRequests, "too many requests").
			with("Retry-After", strconv.Itoa(te.RetryAfterSeconds()))
	case errors.Is(err, storage.ErrConflict):
		return newErr(http.StatusConflict, codeBlobUploadInvalid, "the upload was changed concurrently; resume from its current offset")
	}
	switch errcode.Of(err) {
	case errcode.NotFound:
		return newErr(http.StatusNotFound, notFound, notFoundMessage[notFound])
	case errcode.InvalidArgument:
		return newErr(http.StatusBadRequest, codeNameInvalid, err.Error())
	case errcode.Unauthenticated:
		return newErr(http.StatusUnauthorized, codeUnauthorized, "authentication required")
	case errcode.PermissionDenied:
		return newErr(http.StatusForbidden, codeDenied, "requested access to the resource is denied")
	case errcode.ResourceExhausted:
		return newErr(http.StatusTooManyRequests, codeTooManyRequests, "too many requests")
	case errcode.Unimplemented:
		return newErr(http.StatusNotImplemented, codeUnsupported, "the operation is unsupported")
	case errcode.Canceled, errcode.DeadlineExceeded:
		return &regError{Status: 499, Code: codeUnknown, Message: "request cancelled", cause: err}
	}
	if errors.Is(err, context.Canceled) {
		return &regError{Status: 499, Code: codeUnknown, Message: "request cancelled", cause: err}
	}
	return &regError{Status: http.StatusInternalServerError, Code: codeUnknown, Message: "internal server error", cause: err}
}

var notFoundMessage = map[string]string{
	codeBlobUnknown:       "blob unknown to registry",
	codeBlobUploadUnknown: "blob upload unknown to registry",
	codeManifestUnknown:   "manifest unknown",
	codeNameUnknown:       "repository name not known to registry",
}

type errorBody struct {
	Errors []errorItem `json:"errors"`
}

type errorItem struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// write sends the error response (no body for HEAD).
func (e *regError) write(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	for k, v := range e.Header {
		h[k] = v
	}
	status := e.Status
	if status == 499 {
		status = http.StatusBadRequest
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(status)
		return
	}
	b, _ := json.Marshal(errorBody{Errors: []errorItem{{Code: e.Code, Message: e.Message, Detail: e.Detail}}})
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func rangeHeader(size int64) string {
	if size <= 0 {
		return "0-0"
	}
	return "0-" + strconv.FormatInt(size-1, 10)
}
