package manifest

import (
	"errors"
	"strings"
	"testing"
)

const (
	d1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	d2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

func TestParse(t *testing.T) {
	img := `{"schemaVersion":2,"mediaType":"` + OCIManifest + `","config":{"mediaType":"` + OCIConfig + `","digest":"` + d1 + `","size":10},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"` + d2 + `","size":5},{"mediaType":"x","digest":"` + d2 + `","size":5,"urls":["https://example.com/l"]}]}`
	m, err := Parse(OCIManifest, []byte(img))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Blobs(); len(got) != 2 || got[0] != d1 || got[1] != d2 {
		t.Fatalf("Blobs = %v", got)
	}
	if m.ArtifactType != OCIConfig {
		t.Fatalf("ArtifactType = %q", m.ArtifactType)
	}
	art := `{"schemaVersion":2,"config":{"mediaType":"application/vnd.example.sbom","digest":"` + d1 + `","size":2},"layers":[],"subject":{"mediaType":"` + OCIManifest + `","digest":"` + d2 + `","size":9}}`
	m, err = Parse("", []byte(art))
	if err != nil || m.MediaType != OCIManifest || m.ArtifactType != "application/vnd.example.sbom" || m.Subject.Digest != d2 {
		t.Fatalf("artifact: %+v, %v", m, err)
	}
	idx := `{"schemaVersion":2,"mediaType":"` + DockerManifestList + `","manifests":[{"mediaType":"` + DockerManifest + `","digest":"` + d1 + `","size":3,"platform":{"architecture":"arm64","os":"linux","variant":"v8"}}]}`
	m, err = Parse(DockerManifestList, []byte(idx))
	if err != nil || len(m.Children()) != 1 || m.Manifests[0].Platform.Variant != "v8" {
		t.Fatalf("index: %+v, %v", m, err)
	}
}

func TestParseRejects(t *testing.T) {
	cases := map[string]string{
		"not json":         `{`,
		"trailing":         `{"schemaVersion":2,"config":{"mediaType":"a","digest":"` + d1 + `","size":1}} x`,
		"schema 1":         `{"schemaVersion":1,"mediaType":"` + DockerSchema1Sig + `"}`,
		"schemaVersion":    `{"schemaVersion":3,"config":{"mediaType":"a","digest":"` + d1 + `","size":1}}`,
		"no config":        `{"schemaVersion":2,"mediaType":"` + OCIManifest + `"}`,
		"bad digest":       `{"schemaVersion":2,"config":{"mediaType":"a","digest":"sha256:xyz","size":1}}`,
		"md5 digest":       `{"schemaVersion":2,"config":{"mediaType":"a","digest":"md5:d41d8cd98f00b204e9800998ecf8427e","size":1}}`,
		"negative size":    `{"schemaVersion":2,"config":{"mediaType":"a","digest":"` + d1 + `","size":-1}}`,
		"no media type":    `{"schemaVersion":2,"config":{"digest":"` + d1 + `","size":1}}`,
		"type mismatch":    `{"schemaVersion":2,"mediaType":"` + OCIIndex + `","manifests":[]}`,
		"index with layer": `{"schemaVersion":2,"mediaType":"` + OCIIndex + `","manifests":[],"layers":[]}`,
		"unknown type":     `{"schemaVersion":2,"mediaType":"application/vnd.example+json"}`,
	}
	for name, body := range cases {
		ct := OCIManifest
		if strings.Contains(body, "schemaVersion\":1") || strings.Contains(body, "vnd.example+json") {
			ct = ""
		}
		_, err := Parse(ct, []byte(body))
		var ie *InvalidError
		if !errors.As(err, &ie) {
			t.Errorf("%s: Parse = %v, want *InvalidError", name, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(OCIManifest, []byte(`{"schemaVersion":2,"config":{"mediaType":"a","digest":"`+d1+`","size":1},"layers":[]}`))
	f.Add(OCIIndex, []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"a","digest":"`+d1+`","size":1}]}`))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		m, err := Parse(ct, body)
		if err != nil {
			return
		}
		for _, d := range append(m.Blobs(), m.Children()...) {
			if d.Validate() != nil {
				t.Fatalf("accepted invalid digest %q", d)
			}
		}
	})
}
