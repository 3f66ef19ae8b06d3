package native

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing/fstest"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, for rpmdb.sqlite
	"modernc.org/sqlite/vfs"
)

// RPM header tags read from rpmdb.sqlite.
const (
	tagName      = 1000
	tagVersion   = 1001
	tagRelease   = 1002
	tagEpoch     = 1003
	tagArch      = 1022
	tagSourceRPM = 1044
)

// RPM header entry types used here.
const (
	typeInt32  = 4
	typeString = 6
)

// maxHeaderEntries bounds one package header.
const maxHeaderEntries = 1 << 16

// rpmPackage is what is read from one header.
type rpmPackage struct {
	name, version, release, arch, sourceRPM string
	epoch                                   int64
	hasEpoch                                bool
}

// parseRPMHeader decodes an RPM header blob as rpmdb.sqlite stores it:
// index length and data length (big-endian uint32), the index entries
// (tag, type, offset, count; 16 bytes each), then the data store.
func parseRPMHeader(b []byte) (rpmPackage, error) {
	var p rpmPackage
	if len(b) < 8 {
		return p, errors.New("short header")
	}
	il, dl := binary.BigEndian.Uint32(b), binary.BigEndian.Uint32(b[4:])
	if il > maxHeaderEntries || uint64(8)+uint64(il)*16+uint64(dl) > uint64(len(b)) {
		return p, errors.New("header sizes out of range")
	}
	data := b[8+il*16 : 8+il*16+dl]
	str := func(off uint32) (string, bool) {
		if off >= uint32(len(data)) {
			return "", false
		}
		end := off
		for end < uint32(len(data)) && data[end] != 0 {
			end++
		}
		if end == uint32(len(data)) {
			return "", false
		}
		return string(data[off:end]), true
	}
	for i := range il {
		e := b[8+i*16:]
		tag, typ, off := binary.BigEndian.Uint32(e), binary.BigEndian.Uint32(e[4:]), binary.BigEndian.Uint32(e[8:])
		switch {
		case typ == typeString && (tag == tagName || tag == tagVersion || tag == tagRelease || tag == tagArch || tag == tagSourceRPM):
			s, ok := str(off)
			if !ok {
				return p, fmt.Errorf("tag %d out of range", tag)
			}
			switch tag {
			case tagName:
				p.name = s
			case tagVersion:
				p.version = s
			case tagRelease:
				p.release = s
			case tagArch:
				p.arch = s
			case tagSourceRPM:
				p.sourceRPM = s
			}
		case typ == typeInt32 && tag == tagEpoch:
			if uint64(off)+4 > uint64(len(data)) {
				return p, errors.New("epoch out of range")
			}
			p.epoch, p.hasEpoch = int64(binary.BigEndian.Uint32(data[off:])), true
		}
	}
	if p.name == "" || p.version == "" {
		return p, errors.New("header without name or version")
	}
	return p, nil
}

// evr returns the package's [epoch:]version-release.
func (p rpmPackage) evr() string {
	v := p.version
	if p.release != "" {
		v += "-" + p.release
	}
	if p.hasEpoch && p.epoch != 0 {
		v = strconv.FormatInt(p.epoch, 10) + ":" + v
	}
	return v
}

// sourceName derives the source package name from SOURCERPM
// ("openssl-3.0.7-24.el9.src.rpm" → "openssl").
func (p rpmPackage) sourceName() string {
	s := strings.TrimSuffix(strings.TrimSuffix(p.sourceRPM, ".rpm"), ".src")
	for range 2 {
		i := strings.LastIndexByte(s, '-')
		if i <= 0 {
			return ""
		}
		s = s[:i]
	}
	return s
}

// readRPMSQLite lists the packages of an rpmdb.sqlite database held in
// memory. The database is opened read-only through a VFS over the bytes
// (nothing is written to disk); its header is switched from WAL to
// rollback-journal mode in the copy, as a WAL database cannot be opened
// without its shared-memory file.
func readRPMSQLite(ctx context.Context, b []byte) ([]rpmPackage, error) {
	if len(b) < 100 || string(b[:16]) != "SQLite format 3\x00" {
		return nil, errors.New("not an SQLite database")
	}
	if b[18] == 2 && b[19] == 2 {
		b[18], b[19] = 1, 1
	}
	name, fsys, err := vfs.New(fstest.MapFS{"rpmdb.sqlite": &fstest.MapFile{Data: b, Mode: 0o444, ModTime: time.Unix(0, 0)}})
	if err != nil {
		return nil, err
	}
	defer fsys.Close()
	db, err := sql.Open("sqlite", "file:rpmdb.sqlite?vfs="+name+"&mode=ro&immutable=1")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "SELECT blob FROM Packages")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []rpmPackage
	for rows.Next() {
		var blob []byte
		if err := rows.Scan(&blob); err != nil {
			return nil, err
		}
		p, err := parseRPMHeader(blob)
		if err != nil {
			return nil, err
		}
		if p.name == "gpg-pubkey" { // imported signing keys, not software
			continue
		}
		out = append(out, p)
	}
	return out, rows.Err()
}
