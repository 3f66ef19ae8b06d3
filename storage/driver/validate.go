package driver

import (
	"encoding/json"
	"fmt"
	"path"
)

// Validate returns an error wrapping ErrInvalidArgument unless r's
// visibility is Private or Public and every exclusion is a valid path.Match
// pattern. Backends call it in CreateRepository and UpdateRepository.
func (r *Repository) Validate() error {
	if r.Name == "" {
		return fmt.Errorf("repository has no name: %w", ErrInvalidArgument)
	}
	if r.Visibility != Private && r.Visibility != Public {
		return fmt.Errorf("repository %s: visibility %q is neither %q nor %q: %w", r.Name, r.Visibility, Private, Public, ErrInvalidArgument)
	}
	for _, p := range r.ImmutableTagExclusions {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("repository %s: immutable tag exclusion %q: %w: %w", r.Name, p, err, ErrInvalidArgument)
		}
	}
	return nil
}

// TagImmutable reports whether tag may not be moved once it exists: the
// repository has immutable tags and tag matches none of the exclusions.
func (r *Repository) TagImmutable(tag string) bool {
	if !r.ImmutableTags {
		return false
	}
	for _, p := range r.ImmutableTagExclusions {
		if ok, _ := path.Match(p, tag); ok {
			return false
		}
	}
	return true
}

// CheckLimit returns an error wrapping ErrInvalidArgument unless limit is
// at least 1, as every paginated List method requires.
func CheckLimit(limit int) error {
	if limit < 1 {
		return fmt.Errorf("page limit %d is below 1: %w", limit, ErrInvalidArgument)
	}
	return nil
}

// CheckJSON returns an error wrapping ErrInvalidArgument unless doc is
// valid JSON; what names the document in the message.
func CheckJSON(what string, doc []byte) error {
	if !json.Valid(doc) {
		return fmt.Errorf("%s is not valid JSON: %w", what, ErrInvalidArgument)
	}
	return nil
}

// CheckScanKind returns an error wrapping ErrInvalidArgument unless kind is
// ScanInventory or ScanReport.
func CheckScanKind(kind string) error {
	if kind != ScanInventory && kind != ScanReport {
		return fmt.Errorf("scan result kind %q is neither %q nor %q: %w", kind, ScanInventory, ScanReport, ErrInvalidArgument)
	}
	return nil
}
