package events_test

import (
	"slices"
	"testing"
	"time"

	"github.com/berth-dev/berth/events"
	"github.com/berth-dev/berth/storage"
	"github.com/berth-dev/berth/storage/driver"
)

// TestTypesMatchStorage: the storage layer writes exactly the types this
// package names.
func TestTypesMatchStorage(t *testing.T) {
	pairs := map[string]string{
		storage.EventRepositoryCreated: events.TypeRepositoryCreated,
		storage.EventRepositoryUpdated: events.TypeRepositoryUpdated,
		storage.EventRepositoryDeleted: events.TypeRepositoryDeleted,
		storage.EventManifestPushed:    events.TypeManifestPushed,
		storage.EventManifestDeleted:   events.TypeManifestDeleted,
		storage.EventTagCreated:        events.TypeTagCreated,
		storage.EventTagMoved:          events.TypeTagMoved,
		storage.EventTagDeleted:        events.TypeTagDeleted,
	}
	types := events.Types()
	for s, e := range pairs {
		if s != e {
			t.Errorf("storage writes %q, events names %q", s, e)
		}
		if !slices.Contains(types, s) {
			t.Errorf("Types() lacks %q", s)
		}
	}
	seen := map[string]bool{}
	for _, ty := range types {
		if seen[ty] {
			t.Errorf("%q listed twice", ty)
		}
		seen[ty] = true
	}
}

func TestFromOutbox(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 8000, time.FixedZone("x", 3600))
	e := events.FromOutbox("", &driver.Event{ID: 42, Type: events.TypeTagMoved, Subject: "a:b", Data: []byte(`{"tag":"b"}`), CreatedAt: at})
	if err := e.Validate(); err != nil {
		t.Fatal(err)
	}
	if e.ID != "42" || e.Source != events.DefaultSource || !e.Time.Equal(at) || e.Time.Location() != time.UTC || string(e.Data) != `{"tag":"b"}` {
		t.Errorf("event %+v", e)
	}
	// A payload that is not JSON travels as a JSON string.
	e = events.FromOutbox("/x", &driver.Event{ID: 1, Type: "t", Data: []byte("not json")})
	if string(e.Data) != `"not json"` || e.Validate() != nil {
		t.Errorf("data %s", e.Data)
	}
	for _, bad := range []string{`{}`, `{"specversion":"1.0","id":"1","source":"/s"}`, `{"specversion":"0.3","id":"1","source":"/s","type":"t"}`, `nope`} {
		if _, err := events.Unmarshal([]byte(bad)); err == nil {
			t.Errorf("Unmarshal(%s) succeeded", bad)
		}
	}
}
