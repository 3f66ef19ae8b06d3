package lifecycle

import (
	"testing"

	"github.com/berth-dev/berth/internal/errcode"
)

func TestInvalidPolicyErrorCode(t *testing.T) {
	_, err := Parse([]byte(`{"rules":[]}`))
	if errcode.Of(err) != errcode.InvalidArgument {
		t.Fatalf("code %v for %v", errcode.Of(err), err)
	}
	if err.Error() != "lifecycle: invalid policy: rules: must hold at least one rule" {
		t.Fatalf("message %q", err)
	}
}

func TestValidateBuiltPolicy(t *testing.T) {
	p := &Policy{Rules: []Rule{{RulePriority: 0, Selection: Selection{TagStatus: Untagged, CountType: ImageCountMoreThan, CountNumber: 1}, Action: Action{Type: Expire}}}}
	if err := p.Validate(); err == nil || err.Error() != "lifecycle: invalid policy: rules[0].rulePriority: must be a positive integer" {
		t.Fatalf("Validate: %v", err)
	}
	var nilPolicy *Policy
	if nilPolicy.Validate() == nil {
		t.Fatal("a nil policy is valid")
	}
	if got := (&Policy{}).String(); got != `{"rules":[]}` {
		t.Fatalf("String() = %s", got)
	}
}
