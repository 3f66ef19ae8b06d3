package driver

import (
	"context"
	"time"

	"github.com/berth-dev/berth/internal/errcode"
	"github.com/opencontainers/go-digest"
)

// ErrInvalidArgument reports a request that no backend state could make
// valid: a page limit below 1, an unknown visibility, a malformed glob, a
// document that is not JSON.
var ErrInvalidArgument error = &errcode.Error{Code: errcode.InvalidArgument, Msg: "invalid argument"}

// Registry is everything a registry keeps besides the blob index and
// upload sessions: repositories, manifests, tags and their history,
// referrers, repository links, references, lifecycle policies, scan
// results, tokens and the event outbox.
//
// It is an optional upgrade of Metadata, found by type assertion: a
// backend that serves only blobs (a cache, a mirror) implements Metadata
// alone. The conformance suite runs the subtests of each interface a
// backend implements.
//
// # Pagination
//
// Every List method is keyset-paginated: it takes the last key of the
// previous page (the zero key starts at the beginning) and a limit of at
// least 1 (ErrInvalidArgument otherwise), and returns up to limit records
// in increasing key order together with whether more records follow. A
// page never repeats or skips a record that existed throughout the walk.
// Lists scoped to a repository return ErrNotFound when the repository does
// not exist.
//
// # Events
//
// Every method that changes state takes trailing events. A backend appends
// them to the outbox in the same transaction as the change, exactly when
// the method returns a nil error (a call that succeeds without changing
// anything, such as re-pointing a tag at its current digest, still
// appends them), and never otherwise. The caller fills in Type, Subject,
// Data and CreatedAt; the backend assigns ID.
//
// # Times
//
// Backends store the times callers pass (callers own the clock) and return
// them with at least microsecond precision; they never read a clock
// themselves.
type Registry interface {
	Repositories
	Manifests
	Tags
	TagHistory
	Referrers
	Links
	References
	Policies
	ScanResults
	Tokens
	Outbox
}

// Visibility says who may pull from a repository without credentials.
type Visibility string

// The visibilities.
const (
	// Private repositories are readable only by identities granted pull.
	Private Visibility = "private"
	// Public repositories may be pulled anonymously.
	Public Visibility = "public"
)

// Repository is the record of one repository.
type Repository struct {
	// Name is the repository's name, e.g. "team/app".
	Name string
	// Visibility says who may pull without credentials.
	Visibility Visibility
	// ImmutableTags forbids moving an existing tag to another digest,
	// except for tags matching one of ImmutableTagExclusions.
	ImmutableTags bool
	// ImmutableTagExclusions are path.Match patterns; tags matching any of
	// them stay mutable in an immutable repository.
	ImmutableTagExclusions []string
	// Description is free text for people.
	Description string
	// CreatedAt and UpdatedAt are when the repository was created and
	// last changed.
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Repositories stores repositories.
type Repositories interface {
	// CreateRepository stores r; ErrAlreadyExists if the name is taken,
	// ErrInvalidArgument if the visibility is neither Private nor Public or
	// an exclusion is not a valid path.Match pattern.
	CreateRepository(ctx context.Context, r *Repository, events ...Event) error
	// GetRepository returns the repository, or ErrNotFound.
	GetRepository(ctx context.Context, name string) (*Repository, error)
	// UpdateRepository replaces every field of the stored repository
	// except Name and CreatedAt with r's; ErrNotFound if it does not
	// exist, ErrInvalidArgument as for CreateRepository. Concurrent updates
	// are applied in some order: the last one wins.
	UpdateRepository(ctx context.Context, r *Repository, events ...Event) error
	// DeleteRepository removes the repository and everything stored under
	// it: manifests and their references, tags and tag history, blob
	// links and its lifecycle policy. Blob records and scan results, which
	// are keyed by digest, remain. ErrNotFound if it does not exist.
	DeleteRepository(ctx context.Context, name string, events ...Event) error
	// ListRepositories pages through repositories by name (the catalog).
	ListRepositories(ctx context.Context, after string, limit int) (page []*Repository, more bool, err error)
}

// Platform is the platform a manifest runs on, as in an OCI image index.
type Platform struct {
	// Architecture is the CPU architecture, e.g. "amd64" or "arm64".
	Architecture string `json:"architecture"`
	// OS is the operating system, e.g. "linux".
	OS string `json:"os"`
	// OSVersion is the operating system version, e.g. for Windows images.
	OSVersion string `json:"os.version,omitempty"`
	// OSFeatures are required operating system features.
	OSFeatures []string `json:"os.features,omitempty"`
	// Variant is the CPU variant, e.g. "v8".
	Variant string `json:"variant,omitempty"`
}

// Manifest is the record of a manifest (image manifest, image index or
// artifact) stored in one repository. The same digest may be stored in
// several repositories, as separate records.
type Manifest struct {
	// Repository is the repository holding this record.
	Repository string
	// Digest is the digest of the manifest's bytes.
	Digest digest.Digest
	// MediaType is the manifest's media type.
	MediaType string
	// ArtifactType is the manifest's artifact type (OCI 1.1): its
	// artifactType field, or else its config's media type for artifacts.
	ArtifactType string
	// Size is the manifest's length in bytes.
	Size int64
	// ConfigDigest is the config descriptor's digest; empty for an index.
	ConfigDigest digest.Digest
	// Subject is the digest of the manifest this one refers to (OCI
	// referrers); empty when it has no subject.
	Subject digest.Digest
	// Annotations are the manifest's annotations, served in referrers
	// lists.
	Annotations map[string]string
	// Platforms are the platforms of the image, or of the index's
	// children.
	Platforms []Platform
	// Blobs are the digests of the blobs the manifest references (config
	// and layers), in manifest order.
	Blobs []digest.Digest
	// Children are the digests of the manifests an index lists.
	Children []digest.Digest
	// PushedAt is when the manifest was first stored in the repository.
	PushedAt time.Time
	// LastPulledAt is the latest pull (see MarkPulled); zero if never.
	LastPulledAt time.Time
}

// Manifests stores manifests.
type Manifests interface {
	// PutManifest records m in m.Repository unless that repository already
	// holds m.Digest, in which case nothing changes and created is false.
	// ErrNotFound if the repository does not exist. The backend stores
	// Blobs, Children and Subject verbatim; checking that they exist is
	// the caller's job.
	PutManifest(ctx context.Context, m *Manifest, events ...Event) (created bool, err error)
	// GetManifest returns the manifest, or ErrNotFound.
	GetManifest(ctx context.Context, repo string, d digest.Digest) (*Manifest, error)
	// DeleteManifest removes the manifest and its references and returns
	// it. Tags pointing at it are removed too, each recorded in tag history
	// as changed by "by" at "at", even when tags are immutable (deleting
	// images is how lifecycle policies expire them). ErrNotFound if the
	// repository does not hold d.
	DeleteManifest(ctx context.Context, repo string, d digest.Digest, by string, at time.Time, events ...Event) (*Manifest, error)
	// ListManifests pages through a repository's manifests by digest.
	ListManifests(ctx context.Context, repo string, after digest.Digest, limit int) (page []*Manifest, more bool, err error)
	// MarkPulled sets the manifest's LastPulledAt to at unless it is
	// already later; ErrNotFound if the repository does not hold d.
	MarkPulled(ctx context.Context, repo string, d digest.Digest, at time.Time) error
}

// ManifestHead is the part of a manifest record that serving the
// manifest needs: its digest, media type and size.
type ManifestHead struct {
	Digest    digest.Digest
	MediaType string
	Size      int64
}

// ManifestHeads is an optional upgrade of Registry, found by type
// assertion, for the hot path of manifest GET and HEAD requests: it
// resolves a reference to the head of a manifest record in one read.
// Without it the store calls GetTag, then GetManifest.
type ManifestHeads interface {
	// ManifestHead returns the head of the manifest record that reference
	// names in repo. A reference containing ':' is a digest; any other is
	// a tag, resolved to the digest it points at now, in the same read
	// (tags are mutable: the answer reflects every change committed
	// before the call). ErrNotFound when the repository holds no such
	// tag or manifest.
	ManifestHead(ctx context.Context, repo, reference string) (ManifestHead, error)
}

// Tag is the record of a tag.
type Tag struct {
	// Repository is the repository holding the tag.
	Repository string
	// Name is the tag, e.g. "v1.2.3".
	Name string
	// Digest is the manifest the tag points at.
	Digest digest.Digest
	// UpdatedAt and UpdatedBy say when and by whom the tag was last
	// pointed at Digest.
	UpdatedAt time.Time
	UpdatedBy string
}

// Tags stores tags.
type Tags interface {
	// SetTag points t.Name at t.Digest and returns the digest it pointed
	// at before ("" for a new tag). A change is recorded in tag history;
	// setting a tag to its current digest changes nothing and succeeds.
	// ErrNotFound if the repository does not exist or does not hold
	// t.Digest. ErrAlreadyExists if the repository has immutable tags, the
	// tag exists with another digest and its name matches no exclusion:
	// of many concurrent first pushes of one immutable tag, exactly one
	// succeeds.
	SetTag(ctx context.Context, t *Tag, events ...Event) (old digest.Digest, err error)
	// GetTag returns the tag, or ErrNotFound.
	GetTag(ctx context.Context, repo, name string) (*Tag, error)
	// DeleteTag removes the tag, records the change in tag history as made
	// by "by" at "at", and returns the removed record; ErrNotFound if it
	// does not exist. Immutable tags can be deleted (but not moved).
	DeleteTag(ctx context.Context, repo, name, by string, at time.Time, events ...Event) (*Tag, error)
	// ListTags pages through a repository's tags by name.
	ListTags(ctx context.Context, repo, after string, limit int) (page []*Tag, more bool, err error)
	// TagsOf returns the names of the tags pointing at d in repo, sorted;
	// an empty slice when there are none or the repository does not hold
	// d. Listing images with their tags calls it once per image.
	TagsOf(ctx context.Context, repo string, d digest.Digest) ([]string, error)
}

// TagChange is one entry of a tag's history.
type TagChange struct {
	// Seq orders changes; it increases with every change the backend
	// records, across all tags.
	Seq int64
	// Repository and Tag name the tag that changed.
	Repository string
	Tag        string
	// Old is the digest before the change, empty when the tag was created.
	Old digest.Digest
	// New is the digest after the change, empty when the tag was deleted.
	New digest.Digest
	// At and By say when and by whom the change was made.
	At time.Time
	By string
}

// TagHistory reads tag history.
type TagHistory interface {
	// ListTagHistory pages through the changes of one tag by Seq, oldest
	// first. History outlives the tag and its manifests, but not the
	// repository. A tag that never existed has an empty history; a
	// missing repository is ErrNotFound.
	ListTagHistory(ctx context.Context, repo, tag string, after int64, limit int) (page []*TagChange, more bool, err error)
}

// Referrers answers the OCI referrers query.
type Referrers interface {
	// ListReferrers pages, by digest, through the manifests of repo whose
	// Subject is subject and, when artifactType is not empty, whose
	// ArtifactType is artifactType. The subject need not exist.
	ListReferrers(ctx context.Context, repo string, subject digest.Digest, artifactType string, after digest.Digest, limit int) (page []*Manifest, more bool, err error)
}

// Links records which repositories may serve which blobs: a blob is
// visible through a repository only when linked to it.
type Links interface {
	// LinkBlob links blob d to repo at "at"; linking a linked blob
	// succeeds and refreshes the link's time to "at" when that is later
	// (a push that uploads or mounts a blob it already has renews the
	// link, see LinkPruner). ErrNotFound if the repository or the blob
	// record does not exist. Deleting a blob record removes its links.
	LinkBlob(ctx context.Context, repo string, d digest.Digest, at time.Time) error
	// BlobLinked reports whether d is linked to repo. It returns false and
	// no error for unknown repositories and digests.
	BlobLinked(ctx context.Context, repo string, d digest.Digest) (bool, error)
	// UnlinkBlob removes the link; ErrNotFound if there is none.
	UnlinkBlob(ctx context.Context, repo string, d digest.Digest) error
	// ListLinks pages through the digests linked to repo.
	ListLinks(ctx context.Context, repo string, after digest.Digest, limit int) (page []digest.Digest, more bool, err error)
}

// References answers the questions garbage collection asks.
type References interface {
	// CountBlobReferences returns how many repositories link d and how
	// many manifests, in all repositories, list d among their Blobs. Both
	// are zero, with no error, for unknown digests.
	CountBlobReferences(ctx context.Context, d digest.Digest) (links, manifests int64, err error)
	// ListParents pages, by digest, through the indexes of repo that list
	// child among their Children.
	ListParents(ctx context.Context, repo string, child digest.Digest, after digest.Digest, limit int) (page []digest.Digest, more bool, err error)
	// DeleteUnreferencedBlob removes the record of d and returns it, so
	// that garbage collection can delete its parts, if and only if the
	// blob was created before createdBefore (a grace period for pushes in
	// flight), no repository links it, no manifest lists it among its
	// Blobs and no manifest record has d as its Digest (manifest bytes are
	// stored as blobs). The decision is atomic with respect to LinkBlob: a concurrent
	// LinkBlob of d either completes first, and the blob stays, or fails
	// with ErrNotFound. ErrNotFound if there is no record, ErrConflict if
	// the blob is referenced or too new.
	DeleteUnreferencedBlob(ctx context.Context, d digest.Digest, createdBefore time.Time) (*Blob, error)
}

// LinkPruner is an optional upgrade of Registry, found by type
// assertion, that lets garbage collection reclaim the blobs of deleted
// manifests.
//
// A push links its layers and config to the repository (LinkBlob) before
// it stores the manifest that references them, so a link alone must keep
// its blob visible and stored for a while; but once every manifest of the
// repository that referenced the blob is gone, the link is all that keeps
// the blob, and it must go too. The contract between the two is time: a
// link counts as a push in flight until it is older than the collector's
// grace period, measured from its latest LinkBlob (which refreshes it), and
// after that only as long as a manifest of its repository references the
// blob. A push whose uploads or mounts are older than the grace period when
// it stores its manifest may find them unlinked, and its manifest rejected
// as referring to unknown blobs; the client uploads them again.
type LinkPruner interface {
	// PruneLinks removes the links of repo last made or refreshed
	// before linkedBefore to blobs that no manifest of repo lists among
	// its Blobs and that are not the Digest of a manifest of repo, and
	// returns how many it removed. Links to blobs that manifests of other
	// repositories reference are removed all the same: visibility is per
	// repository.
	//
	// The decision is atomic with respect to PutManifest in repo: a
	// manifest stored concurrently is either committed first, and the
	// links of its blobs stay, or committed after the pruning, so that a
	// caller reading the links after storing a manifest sees every link
	// the pruning removed. ErrNotFound if the repository does not exist.
	PruneLinks(ctx context.Context, repo string, linkedBefore time.Time) (int64, error)
}

// Policy is a repository's lifecycle policy.
type Policy struct {
	// Repository is the repository the policy applies to.
	Repository string
	// Document is the policy as JSON (ECR lifecycle-policy syntax),
	// stored verbatim.
	Document []byte
	// UpdatedAt and UpdatedBy say when and by whom it was last set.
	UpdatedAt time.Time
	UpdatedBy string
}

// Policies stores lifecycle policies, at most one per repository.
type Policies interface {
	// PutPolicy stores or replaces the repository's policy; ErrNotFound if
	// the repository does not exist, ErrInvalidArgument if Document is not
	// valid JSON.
	PutPolicy(ctx context.Context, p *Policy, events ...Event) error
	// GetPolicy returns the repository's policy, or ErrNotFound.
	GetPolicy(ctx context.Context, repo string) (*Policy, error)
	// DeletePolicy removes the repository's policy; ErrNotFound if it has
	// none.
	DeletePolicy(ctx context.Context, repo string, events ...Event) error
	// ListPolicies pages through all policies by repository name.
	ListPolicies(ctx context.Context, after string, limit int) (page []*Policy, more bool, err error)
}

// Kinds of scan results.
const (
	// ScanInventory is a scanner's list of the packages found in an image.
	ScanInventory = "inventory"
	// ScanReport is a scanner's vulnerability report.
	ScanReport = "report"
)

// ScanResult is one scanner's inventory or report for a manifest. Results
// are keyed by manifest digest, scanner and kind, and shared by every
// repository holding the digest.
type ScanResult struct {
	// Digest is the scanned manifest's digest.
	Digest digest.Digest
	// Scanner names the scanner (and, if useful, its database version).
	Scanner string
	// Kind is ScanInventory or ScanReport.
	Kind string
	// Data is the result as JSON, stored verbatim.
	Data []byte
	// ScannedAt is when the scan ran.
	ScannedAt time.Time
}

// ScanResults stores scan results.
type ScanResults interface {
	// PutScanResult stores or replaces the result with r's key;
	// ErrInvalidArgument if Kind is unknown or Data is not valid JSON.
	PutScanResult(ctx context.Context, r *ScanResult, events ...Event) error
	// GetScanResult returns the result, or ErrNotFound.
	GetScanResult(ctx context.Context, d digest.Digest, scanner, kind string) (*ScanResult, error)
	// ListScanResults returns every result for d, ordered by scanner then
	// kind; an empty slice when there are none.
	ListScanResults(ctx context.Context, d digest.Digest) ([]*ScanResult, error)
	// DeleteScanResults removes every result for d and returns how many
	// it removed.
	DeleteScanResults(ctx context.Context, d digest.Digest) (int64, error)
}

// Token is a scoped registry token. Only a hash of its secret is stored.
type Token struct {
	// ID identifies the token in the management API.
	ID string
	// Name is the owner's label for the token.
	Name string
	// Username is the login name the token authenticates as; unique.
	Username string
	// SecretHash is the hash of the secret (for example argon2id or
	// SHA-256 of a high-entropy secret), never the secret.
	SecretHash []byte
	// Scopes are scope strings such as "repository:team/*:pull,push".
	Scopes []string
	// CreatedBy and CreatedAt say who created the token, and when.
	CreatedBy string
	CreatedAt time.Time
	// ExpiresAt is zero for a token that never expires.
	ExpiresAt time.Time
	// RevokedAt is zero while the token is not revoked.
	RevokedAt time.Time
	// RatePerSecond and RateBurst are the token's own request rate
	// limit; zero when the server's default applies.
	RatePerSecond float64
	RateBurst     int
}

// Tokens stores registry tokens.
type Tokens interface {
	// CreateToken stores t; ErrAlreadyExists if its ID or Username is
	// taken.
	CreateToken(ctx context.Context, t *Token, events ...Event) error
	// GetToken returns the token with the ID, or ErrNotFound.
	GetToken(ctx context.Context, id string) (*Token, error)
	// GetTokenByUsername returns the token with the username, or
	// ErrNotFound.
	GetTokenByUsername(ctx context.Context, username string) (*Token, error)
	// RevokeToken marks the token revoked at "at"; revoking a revoked
	// token keeps the first time and succeeds. ErrNotFound if it does not
	// exist.
	RevokeToken(ctx context.Context, id string, at time.Time, events ...Event) error
	// ListTokens pages through tokens by ID, revoked and expired ones
	// included.
	ListTokens(ctx context.Context, after string, limit int) (page []*Token, more bool, err error)
}

// Event is an outbox entry: a state change to publish.
type Event struct {
	// ID is assigned by the backend when the event is appended; it
	// increases in append order within one backend.
	ID int64
	// Type is the event type, e.g. "dev.berth.manifest.pushed".
	Type string
	// Subject names what changed, e.g. "team/app:latest".
	Subject string
	// Data is the payload, stored verbatim.
	Data []byte
	// CreatedAt is when the change happened.
	CreatedAt time.Time
}

// Outbox is the queue of events that a relay publishes. Delivery is at
// least once: an event is handed out again when its claim expires before
// it is acknowledged.
type Outbox interface {
	// AppendEvents appends events that accompany no other state change.
	AppendEvents(ctx context.Context, events ...Event) error
	// ClaimEvents returns up to limit events (limit at least 1), oldest
	// first, that are unclaimed or whose claim expired at or before now,
	// and claims them until now+lease. Concurrent claimers get disjoint
	// events. It returns an empty slice when there are none.
	ClaimEvents(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*Event, error)
	// AckEvents removes delivered events. Unknown IDs are ignored.
	AckEvents(ctx context.Context, ids ...int64) error
}
