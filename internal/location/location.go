// Package location keeps a deployment inside its allowed locations
// (CCC.Core.C06/CN06, restrict deployments to the trust perimeter; and
// data residency): it works out where the blob store, the key-encryption
// key, the metadata database and the event broker live, from their URLs,
// and refuses a configuration that puts any of them outside the allowed
// list.
//
// # Locations
//
// A location is a cloud region name as its provider spells it
// ("eu-central-1", "europe-west3", "germanywestcentral"), "global" for
// resources without a region (a Cloud KMS key in locations/global), or
// "local" for resources on the machine itself (file and memory buckets,
// SQLite, a key file, a database or broker on a loopback address).
//
// What each URL says:
//
//   - blob URLs: file:// and mem:// are local; s3:// is its region query
//     parameter, else AWS_REGION or AWS_DEFAULT_REGION, and local when its
//     endpoint parameter is a loopback address (another endpoint needs a
//     hint: the region parameter of an S3-compatible server says nothing
//     about where it is); gs:// is not in its URL, but Cloud Storage
//     reports it: Check returns an [*AskError] and the caller asks the
//     bucket and calls [Checker.CheckReported] (a hint, if given, must
//     match the report); azblob:// needs a hint (a storage account's
//     location is not in its URL, nor readable with storage credentials);
//   - keeper URLs: none (the local key file) and base64key:// are local;
//     awskms:// is the region of its key ARN, else its region parameter,
//     else AWS_REGION or AWS_DEFAULT_REGION; gcpkms:// is the
//     locations/<name> segment of its key name; azurekeyvault:// and
//     others need a hint;
//   - metadata URLs: sqlite:// is local; postgres:// is local when every
//     host is a loopback address or a Unix socket, the region of an Amazon
//     RDS host name (…​.<region>.rds.amazonaws.com), else it needs a hint;
//   - event topic URLs: mem:// is local; nats:// is local on loopback
//     addresses; awssns:// and awssqs:// are the region of their ARN or
//     queue URL; others need a hint.
//
// # Errors
//
// Check fails closed: it returns an [*AskError] when only the service can
// say where the resource is (the caller must then ask it and call
// CheckReported, or fail), and other errors when a location cannot be determined and no hint is
// given, when a hint contradicts what the URL says, and when the location
// is not allowed. Every error names the setting ("--blob-url"), the URL
// without credentials or query, and what to do.
package location

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// Local is the location of resources on the machine itself.
const Local = "local"

// Kind is what a URL configures.
type Kind string

// The kinds of resources whose location is checked; each is also the key
// of its hint.
const (
	Blob     Kind = "blob"
	Keeper   Kind = "keeper"
	Metadata Kind = "meta"
	Events   Kind = "events"
)

// Kinds lists every Kind, in the order of the registry's settings.
var Kinds = []Kind{Blob, Keeper, Metadata, Events}

// ValidName reports whether s is a well-formed location name: lower-case
// letters, digits and '-', starting with a letter or digit, at most 64
// characters.
func ValidName(s string) bool {
	if s == "" || len(s) > 64 || s[0] == '-' {
		return false
	}
	for _, c := range s {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// Checker decides whether resources are in allowed locations.
type Checker struct {
	allowed []string
	hints   map[Kind]string
	opts    Options
}

// Options configures a Checker. A nil *Options is the zero value.
type Options struct {
	// Getenv reads AWS_REGION and AWS_DEFAULT_REGION. Default: no
	// environment (nothing is read).
	Getenv func(string) string
	// HintFlag names the setting that gives hints, in error messages.
	// Default "location hint".
	HintFlag string
}

// NewChecker returns a Checker allowing the locations in allowed (at
// least one) and using hints (kind → location) where URLs say nothing.
// Names are case-insensitive.
func NewChecker(allowed []string, hints map[Kind]string, opts *Options) (*Checker, error) {
	c := &Checker{hints: map[Kind]string{}}
	if opts != nil {
		c.opts = *opts
	}
	if c.opts.Getenv == nil {
		c.opts.Getenv = func(string) string { return "" }
	}
	if c.opts.HintFlag == "" {
		c.opts.HintFlag = "location hint"
	}
	for _, a := range allowed {
		a = strings.ToLower(strings.TrimSpace(a))
		if a == "" {
			continue
		}
		if !ValidName(a) {
			return nil, fmt.Errorf("location: allowed location %q is not a location name (such as eu-central-1, europe-west3, germanywestcentral or local)", a)
		}
		if !slices.Contains(c.allowed, a) {
			c.allowed = append(c.allowed, a)
		}
	}
	if len(c.allowed) == 0 {
		return nil, fmt.Errorf("location: no allowed locations")
	}
	for k, v := range hints {
		if !slices.Contains(Kinds, k) {
			return nil, fmt.Errorf("location: unknown hint %q (want one of %v)", k, Kinds)
		}
		v = strings.ToLower(strings.TrimSpace(v))
		if !ValidName(v) {
			return nil, fmt.Errorf("location: hint %s=%q is not a location name", k, v)
		}
		c.hints[k] = v
	}
	return c, nil
}

// ParseHints parses "kind=location,kind=location".
func ParseHints(s string) (map[Kind]string, error) {
	out := map[Kind]string{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("location: hint %q: want kind=location", part)
		}
		kind := Kind(strings.TrimSpace(k))
		if _, dup := out[kind]; dup {
			return nil, fmt.Errorf("location: hint %q given twice", kind)
		}
		out[kind] = strings.TrimSpace(v)
	}
	return out, nil
}

// Allowed returns the allowed locations.
func (c *Checker) Allowed() []string { return slices.Clone(c.allowed) }

// Allows reports whether loc is allowed.
func (c *Checker) Allows(loc string) bool { return slices.Contains(c.allowed, strings.ToLower(loc)) }

// CheckSelf checks the location the service itself runs in, given by
// setting (e.g. "--location").
func (c *Checker) CheckSelf(setting, loc string) error {
	loc = strings.ToLower(strings.TrimSpace(loc))
	if loc == "" {
		return fmt.Errorf("location: %s is required when allowed locations are configured: say where this server runs", setting)
	}
	if !ValidName(loc) {
		return fmt.Errorf("location: %s %q is not a location name", setting, loc)
	}
	if !c.Allows(loc) {
		return fmt.Errorf("location: %s is %s, which is not an allowed location (allowed: %s)", setting, loc, strings.Join(c.allowed, ", "))
	}
	return nil
}

// Check returns the location of the resource that setting (e.g.
// "--blob-url") configures with rawURL, or an error when it cannot be
// determined, contradicts the hint, or is not allowed. An empty rawURL
// is the default of kind: local for Blob, Keeper and Metadata (a file
// bucket, a key file, SQLite), and nothing to check for Events ("", nil).
func (c *Checker) Check(kind Kind, setting, rawURL string) (string, error) {
	if rawURL == "" && kind == Events {
		return "", nil
	}
	derived, why := c.derive(kind, rawURL)
	hint, hinted := c.hints[kind]
	shown := Redact(rawURL)
	if derived == "" && askable(kind, rawURL) {
		return "", &AskError{Kind: kind, Setting: setting, URL: shown, Hint: hint}
	}
	loc := derived
	switch {
	case derived != "" && hinted && hint != derived:
		return "", fmt.Errorf("location: %s %s is in %s, but the %s says %s=%s", setting, shown, derived, c.opts.HintFlag, kind, hint)
	case derived == "" && !hinted:
		return "", fmt.Errorf("location: %s %s: %s; give it with the %s %s=<location>", setting, shown, why, c.opts.HintFlag, kind)
	case derived == "":
		loc = hint
	}
	if !c.Allows(loc) {
		return "", fmt.Errorf("location: %s %s is in %s, which is not an allowed location (allowed: %s)", setting, shown, loc, strings.Join(c.allowed, ", "))
	}
	return loc, nil
}

// AskError says that a resource's location is not in its URL but its
// service reports it: the caller asks (for a gs:// bucket, the bucket's
// attributes) and calls CheckReported with the answer.
type AskError struct {
	// Kind and Setting say which resource; URL is its redacted URL.
	Kind    Kind
	Setting string
	URL     string
	// Hint is the hinted location, "" when none; CheckReported compares
	// it with the report.
	Hint string
}

// Error says what is missing.
func (e *AskError) Error() string {
	return fmt.Sprintf("location: %s %s: the location must be read from the service", e.Setting, e.URL)
}

func askable(kind Kind, raw string) bool {
	return kind == Blob && strings.HasPrefix(strings.ToLower(raw), "gs://")
}

// CheckReported checks the location a resource's service reported for it
// (lower-cased: Cloud Storage's "EUROPE-WEST3" is europe-west3, its
// multi-regions "EU" and "US" are eu and us): it must match the hint, if
// any, and be allowed.
func (c *Checker) CheckReported(kind Kind, setting, rawURL, reported string) (string, error) {
	loc := strings.ToLower(strings.TrimSpace(reported))
	shown := Redact(rawURL)
	if !ValidName(loc) {
		return "", fmt.Errorf("location: %s %s: its service reported no usable location (%q)", setting, shown, reported)
	}
	if hint, ok := c.hints[kind]; ok && hint != loc {
		return "", fmt.Errorf("location: %s %s is in %s (as its service reports), but the %s says %s=%s", setting, shown, loc, c.opts.HintFlag, kind, hint)
	}
	if !c.Allows(loc) {
		return "", fmt.Errorf("location: %s %s is in %s (as its service reports), which is not an allowed location (allowed: %s)", setting, shown, loc, strings.Join(c.allowed, ", "))
	}
	return loc, nil
}

// derive returns the location a URL says, or "" and why it says none.
func (c *Checker) derive(kind Kind, raw string) (string, string) {
	if raw == "" {
		return Local, ""
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return "", "not a URL"
	}
	scheme = strings.ToLower(scheme)
	switch kind {
	case Blob:
		return c.blob(scheme, raw)
	case Keeper:
		return c.keeper(scheme, rest)
	case Metadata:
		return metadata(scheme, raw)
	case Events:
		return events(scheme, raw, rest)
	}
	return "", "unknown kind"
}

func (c *Checker) awsEnv() string {
	if r := c.opts.Getenv("AWS_REGION"); r != "" {
		return strings.ToLower(r)
	}
	return strings.ToLower(c.opts.Getenv("AWS_DEFAULT_REGION"))
}

func (c *Checker) blob(scheme, raw string) (string, string) {
	switch scheme {
	case "file", "mem":
		return Local, ""
	case "s3":
		u, err := url.Parse(raw)
		if err != nil {
			return "", "malformed URL"
		}
		q := u.Query()
		if ep := q.Get("endpoint"); ep != "" {
			if loopbackURL(ep) {
				return Local, ""
			}
			return "", "an S3-compatible endpoint's location cannot be determined from its URL"
		}
		if r := q.Get("region"); r != "" {
			return strings.ToLower(r), ""
		}
		if r := c.awsEnv(); r != "" {
			return r, ""
		}
		return "", "the URL has no region parameter and neither AWS_REGION nor AWS_DEFAULT_REGION is set"
	case "gs":
		return "", "a Cloud Storage bucket's location is not in its URL"
	case "azblob":
		return "", "an Azure storage account's location is not in its URL"
	}
	return "", "the location of " + scheme + ":// buckets cannot be determined"
}

func (c *Checker) keeper(scheme, rest string) (string, string) {
	key, query, _ := strings.Cut(rest, "?")
	q, _ := url.ParseQuery(query)
	switch scheme {
	case "base64key", "file":
		return Local, ""
	case "awskms":
		key = strings.TrimPrefix(key, "/")
		param := strings.ToLower(q.Get("region"))
		if strings.HasPrefix(key, "arn:") {
			f := strings.Split(key, ":")
			if len(f) < 6 || f[3] == "" {
				return "", "malformed key ARN"
			}
			r := strings.ToLower(f[3])
			if param != "" && param != r {
				return "", "the key ARN's region " + r + " and the region parameter " + param + " disagree"
			}
			return r, ""
		}
		if param != "" {
			return param, ""
		}
		if r := c.awsEnv(); r != "" {
			return r, ""
		}
		return "", "the key is not an ARN, the URL has no region parameter and neither AWS_REGION nor AWS_DEFAULT_REGION is set"
	case "gcpkms":
		segs := strings.Split(strings.TrimPrefix(key, "/"), "/")
		for i := 0; i+1 < len(segs); i++ {
			if segs[i] == "locations" && segs[i+1] != "" {
				return strings.ToLower(segs[i+1]), ""
			}
		}
		return "", "the key name has no locations/<location> segment"
	case "azurekeyvault":
		return "", "an Azure key vault's location is not in its URL"
	}
	return "", "the location of " + scheme + ":// keys cannot be determined"
}

func metadata(scheme, raw string) (string, string) {
	switch scheme {
	case "sqlite", "sqlite3", "file":
		return Local, ""
	case "postgres", "postgresql":
	default:
		return "", "the location of " + scheme + ":// databases cannot be determined"
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", "malformed URL"
	}
	var hosts []string
	for _, h := range strings.Split(u.Host, ",") {
		if h != "" {
			hosts = append(hosts, h)
		}
	}
	if h := u.Query().Get("host"); h != "" {
		hosts = append(hosts, strings.Split(h, ",")...)
	}
	if len(hosts) == 0 {
		return Local, "" // the default Unix socket
	}
	loc := ""
	for _, h := range hosts {
		var l string
		switch {
		case strings.HasPrefix(h, "/") || loopbackHost(h):
			l = Local
		default:
			l = rdsRegion(hostOnly(h))
		}
		if l == "" {
			return "", "the database host " + hostOnly(h) + " does not say where it is"
		}
		if loc != "" && l != loc {
			return "", "the database hosts are in different locations (" + loc + ", " + l + ")"
		}
		loc = l
	}
	return loc, ""
}

// rdsRegion returns the region of an Amazon RDS endpoint name,
// <id>.<hash>.<region>.rds.amazonaws.com.
func rdsRegion(h string) string {
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	rest, ok := strings.CutSuffix(h, ".rds.amazonaws.com")
	if !ok {
		return ""
	}
	if i := strings.LastIndexByte(rest, '.'); i >= 0 && ValidName(rest[i+1:]) {
		return rest[i+1:]
	}
	return ""
}

func events(scheme, raw, rest string) (string, string) {
	switch scheme {
	case "mem":
		return Local, ""
	case "nats":
		u, err := url.Parse(raw)
		if err == nil && (u.Host == "" || loopbackHost(u.Host)) {
			return Local, ""
		}
		return "", "a NATS server's location is not in its URL"
	case "awssns", "awssqs":
		// awssns:///arn:aws:sns:<region>:<account>:<topic>,
		// awssqs://sqs.<region>.amazonaws.com/<account>/<queue>.
		rest, _, _ = strings.Cut(rest, "?")
		rest = strings.TrimPrefix(rest, "/")
		if strings.HasPrefix(rest, "arn:") {
			if f := strings.Split(rest, ":"); len(f) >= 6 && ValidName(strings.ToLower(f[3])) {
				return strings.ToLower(f[3]), ""
			}
		}
		host, _, _ := strings.Cut(rest, "/")
		if p := strings.Split(host, "."); len(p) == 4 && p[0] == "sqs" && p[2] == "amazonaws" && ValidName(p[1]) {
			return p[1], ""
		}
		return "", "the topic's region is not in its URL"
	}
	return "", "the location of " + scheme + ":// topics cannot be determined"
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

func loopbackHost(hostport string) bool {
	h := hostOnly(hostport)
	if strings.EqualFold(h, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.Unmap().IsLoopback()
}

func loopbackURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.Host != "" && loopbackHost(u.Host)
}

// Redact returns a URL for messages: scheme, host and path, without user
// information, query or fragment.
func Redact(raw string) string {
	if raw == "" {
		return "(default)"
	}
	if u, err := url.Parse(raw); err == nil && u.Scheme != "" {
		u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
		return u.String()
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return "(not a URL)"
	}
	rest, _, _ = strings.Cut(rest, "?")
	rest, _, _ = strings.Cut(rest, "#")
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		rest = rest[i+1:]
	}
	return scheme + "://" + rest
}
