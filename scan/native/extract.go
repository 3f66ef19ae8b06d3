package native

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/scan"
	"github.com/berth-dev/berth/scan/internal/ctximage"
	"github.com/berth-dev/berth/scan/native/internal/version"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/package-url/packageurl-go"
)

// Ecosystem names of the OSV schema.
const (
	ecoGo   = "Go"
	ecoNPM  = "npm"
	ecoPyPI = "PyPI"
)

// rawPkg is a package found before the OS is known.
type rawPkg struct {
	kind string // "deb", "apk", "rpm", "go", "npm", "pypi"
	// rpmEpoch and rpmVR are an RPM's epoch and version-release, for its
	// purl.
	rpmEpoch, rpmVR     string
	name, version       string
	srcName, srcVersion string
	arch                string
	location            string
}

type rpmDB struct {
	name string
	data []byte
}

type extractor struct {
	opts      *Options
	rpmDBs    []rpmDB
	osRelease map[string][]byte
	pkgs      []rawPkg
	unsupp    map[string]bool
	buf       []byte
}

// Index implements scan.Indexer: it walks img's layers once and lists the
// packages of its dpkg, apk and rpmdb.sqlite databases, the Go modules (and Go version)
// of its Go executables, its npm packages (node_modules/**/package.json)
// and Python distributions (*.dist-info/METADATA, *.egg-info/PKG-INFO).
func (s *Scanner) Index(ctx context.Context, img v1.Image) (*scan.Inventory, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("native: %w", err)
	}
	d, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("native: %w", err)
	}
	x := &extractor{opts: &s.opts, osRelease: map[string][]byte{}, unsupp: map[string]bool{}}
	if err := walkImage(ctx, ctximage.Wrap(ctx, img), x.visit); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("native: %w", ctx.Err())
		}
		return nil, err
	}
	for _, db := range x.rpmDBs {
		pkgs, err := readRPMSQLite(ctx, db.data)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("native: %w", ctx.Err())
			}
			x.unsupp["rpm database "+db.name+" unreadable: "+err.Error()] = true
			continue
		}
		for _, p := range pkgs {
			vr := p.version
			if p.release != "" {
				vr += "-" + p.release
			}
			epoch := ""
			if p.hasEpoch && p.epoch != 0 {
				epoch = strconv.FormatInt(p.epoch, 10)
			}
			x.pkgs = append(x.pkgs, rawPkg{kind: "rpm", name: p.name, version: p.evr(), srcName: p.sourceName(),
				arch: p.arch, location: db.name, rpmEpoch: epoch, rpmVR: vr})
		}
	}
	inv := x.inventory()
	inv.Digest = d.String()
	inv.Indexer = s.Info()
	return inv, nil
}

func (x *extractor) visit(name string, hdr *tar.Header, r io.Reader) error {
	dir, base := path.Split(name)
	switch {
	case name == "/etc/os-release" || name == "/usr/lib/os-release":
		b, err := readBounded(r, 64<<10)
		if err == nil {
			x.osRelease[name] = b
		}
		return nil
	case name == "/var/lib/dpkg/status" || (dir == "/var/lib/dpkg/status.d/" && !strings.HasSuffix(base, ".md5sums")):
		return x.parseControl(name, hdr.Size, r, "deb")
	case name == "/lib/apk/db/installed":
		return x.parseControl(name, hdr.Size, r, "apk")
	case (dir == "/var/lib/rpm/" || dir == "/usr/lib/sysimage/rpm/") && base == "rpmdb.sqlite":
		if hdr.Size > x.opts.MaxDBSize {
			x.unsupp["rpm database "+name+" larger than "+strconv.FormatInt(x.opts.MaxDBSize, 10)+" bytes"] = true
			return nil
		}
		b, err := readBounded(r, x.opts.MaxDBSize)
		if err != nil {
			return fmt.Errorf("native: reading %s: %w", name, err)
		}
		x.rpmDBs = append(x.rpmDBs, rpmDB{name, b})
		return nil
	case (dir == "/var/lib/rpm/" || dir == "/usr/lib/sysimage/rpm/") && (base == "Packages" || base == "Packages.db"):
		x.unsupp["rpm database "+name+" (Berkeley DB or NDB format)"] = true
		return nil
	case base == "package.json" && isNodeModule(dir):
		return x.parseNPM(name, r)
	case base == "METADATA" && strings.HasSuffix(dir, ".dist-info/"),
		base == "PKG-INFO" && strings.HasSuffix(dir, ".egg-info/"):
		return x.parsePython(name, r)
	case hdr.Mode&0o111 != 0 && hdr.Size >= 64 && hdr.Size <= x.opts.MaxBinarySize:
		return x.parseGoBinary(name, hdr.Size, r)
	}
	return nil
}

// isNodeModule reports whether dir is node_modules/NAME/ or
// node_modules/@SCOPE/NAME/.
func isNodeModule(dir string) bool {
	parts := strings.Split(strings.TrimSuffix(dir, "/"), "/")
	n := len(parts)
	if n >= 2 && parts[n-2] == "node_modules" && !strings.HasPrefix(parts[n-1], "@") && !strings.HasPrefix(parts[n-1], ".") {
		return true
	}
	return n >= 3 && parts[n-3] == "node_modules" && strings.HasPrefix(parts[n-2], "@")
}

func readBounded(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("native: file larger than %d bytes", limit)
	}
	return b, nil
}

// parseControl reads a dpkg status file (RFC 822-like stanzas) or an apk
// installed database (one "X:value" line per field), streaming.
//
// A database larger than Options.MaxDBSize, or with a line over 1 MiB, is
// not read (a partial list would hide packages); it is listed in the
// inventory's Unsupported, which makes the report StatusUnknown.
func (x *extractor) parseControl(name string, size int64, r io.Reader, kind string) error {
	if size > x.opts.MaxDBSize {
		x.unsupp[kind+" database "+name+" larger than "+strconv.FormatInt(x.opts.MaxDBSize, 10)+" bytes"] = true
		return nil
	}
	first := len(x.pkgs)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var cur rawPkg
	installed := kind == "apk" || name != "/var/lib/dpkg/status"
	flush := func() {
		if cur.name != "" && cur.version != "" && installed {
			cur.kind = kind
			cur.location = name
			x.pkgs = append(x.pkgs, cur)
		}
		cur = rawPkg{}
		installed = kind == "apk" || name != "/var/lib/dpkg/status"
	}
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		if kind == "apk" {
			if len(line) < 2 || line[1] != ':' {
				continue
			}
			v := line[2:]
			switch line[0] {
			case 'P':
				cur.name = v
			case 'V':
				cur.version = v
			case 'o':
				cur.srcName = v
			case 'A':
				cur.arch = v
			}
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue // continuation line
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Package":
			cur.name = v
		case "Version":
			cur.version = v
		case "Architecture":
			cur.arch = v
		case "Source":
			// "Source: name" or "Source: name (version)".
			if n, ver, ok := strings.Cut(v, " ("); ok {
				cur.srcName, cur.srcVersion = n, strings.TrimSuffix(ver, ")")
			} else {
				cur.srcName = v
			}
		case "Status":
			f := strings.Fields(v)
			installed = len(f) == 3 && f[2] == "installed"
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			x.pkgs = x.pkgs[:first]
			x.unsupp[kind+" database "+name+" unreadable (line too long)"] = true
			return nil
		}
		return fmt.Errorf("native: reading %s: %w", name, err)
	}
	return nil
}

func (x *extractor) parseNPM(name string, r io.Reader) error {
	b, err := readBounded(r, 1<<20)
	if err != nil {
		return nil // not a package manifest we can read; skip
	}
	var p struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	}
	if json.Unmarshal(b, &p) != nil || p.Name == "" || p.Version == "" {
		return nil
	}
	x.pkgs = append(x.pkgs, rawPkg{kind: "npm", name: p.Name, version: p.Version, location: name})
	return nil
}

func (x *extractor) parsePython(name string, r io.Reader) error {
	// Only the header block matters; bound it.
	tp := textproto.NewReader(bufio.NewReader(io.LimitReader(r, 256<<10)))
	h, err := tp.ReadMIMEHeader()
	if err != nil && len(h) == 0 {
		return nil
	}
	n, v := h.Get("Name"), h.Get("Version")
	if n == "" || v == "" {
		return nil
	}
	x.pkgs = append(x.pkgs, rawPkg{kind: "pypi", name: n, version: v, location: name})
	return nil
}

var elfMagic = []byte("\x7fELF")

func (x *extractor) parseGoBinary(name string, size int64, r io.Reader) error {
	var magic [4]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil || !bytes.Equal(magic[:], elfMagic) {
		return nil
	}
	if cap(x.buf) < int(size) {
		x.buf = make([]byte, size)
	}
	b := x.buf[:size]
	copy(b, magic[:])
	if _, err := io.ReadFull(r, b[4:]); err != nil {
		return fmt.Errorf("native: reading %s: %w", name, err)
	}
	bi, err := buildinfo.Read(bytes.NewReader(b))
	if err != nil {
		return nil // an ELF file, but not a Go binary
	}
	if gv := goVersion(bi.GoVersion); gv != "" {
		x.pkgs = append(x.pkgs, rawPkg{kind: "go", name: "stdlib", version: gv, location: name})
	}
	if m := bi.Main; m.Path != "" && m.Version != "" && m.Version != "(devel)" {
		x.pkgs = append(x.pkgs, rawPkg{kind: "go", name: m.Path, version: m.Version, location: name})
	}
	for _, d := range bi.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		if d.Path == "" || d.Version == "" || d.Version == "(devel)" {
			continue
		}
		x.pkgs = append(x.pkgs, rawPkg{kind: "go", name: d.Path, version: d.Version, location: name})
	}
	return nil
}

// goVersion turns "go1.22.1" or "go1.22rc1 X:boringcrypto" into a semver
// "v1.22.1" / "v1.22.0-rc.1"; "" for devel toolchains.
func goVersion(v string) string {
	v, _, _ = strings.Cut(v, " ")
	v, ok := strings.CutPrefix(v, "go")
	if !ok || v == "" || strings.HasPrefix(v, "devel") {
		return ""
	}
	pre := ""
	for _, p := range []string{"rc", "beta"} {
		if i := strings.Index(v, p); i > 0 {
			v, pre = v[:i], "-"+p+"."+v[i+len(p):]
			break
		}
	}
	if strings.Count(v, ".") == 1 {
		v += ".0"
	}
	return "v" + v + pre
}

// inventory turns what the walk found into an Inventory.
func (x *extractor) inventory() *scan.Inventory {
	inv := &scan.Inventory{Schema: scan.InventorySchema, Packages: []scan.Package{}}
	osr := x.osRelease["/etc/os-release"]
	if osr == nil {
		osr = x.osRelease["/usr/lib/os-release"]
	}
	if osr != nil {
		inv.OS = parseOSRelease(osr)
	}
	for _, p := range x.pkgs {
		inv.Packages = append(inv.Packages, x.pkg(p, inv.OS))
	}
	for k := range x.unsupp {
		inv.Unsupported = append(inv.Unsupported, k)
	}
	slices.Sort(inv.Unsupported)
	slices.SortFunc(inv.Packages, func(a, b scan.Package) int {
		return cmpStrings(a.Ecosystem, b.Ecosystem, a.Name, b.Name, a.Version, b.Version, a.Location, b.Location)
	})
	inv.Packages = slices.Compact(inv.Packages)
	return inv
}

func cmpStrings(pairs ...string) int {
	for i := 0; i+1 < len(pairs); i += 2 {
		if c := strings.Compare(pairs[i], pairs[i+1]); c != 0 {
			return c
		}
	}
	return 0
}

func (x *extractor) pkg(p rawPkg, os *scan.OS) scan.Package {
	out := scan.Package{Name: p.name, Version: p.version, Location: p.location}
	if p.srcName != "" && p.srcName != p.name {
		out.SourceName = p.srcName
	}
	if p.srcVersion != "" && p.srcVersion != p.version {
		out.SourceVersion = p.srcVersion
	}
	var q packageurl.Qualifiers
	switch p.kind {
	case "deb", "apk":
		ns := "debian"
		typ := packageurl.TypeDebian
		if p.kind == "apk" {
			ns, typ = "alpine", packageurl.TypeApk
		}
		if os != nil {
			if os.ID != "" {
				ns = os.ID
			}
			if os.Ecosystem != "" && ecosystemKind(os.Ecosystem) == p.kind {
				out.Ecosystem = os.Ecosystem
			}
		}
		m := map[string]string{}
		if p.arch != "" {
			m["arch"] = p.arch
		}
		if os != nil && os.VersionID != "" {
			m["distro"] = os.ID + "-" + os.VersionID
		}
		if out.SourceName != "" {
			m["upstream"] = out.SourceName
		}
		q = packageurl.QualifiersFromMap(m)
		out.PURL = packageurl.NewPackageURL(typ, ns, p.name, p.version, q, "").ToString()
	case "rpm":
		ns := ""
		if os != nil {
			ns = os.ID
			if ecosystemKind(os.Ecosystem) == "rpm" {
				out.Ecosystem = os.Ecosystem
			}
		}
		m := map[string]string{}
		if p.arch != "" {
			m["arch"] = p.arch
		}
		if p.rpmEpoch != "" {
			m["epoch"] = p.rpmEpoch
		}
		if os != nil && os.VersionID != "" {
			m["distro"] = os.ID + "-" + os.VersionID
		}
		if out.SourceName != "" {
			m["upstream"] = out.SourceName
		}
		out.PURL = packageurl.NewPackageURL(packageurl.TypeRPM, ns, p.name, p.rpmVR, packageurl.QualifiersFromMap(m), "").ToString()
	case "go":
		out.Ecosystem = ecoGo
		ns, n := "", p.name
		if i := strings.LastIndexByte(n, '/'); i >= 0 {
			ns, n = n[:i], n[i+1:]
		}
		out.PURL = packageurl.NewPackageURL(packageurl.TypeGolang, ns, n, p.version, nil, "").ToString()
	case "npm":
		out.Ecosystem = ecoNPM
		ns, n := "", p.name
		if s, rest, ok := strings.Cut(n, "/"); ok && strings.HasPrefix(s, "@") {
			ns, n = s, rest
		}
		out.PURL = packageurl.NewPackageURL(packageurl.TypeNPM, ns, n, p.version, nil, "").ToString()
	case "pypi":
		out.Ecosystem = ecoPyPI
		out.PURL = packageurl.NewPackageURL(packageurl.TypePyPi, "", version.NormalizePyPIName(p.name), p.version, nil, "").ToString()
	}
	return out
}

// ecosystemKind says which package database an OS ecosystem describes.
func ecosystemKind(eco string) string {
	base, _, _ := strings.Cut(eco, ":")
	switch base {
	case "Debian", "Ubuntu":
		return "deb"
	case "Alpine", "Wolfi", "Chainguard":
		return "apk"
	case "Rocky Linux", "AlmaLinux":
		return "rpm"
	}
	return ""
}

func parseOSRelease(b []byte) *scan.OS {
	os := &scan.OS{}
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"'`)
		switch k {
		case "ID":
			os.ID = strings.ToLower(v)
		case "VERSION_ID":
			os.VersionID = v
		case "PRETTY_NAME":
			os.PrettyName = v
		}
	}
	if os.ID == "" {
		return nil
	}
	switch os.ID {
	case "debian":
		if os.VersionID != "" {
			major, _, _ := strings.Cut(os.VersionID, ".")
			os.Ecosystem = "Debian:" + major
		}
	case "ubuntu":
		if os.VersionID != "" {
			os.Ecosystem = "Ubuntu:" + os.VersionID
		}
	case "alpine":
		parts := strings.SplitN(os.VersionID, ".", 3)
		if len(parts) >= 2 {
			os.Ecosystem = "Alpine:v" + parts[0] + "." + parts[1]
		}
	case "rocky", "almalinux":
		if os.VersionID != "" {
			major, _, _ := strings.Cut(os.VersionID, ".")
			os.Ecosystem = map[string]string{"rocky": "Rocky Linux:", "almalinux": "AlmaLinux:"}[os.ID] + major
		}
	case "wolfi":
		os.Ecosystem = "Wolfi"
	case "chainguard":
		os.Ecosystem = "Chainguard"
	}
	return os
}
