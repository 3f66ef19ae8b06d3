package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/berth-dev/berth/storage/driver"
)

// SpecVersion is the CloudEvents specification version of every Event.
const SpecVersion = "1.0"

// ContentType is the media type of an Event in CloudEvents structured mode
// (the whole event, attributes and data, as one JSON object).
const ContentType = "application/cloudevents+json"

// DefaultSource is the CloudEvents source used when none is configured.
const DefaultSource = "/berth"

// The event types. Every state change the storage layer makes is written
// to the outbox with one of the first group's types; the others are
// written by the packages that own those changes (lifecycle, scan, token
// management) or, for pulls, by the registry.
const (
	TypeRepositoryCreated = "dev.berth.repository.created"
	TypeRepositoryUpdated = "dev.berth.repository.updated"
	TypeRepositoryDeleted = "dev.berth.repository.deleted"
	TypeManifestPushed    = "dev.berth.manifest.pushed"
	TypeManifestDeleted   = "dev.berth.manifest.deleted"
	TypeTagCreated        = "dev.berth.tag.created"
	TypeTagMoved          = "dev.berth.tag.moved"
	TypeTagDeleted        = "dev.berth.tag.deleted"

	// TypeManifestPulled reports a pull of a manifest. Pulls are not state
	// changes: they are published only when the registry is configured to
	// append them.
	TypeManifestPulled = "dev.berth.manifest.pulled"
	// TypePolicyChanged reports a lifecycle policy set, replaced or
	// removed.
	TypePolicyChanged = "dev.berth.policy.changed"
	// TypeImageExpired reports an image removed by a lifecycle policy.
	TypeImageExpired = "dev.berth.image.expired"
	// TypeScanCompleted reports a finished vulnerability scan.
	TypeScanCompleted = "dev.berth.scan.completed"
	// TypeTokenCreated and TypeTokenRevoked report registry token
	// management.
	TypeTokenCreated = "dev.berth.token.created"
	TypeTokenRevoked = "dev.berth.token.revoked"
)

// Types returns every event type, in the order of the declarations above.
func Types() []string {
	return []string{
		TypeRepositoryCreated, TypeRepositoryUpdated, TypeRepositoryDeleted,
		TypeManifestPushed, TypeManifestDeleted,
		TypeTagCreated, TypeTagMoved, TypeTagDeleted,
		TypeManifestPulled, TypePolicyChanged, TypeImageExpired, TypeScanCompleted,
		TypeTokenCreated, TypeTokenRevoked,
	}
}

// Event is a CloudEvents 1.0 event. Marshalled with encoding/json it is the
// structured-mode JSON representation (ContentType).
type Event struct {
	// SpecVersion is always SpecVersion.
	SpecVersion string `json:"specversion"`
	// ID identifies the event within Source; a redelivered event keeps its
	// ID, so consumers deduplicate on (Source, ID).
	ID string `json:"id"`
	// Source names the registry that produced the event (a URI
	// reference).
	Source string `json:"source"`
	// Type is one of the Type constants.
	Type string `json:"type"`
	// Subject names what changed, e.g. "team/app:latest" or
	// "team/app@sha256:…".
	Subject string `json:"subject,omitempty"`
	// Time is when the change happened.
	Time time.Time `json:"time"`
	// DataContentType is the media type of Data: "application/json".
	DataContentType string `json:"datacontenttype,omitempty"`
	// Data is the type-specific payload, a JSON value.
	Data json.RawMessage `json:"data,omitempty"`
}

// Validate reports whether e has every required CloudEvents attribute and
// a JSON payload.
func (e *Event) Validate() error {
	switch {
	case e == nil:
		return errors.New("events: nil event")
	case e.SpecVersion != SpecVersion:
		return fmt.Errorf("events: specversion %q, want %q", e.SpecVersion, SpecVersion)
	case e.ID == "":
		return errors.New("events: event has no id")
	case e.Source == "":
		return errors.New("events: event has no source")
	case e.Type == "":
		return errors.New("events: event has no type")
	case len(e.Data) > 0 && !json.Valid(e.Data):
		return fmt.Errorf("events: event %s has data that is not JSON", e.ID)
	}
	return nil
}

// Marshal returns the structured-mode JSON encoding of e. Data is copied
// as it is (compacted), without escaping HTML characters.
func (e *Event) Marshal() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return nil, fmt.Errorf("events: marshal event %s: %w", e.ID, err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// Unmarshal decodes a structured-mode event and validates it.
func Unmarshal(b []byte) (*Event, error) {
	var e Event
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("events: decode event: %w", err)
	}
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return &e, nil
}

// FromOutbox converts an outbox entry into an Event from source (""
// means DefaultSource). The event's ID is the entry's ID, so every
// delivery of one entry carries the same ID. A payload that is not JSON
// (which the storage layer never writes) is carried as a JSON string.
func FromOutbox(source string, o *driver.Event) *Event {
	if source == "" {
		source = DefaultSource
	}
	data := json.RawMessage(o.Data)
	if len(data) > 0 && !json.Valid(data) {
		data, _ = json.Marshal(string(o.Data))
	}
	return &Event{
		SpecVersion:     SpecVersion,
		ID:              strconv.FormatInt(o.ID, 10),
		Source:          source,
		Type:            o.Type,
		Subject:         o.Subject,
		Time:            o.CreatedAt.UTC(),
		DataContentType: "application/json",
		Data:            data,
	}
}

// NewOutboxEvent builds an outbox entry of type typ about subject with
// data marshalled as JSON, for packages that append events of the types
// the storage layer does not write (TypeScanCompleted, TypeImageExpired,
// TypeManifestPulled, …) through driver.Outbox.AppendEvents or a state
// change's trailing events.
func NewOutboxEvent(typ, subject string, at time.Time, data any) (driver.Event, error) {
	b, err := json.Marshal(data)
	if err != nil {
		return driver.Event{}, fmt.Errorf("events: marshal %s data: %w", typ, err)
	}
	return driver.Event{Type: typ, Subject: subject, Data: b, CreatedAt: at.UTC()}, nil
}
