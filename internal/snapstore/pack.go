package snapstore

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
	"time"
)

// Kind says what a piece is. Sweep needs it to find the roots written
// recently (the grace rule) without reading every piece.
type Kind uint8

// The kinds of pieces.
const (
	KindPage      Kind = iota // a database page
	KindNode                  // a node of a snapshot's page tree
	KindRoot                  // a snapshot's root: its manifest and top nodes
	KindDelta                 // a database page stored as runs of changes to another page
	KindCopyDelta             // a database page stored as copies from another page (copydelta.go)
)

// isDelta reports whether pieces of kind k are stored against a base.
func isDelta(k Kind) bool { return k == KindDelta || k == KindCopyDelta }

// A pack blob holds pieces back to back, then an index of them, then a
// fixed footer:
//
//	piece bytes ...
//	index: count × (sha256 [32] | kind u8 | offset u32 | length u32 [| base sha256 [32] if a delta])
//	footer: index offset u64 | count u32 | crc32c(index) u32 | index length u32 | "SDPACK3\n"
//
// Pieces are found through the index, so a pack is read with two small
// range reads at Open and one range read per run of wanted pieces after.
// A delta's base is in the index so that Open learns every delta's base
// without reading the deltas, and Sweep can keep bases from memory.
// Version 3 added copy deltas; version 2 packs ("SDPACK2\n", runs deltas
// only, the same layout) and version 1 packs (no deltas, no index length,
// "SDPACK1\n") are still read. A build before version 3 refuses version 3
// packs as unreadable rather than misreading their copy deltas.
const (
	packMagic     = "SDPACK3\n"
	packMagicV2   = "SDPACK2\n"
	packMagicV1   = "SDPACK1\n"
	footerSize    = 8 + 4 + 4 + 4 + 8
	footerSizeV1  = 8 + 4 + 4 + 8
	entrySize     = 32 + 1 + 4 + 4
	packKeyPrefix = "packs/"
	// packTarget is the size at which a capture seals a pack: large enough
	// that one fsync covers thousands of pages, small enough that a few
	// packs in flight stay far below the memory budget.
	packTarget = 8 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type entry struct {
	hash [32]byte
	kind Kind
	off  uint32
	n    uint32
	base [32]byte // the page a delta applies to; zero for other kinds
}

// packBuf is a pack being filled.
type packBuf struct {
	data    []byte
	entries []entry
}

func (p *packBuf) add(h [32]byte, kind Kind, data []byte) {
	p.addEntry(entry{hash: h, kind: kind}, data)
}

// addEntry appends a piece described by e; its offset and length are set
// here.
func (p *packBuf) addEntry(e entry, data []byte) {
	e.off, e.n = uint32(len(p.data)), uint32(len(data))
	p.entries = append(p.entries, e)
	p.data = append(p.data, data...)
}

// seal appends the index and footer and returns the whole pack.
func (p *packBuf) seal() []byte {
	indexOff := len(p.data)
	for _, e := range p.entries {
		p.data = append(p.data, e.hash[:]...)
		p.data = append(p.data, byte(e.kind))
		p.data = binary.BigEndian.AppendUint32(p.data, e.off)
		p.data = binary.BigEndian.AppendUint32(p.data, e.n)
		if isDelta(e.kind) {
			p.data = append(p.data, e.base[:]...)
		}
	}
	crc := crc32.Checksum(p.data[indexOff:], castagnoli)
	indexLen := len(p.data) - indexOff
	p.data = binary.BigEndian.AppendUint64(p.data, uint64(indexOff))
	p.data = binary.BigEndian.AppendUint32(p.data, uint32(len(p.entries)))
	p.data = binary.BigEndian.AppendUint32(p.data, crc)
	p.data = binary.BigEndian.AppendUint32(p.data, uint32(indexLen))
	p.data = append(p.data, packMagic...)
	return p.data
}

// parseFooter returns the index offset, entry count, index checksum and
// index length of a pack from its last footerSize bytes, of either version.
func parseFooter(f []byte) (indexOff int64, count int, crc uint32, indexLen int, err error) {
	if len(f) != footerSize {
		return 0, 0, 0, 0, errors.New("not a pack: bad footer")
	}
	switch string(f[footerSize-8:]) {
	case packMagic, packMagicV2:
		count = int(binary.BigEndian.Uint32(f[8:]))
		return int64(binary.BigEndian.Uint64(f)), count, binary.BigEndian.Uint32(f[12:]), int(binary.BigEndian.Uint32(f[16:])), nil
	case packMagicV1:
		f = f[footerSize-footerSizeV1:]
		count = int(binary.BigEndian.Uint32(f[8:]))
		return int64(binary.BigEndian.Uint64(f)), count, binary.BigEndian.Uint32(f[12:]), count * entrySize, nil
	}
	return 0, 0, 0, 0, errors.New("not a pack: bad footer")
}

// footerLen returns the size of the footer whose last bytes are f.
func footerLen(f []byte) int64 {
	if string(f[len(f)-8:]) == packMagicV1 {
		return footerSizeV1
	}
	return footerSize
}

func parseIndex(b []byte, count int, crc uint32) ([]entry, error) {
	if got := crc32.Checksum(b, castagnoli); got != crc {
		return nil, fmt.Errorf("pack index checksum %08x, want %08x", got, crc)
	}
	entries := make([]entry, count)
	for i := range entries {
		if len(b) < entrySize {
			return nil, errors.New("pack index is shorter than its entries")
		}
		copy(entries[i].hash[:], b[:32])
		entries[i].kind = Kind(b[32])
		entries[i].off = binary.BigEndian.Uint32(b[33:])
		entries[i].n = binary.BigEndian.Uint32(b[37:])
		b = b[entrySize:]
		if isDelta(entries[i].kind) {
			if len(b) < 32 {
				return nil, errors.New("pack index is shorter than its entries")
			}
			copy(entries[i].base[:], b[:32])
			b = b[32:]
		}
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("pack index has %d bytes past its entries", len(b))
	}
	return entries, nil
}

// newPackKey names a pack after the time it was written, so that Sweep can
// apply its grace rule from the key alone, plus randomness so two writers
// never collide.
func newPackKey(now time.Time) string {
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	return fmt.Sprintf("%s%016x-%s", packKeyPrefix, now.UnixNano(), hex.EncodeToString(rnd[:]))
}

// packTime returns the time encoded in a pack key.
func packTime(key string) (time.Time, bool) {
	name, ok := strings.CutPrefix(key, packKeyPrefix)
	if !ok {
		return time.Time{}, false
	}
	stamp, _, ok := strings.Cut(name, "-")
	if !ok {
		return time.Time{}, false
	}
	ns, err := strconv.ParseUint(stamp, 16, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, int64(ns)), true
}
