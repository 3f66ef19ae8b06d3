package scan

// InventorySchema is the value of Inventory.Schema.
const InventorySchema = "berth.dev/scan-inventory/v1"

// Inventory is the list of packages found in one image: the result of
// [Indexer.Index], computed once per manifest and stored as JSON (kind
// driver.ScanInventory), so that matching against new vulnerability data
// does not read the image again.
type Inventory struct {
	// Schema is InventorySchema.
	Schema string `json:"schema"`
	// Indexer names the indexer and its version; an inventory from
	// another indexer version is recomputed.
	Indexer Info `json:"indexer"`
	// Digest is the image's manifest digest.
	Digest string `json:"digest,omitempty"`
	// OS is the detected operating system; nil when none was found.
	OS *OS `json:"os,omitempty"`
	// Packages are the installed packages, sorted by ecosystem, name,
	// version and location.
	Packages []Package `json:"packages"`
	// Unsupported lists package databases found but not read (for
	// example "rpm"); when it is not empty and Packages is, the image is
	// StatusUnknown.
	Unsupported []string `json:"unsupported,omitempty"`
}

// OS is an operating system detected from /etc/os-release.
type OS struct {
	// ID is os-release's ID, e.g. "debian", "alpine".
	ID string `json:"id"`
	// VersionID is os-release's VERSION_ID, e.g. "12", "3.19.1".
	VersionID string `json:"versionId,omitempty"`
	// PrettyName is os-release's PRETTY_NAME.
	PrettyName string `json:"prettyName,omitempty"`
	// Ecosystem is the OSV ecosystem of its packages, e.g. "Debian:12",
	// "Alpine:v3.19"; empty when unknown.
	Ecosystem string `json:"ecosystem,omitempty"`
}

// String returns "ID VersionID".
func (o *OS) String() string {
	if o == nil {
		return ""
	}
	if o.VersionID == "" {
		return o.ID
	}
	return o.ID + " " + o.VersionID
}
