package cvss

// Fast path of Parse: every "NAME:VALUE" part of a valid vector is at most
// 7 bytes long ("U:Clear"), so it is packed into an integer and looked up
// in a small open-addressing table that yields the metric and value code.
// Anything unusual (an unknown part, a duplicate, a missing or misplaced
// metric) falls back to parseError, which finds and describes the problem.

const partTableBits = 9

type partEntry struct {
	key    uint64 // packPart of "NAME:VALUE"; 0 for an empty slot
	metric uint8
	code   uint8 // 0 for the "not defined" value
}

type partTable [1 << partTableBits]partEntry

func partHash(k uint64) uint64 { return (k * 0x9E3779B97F4A7C15) >> (64 - partTableBits) }

// packPart packs up to 7 bytes after a leading 1 bit, which keeps the
// packing injective; longer strings yield 0.
func packPart(s string) uint64 {
	if len(s) > 7 {
		return 0
	}
	k := uint64(1)
	for i := 0; i < len(s); i++ {
		k = k<<8 | uint64(s[i])
	}
	return k
}

func buildPartTable(sc *schema) *partTable {
	t := new(partTable)
	add := func(part string, metric, code int) {
		k := packPart(part)
		if k == 0 {
			panic("cvss: metric part too long: " + part)
		}
		h := partHash(k)
		for t[h].key != 0 {
			h = (h + 1) & (1<<partTableBits - 1)
		}
		t[h] = partEntry{key: k, metric: uint8(metric), code: uint8(code)}
	}
	for i, m := range sc.metrics {
		for j, v := range m.values {
			add(m.name+":"+v, i, j+1)
		}
		if !m.required {
			add(m.name+":"+sc.nd, i, 0)
		}
	}
	for i, m := range sc.metrics {
		if m.required {
			sc.required |= 1 << i
		}
	}
	return t
}

// baseTemplate describes the base metrics of a schema written in canonical
// order, for example "AV:?/AC:?/PR:?/UI:?/S:?/C:?/I:?/A:?" where each "?"
// is a one-byte value. Nearly all vectors in the wild start this way, and
// matching them against the template is branch-free.
type baseTemplate struct {
	pattern string       // the template, with 0 at value positions
	mask    []byte       // 0xff at fixed positions, 0 at value positions
	patW    []uint64     // pattern and mask as little-endian words
	maskW   []uint64     // (whole words only; the tail uses the bytes)
	valPos  []int        // position of each value, in metric order
	codes   [][256]uint8 // value code of each byte, per value (0: invalid)
}

// le64 loads 8 bytes of s as a little-endian word; the compiler merges
// the byte loads into one.
func le64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

func buildTemplate(sc *schema) *baseTemplate {
	t := new(baseTemplate)
	var pat []byte
	for i, m := range sc.metrics {
		if !m.required {
			break
		}
		if i > 0 {
			pat = append(pat, '/')
		}
		pat = append(pat, m.name+":"...)
		t.valPos = append(t.valPos, len(pat))
		pat = append(pat, 0)
		var c [256]uint8
		for j, v := range m.values {
			if len(v) != 1 {
				panic("cvss: base metric value longer than one byte: " + v)
			}
			c[v[0]] = uint8(j + 1)
		}
		t.codes = append(t.codes, c)
	}
	t.pattern = string(pat)
	t.mask = make([]byte, len(pat))
	for i, b := range pat {
		if b != 0 {
			t.mask[i] = 0xff
		}
	}
	for j := 0; j+8 <= len(pat); j += 8 {
		t.patW = append(t.patW, le64(t.pattern[j:]))
		t.maskW = append(t.maskW, le64(string(t.mask[j:])))
	}
	return t
}

// match reports whether s starts with the base metrics in
// canonical order, filling vec with them.
func (t *baseTemplate) match(s string, vec *Vector) bool {
	p := t.pattern
	if len(s) < len(p) {
		return false
	}
	s = s[:len(p)]
	var diff uint64
	j := 0
	for w, pw := range t.patW {
		diff |= (le64(s[j:]) ^ pw) & t.maskW[w]
		j += 8
	}
	m := t.mask[:len(p)]
	for ; j < len(p); j++ {
		diff |= uint64((s[j] ^ p[j]) & m[j])
	}
	ok := true
	for k, pos := range t.valPos {
		c := t.codes[k][s[pos]]
		vec.set(k, c)
		ok = ok && c != 0
	}
	return diff == 0 && ok
}

// parseFast parses the metrics part of a vector (after the prefix). It
// reports false for any input it does not accept, without saying why.
func parseFast(sc *schema, s string) (Vector, bool) {
	var vec Vector
	var seen uint64
	last := -1
	i := 0
	// Base metrics in canonical order, matched against the template.
	if tp := sc.template; tp.match(s, &vec) {
		n := len(tp.pattern)
		if len(s) == n {
			return vec, true
		}
		if s[n] != '/' {
			return vec, false
		}
		seen, last = sc.required, len(tp.valPos)-1
		if i = n + 1; i == len(s) {
			return vec, false // trailing '/'
		}
	} else {
		vec = Vector{}
	}
	t := sc.parts
	for i < len(s) {
		k := uint64(1)
		j := i
		for ; j < len(s) && s[j] != '/'; j++ {
			k = k<<8 | uint64(s[j])
		}
		if j-i > 7 || j == i {
			return vec, false
		}
		h := partHash(k)
		for {
			e := &t[h]
			if e.key == k {
				m := int(e.metric)
				if seen&(1<<m) != 0 || sc.ordered && m < last {
					return vec, false
				}
				seen |= 1 << m
				last = m
				vec.set(m, e.code)
				break
			}
			if e.key == 0 {
				return vec, false
			}
			h = (h + 1) & (1<<partTableBits - 1)
		}
		if i = j + 1; i == len(s) {
			return vec, false // trailing '/'
		}
	}
	return vec, seen&sc.required == sc.required
}
