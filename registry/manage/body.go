package manage

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
)

// readBody reads a JSON request body of at most MaxBodyBytes whose
// Content-Type, when present, is one of types.
func readBody(q *request, types ...string) ([]byte, *apiError) {
	if ct := q.r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !slices.Contains(types, mt) {
			return nil, fieldError(http.StatusUnsupportedMediaType, codeBodyInvalid,
				fmt.Sprintf("Content-Type %q is not %s", ct, strings.Join(types, " or ")), "Content-Type")
		}
	}
	b, err := io.ReadAll(http.MaxBytesReader(q.w, q.r.Body, MaxBodyBytes))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, newError(http.StatusRequestEntityTooLarge, codeSizeInvalid, fmt.Sprintf("the request body is longer than %d bytes", MaxBodyBytes))
	}
	if err != nil {
		return nil, internal(fmt.Errorf("manage: read request body: %w", err))
	}
	return b, nil
}

// decodeStrict decodes one JSON object into v, refusing unknown fields,
// values of the wrong type and trailing data.
func decodeStrict(b []byte, v any) *apiError {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return newError(http.StatusBadRequest, codeBodyInvalid, "trailing data after the JSON object")
	}
	return nil
}

// jsonError describes a decoding error, naming the field when there is one.
func jsonError(err error) *apiError {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &te) && te.Field != "":
		return fieldError(http.StatusBadRequest, codeBodyInvalid, fmt.Sprintf("%s: want %s, not %s", te.Field, jsonType(te.Type.Kind().String()), te.Value), te.Field)
	case errors.As(err, &te):
		return newError(http.StatusBadRequest, codeBodyInvalid, fmt.Sprintf("want a JSON object, not %s", te.Value))
	case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return newError(http.StatusBadRequest, codeBodyInvalid, "the request body is not a JSON object")
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		f = strings.Trim(f, `"`)
		return fieldError(http.StatusBadRequest, codeBodyInvalid, fmt.Sprintf("unknown field %q", f), f)
	}
	return newError(http.StatusBadRequest, codeBodyInvalid, "the request body is not a valid JSON object")
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice":
		return "an array"
	case "struct", "map":
		return "an object"
	}
	return "a number"
}
