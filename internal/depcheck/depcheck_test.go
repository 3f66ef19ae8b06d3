package depcheck

import (
	"fmt"
	"testing"
)

type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
func (r *recorder) Helper() {}

// A fence catches what it forbids, and passes what it allows.
func TestCheck(t *testing.T) {
	r := &recorder{TB: t}
	Check(r, Module+"/storage/driver", Rules{Internal: []string{}, External: []string{}, Forbidden: []string{"github.com/opencontainers/go-digest"}})
	if len(r.errs) < 3 { // internal/errcode, go-digest import, go-digest dependency
		t.Fatalf("violations not reported: %q", r.errs)
	}
	r = &recorder{TB: t}
	Check(r, Module+"/storage/driver", Rules{Internal: []string{Module + "/internal/errcode"}, External: []string{"github.com/opencontainers/go-digest"}})
	if len(r.errs) != 0 {
		t.Fatalf("false violations: %q", r.errs)
	}
}
