package native_test

import (
	"context"
	"slices"
	"testing"
)

func npm(dir, name, ver string) file {
	return file{Name: dir + "/node_modules/" + name + "/package.json", Body: []byte(`{"name":"` + name + `","version":"` + ver + `"}`)}
}

func TestWhiteouts(t *testing.T) {
	img := image(t,
		layer(t,
			npm("a", "x", "1.0.0"),
			npm("b", "y", "1.0.0"),
			npm("c", "z", "1.0.0"),
			npm("d", "w", "1.0.0"),
			npm("e", "v", "1.0.0"),
		),
		layer(t,
			npm("a", "x", "2.0.0"),                                         // replaces the lower file
			file{Name: "b/.wh..wh..opq"},                                   // hides b's lower contents...
			npm("b", "y2", "1.0.0"),                                        // ...but not this layer's
			file{Name: "c/.wh.node_modules"},                               // deletes c/node_modules
			file{Name: "d", Body: []byte("file")},                          // a file replaces directory d
			file{Name: "e/node_modules/v/package.json", Link: "/dev/null"}, // symlinks are not followed
		),
		layer(t, npm("c", "z", "3.0.0")), // re-created above the whiteout
	)
	s := newScanner(t, mustDB(t, alpineRecords))
	inv, err := s.Index(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range inv.Packages {
		got = append(got, p.Location+" "+p.Version)
	}
	want := []string{
		"/a/node_modules/x/package.json 2.0.0",
		"/b/node_modules/y2/package.json 1.0.0",
		"/c/node_modules/z/package.json 3.0.0",
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("packages:\n got %q\nwant %q", got, want)
	}
}
