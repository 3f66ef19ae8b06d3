package main

import (
	"strings"
	"testing"
)

func TestRunRefusesBadArguments(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-tlp", "purple"}, `-tlp "purple"`},
		{[]string{"-dir", t.TempDir()}, "run from the module root"},
		{[]string{"-nosuchflag"}, "not defined"},
	} {
		err := run(tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run(%q): %v, want an error mentioning %q", tc.args, err, tc.want)
		}
	}
}
