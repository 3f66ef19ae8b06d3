// Package manifest parses and validates the manifests a registry accepts:
// OCI image manifests and indexes (including artifacts, with artifactType
// and subject) and Docker schema 2 manifests and manifest lists. It
// extracts what storage needs to keep the registry consistent: the blobs
// and child manifests a manifest references, its subject, and platforms.
package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Media types.
const (
	OCIManifest        = "application/vnd.oci.image.manifest.v1+json"
	OCIIndex           = "application/vnd.oci.image.index.v1+json"
	OCIConfig          = "application/vnd.oci.image.config.v1+json"
	OCIEmpty           = "application/vnd.oci.empty.v1+json"
	DockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	DockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	DockerConfig       = "application/vnd.docker.container.image.v1+json"
	DockerSchema1      = "application/vnd.docker.distribution.manifest.v1+json"
	DockerSchema1Sig   = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

// IsIndex reports whether mediaType is an index or manifest list.
func IsIndex(mediaType string) bool { return mediaType == OCIIndex || mediaType == DockerManifestList }

// Supported reports whether the registry stores manifests of mediaType.
func Supported(mediaType string) bool {
	switch mediaType {
	case OCIManifest, OCIIndex, DockerManifest, DockerManifestList:
		return true
	}
	return false
}

// Descriptor is a content descriptor.
type Descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       digest.Digest     `json:"digest"`
	Size         int64             `json:"size"`
	URLs         []string          `json:"urls,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Platform     *Platform         `json:"platform,omitempty"`
}

// Platform is an index entry's platform.
type Platform struct {
	Architecture string   `json:"architecture"`
	OS           string   `json:"os"`
	OSVersion    string   `json:"os.version,omitempty"`
	OSFeatures   []string `json:"os.features,omitempty"`
	Variant      string   `json:"variant,omitempty"`
}

// raw is the union of the manifest and index schemas.
type raw struct {
	SchemaVersion *int              `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        *Descriptor       `json:"config"`
	Layers        []Descriptor      `json:"layers"`
	Manifests     []Descriptor      `json:"manifests"`
	Subject       *Descriptor       `json:"subject"`
	Annotations   map[string]string `json:"annotations"`
}

// Manifest is a parsed, validated manifest.
type Manifest struct {
	// MediaType is the manifest's media type.
	MediaType string
	// ArtifactType is the artifactType field, or for OCI image manifests
	// without one, the config's media type (the OCI 1.1 rule the
	// referrers API applies: an image's artifact type is then
	// application/vnd.oci.image.config.v1+json). Indexes without the field
	// and Docker manifests have none.
	ArtifactType string
	Config       *Descriptor
	Layers       []Descriptor
	// Manifests are an index's children.
	Manifests   []Descriptor
	Subject     *Descriptor
	Annotations map[string]string
}

// InvalidError reports a manifest the registry must reject.
type InvalidError struct {
	Reason string
	// Unsupported is set when the manifest is well-formed but of a kind
	// the registry does not store (schema 1, unknown media types).
	Unsupported bool
}

func (e *InvalidError) Error() string { return "manifest invalid: " + e.Reason }

func invalid(format string, args ...any) error {
	return &InvalidError{Reason: fmt.Sprintf(format, args...)}
}

// Parse parses body, sent with the Content-Type contentType (which may
// carry parameters or be empty), and validates it. The media type is the
// body's mediaType field when present, which must then agree with a
// specific Content-Type; otherwise the Content-Type.
func Parse(contentType string, body []byte) (*Manifest, error) {
	ct, _, _ := strings.Cut(contentType, ";")
	ct = strings.TrimSpace(ct)
	var r raw
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&r); err != nil {
		return nil, invalid("not a JSON manifest: %v", err)
	}
	if dec.More() {
		return nil, invalid("trailing data after the JSON document")
	}
	mt := r.MediaType
	switch {
	case mt == "" && ct == "":
		// OCI manifests may omit mediaType; infer from the shape.
		if r.Manifests != nil {
			mt = OCIIndex
		} else {
			mt = OCIManifest
		}
	case mt == "":
		mt = ct
	case ct != "" && ct != mt && ct != "application/json" && ct != "application/octet-stream":
		return nil, invalid("Content-Type %q does not match the manifest's mediaType %q", ct, mt)
	}
	if mt == DockerSchema1 || mt == DockerSchema1Sig {
		return nil, &InvalidError{Reason: "Docker schema 1 manifests are not supported; push schema 2 or OCI", Unsupported: true}
	}
	if !Supported(mt) {
		return nil, &InvalidError{Reason: fmt.Sprintf("unsupported manifest media type %q", mt), Unsupported: true}
	}
	if r.SchemaVersion == nil || *r.SchemaVersion != 2 {
		return nil, invalid("schemaVersion must be 2")
	}
	m := &Manifest{MediaType: mt, ArtifactType: r.ArtifactType, Subject: r.Subject, Annotations: r.Annotations}
	if m.Subject != nil {
		if err := checkDescriptor("subject", m.Subject); err != nil {
			return nil, err
		}
	}
	if IsIndex(mt) {
		if r.Config != nil || r.Layers != nil {
			return nil, invalid("an index has no config or layers")
		}
		for i := range r.Manifests {
			if err := checkDescriptor(fmt.Sprintf("manifests[%d]", i), &r.Manifests[i]); err != nil {
				return nil, err
			}
		}
		m.Manifests = r.Manifests
		return m, nil
	}
	if r.Manifests != nil {
		return nil, invalid("an image manifest has no manifests list")
	}
	if r.Config == nil {
		return nil, invalid("config descriptor is missing")
	}
	if err := checkDescriptor("config", r.Config); err != nil {
		return nil, err
	}
	for i := range r.Layers {
		if err := checkDescriptor(fmt.Sprintf("layers[%d]", i), &r.Layers[i]); err != nil {
			return nil, err
		}
	}
	if mt == DockerManifest && len(r.Layers) == 0 {
		return nil, invalid("a Docker image manifest needs at least one layer")
	}
	m.Config, m.Layers = r.Config, r.Layers
	if m.ArtifactType == "" && mt == OCIManifest {
		m.ArtifactType = r.Config.MediaType
	}
	return m, nil
}

func checkDescriptor(field string, d *Descriptor) error {
	if d.MediaType == "" {
		return invalid("%s: mediaType is missing", field)
	}
	if err := d.Digest.Validate(); err != nil {
		return invalid("%s: invalid digest %q", field, d.Digest)
	}
	if a := d.Digest.Algorithm(); a != digest.SHA256 && a != digest.SHA512 {
		return invalid("%s: unsupported digest algorithm %q", field, a)
	}
	if d.Size < 0 {
		return invalid("%s: negative size", field)
	}
	return nil
}

// Blobs returns the digests of the blobs the manifest needs in its
// repository: config and layers, except non-distributable layers served
// from their own URLs. An index needs none.
func (m *Manifest) Blobs() []digest.Digest {
	var out []digest.Digest
	if m.Config != nil {
		out = append(out, m.Config.Digest)
	}
	for _, l := range m.Layers {
		if len(l.URLs) > 0 {
			continue
		}
		out = append(out, l.Digest)
	}
	return out
}

// Children returns the digests of an index's manifests.
func (m *Manifest) Children() []digest.Digest {
	out := make([]digest.Digest, len(m.Manifests))
	for i, d := range m.Manifests {
		out[i] = d.Digest
	}
	return out
}

// ImageConfig is the part of an image configuration that names its
// platform.
type ImageConfig struct {
	Architecture string   `json:"architecture"`
	OS           string   `json:"os"`
	OSVersion    string   `json:"os.version,omitempty"`
	OSFeatures   []string `json:"os.features,omitempty"`
	Variant      string   `json:"variant,omitempty"`
}

// IsImageConfig reports whether mediaType is an image configuration whose
// platform fields ParseImageConfig reads.
func IsImageConfig(mediaType string) bool { return mediaType == OCIConfig || mediaType == DockerConfig }

// ParseImageConfig reads the platform of an image configuration.
func ParseImageConfig(body []byte) (*ImageConfig, error) {
	var c ImageConfig
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, invalid("image config is not JSON: %v", err)
	}
	return &c, nil
}
