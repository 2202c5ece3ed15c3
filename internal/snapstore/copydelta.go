package snapstore

import "encoding/binary"

// A copy delta rebuilds a page from pieces of its base page at any offset,
// and literal bytes. It is what a row update that changes the row's size
// needs: SQLite then moves cells within the page, so the page differs from
// its base at nearly every offset (the runs of a delta at the same offsets
// cover most of it) while nearly all of its bytes are still in the base,
// elsewhere. It is a sequence of operations, each
//
//	n<<1 | 0 uvarint, then n literal bytes
//	n<<1 | 1 uvarint, then offset uvarint: n bytes of the base from offset
//
// that together write exactly one page. Pieces of this kind are indexed,
// checked and chained like the other deltas (their base in the pack index,
// the rebuilt page checked against its hash).

// minCopy is the shortest match worth a copy operation: a copy costs two
// or three bytes of header against the match's bytes as literals.
const minCopy = 8

// copyTableBits sizes the encoder's table of base positions by their
// leading four bytes: 4,096 entries, one per position of a 4 KiB page.
const copyTableBits = 12

// makeCopyDelta appends to dst the copy delta that turns base into page,
// both of one size.
func makeCopyDelta(dst, page, base []byte) []byte {
	n := len(page)
	if n < minCopy || len(base) != n {
		return appendLiteral(dst, page)
	}
	var table [1 << copyTableBits]uint16 // position+1 in base; 0 for none
	for j := 0; j+4 <= n; j++ {
		table[hash4(base[j:])] = uint16(j + 1)
	}
	lit := 0 // start of the pending literal bytes
	for i := 0; i < n; {
		// The common case: the page is unchanged here.
		j, length := i, matchLen(page[i:], base[i:])
		if length < minCopy && i+4 <= n {
			if c := int(table[hash4(page[i:])]) - 1; c >= 0 {
				j, length = c, matchLen(page[i:], base[c:])
			}
		}
		if length < minCopy {
			i++
			continue
		}
		dst = appendLiteral(dst, page[lit:i])
		dst = binary.AppendUvarint(dst, uint64(length)<<1|1)
		dst = binary.AppendUvarint(dst, uint64(j))
		i += length
		lit = i
	}
	return appendLiteral(dst, page[lit:])
}

func appendLiteral(dst, b []byte) []byte {
	if len(b) == 0 {
		return dst
	}
	dst = binary.AppendUvarint(dst, uint64(len(b))<<1)
	return append(dst, b...)
}

func hash4(b []byte) uint32 {
	return (binary.LittleEndian.Uint32(b) * 2654435761) >> (32 - copyTableBits)
}

// matchLen returns how many leading bytes a and b share.
func matchLen(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for i+8 <= n && binary.LittleEndian.Uint64(a[i:]) == binary.LittleEndian.Uint64(b[i:]) {
		i += 8
	}
	for i < n && a[i] == b[i] {
		i++
	}
	return i
}

// applyCopyDelta returns the page that delta turns base into.
func applyCopyDelta(base, delta []byte) ([]byte, error) {
	page := make([]byte, 0, len(base))
	for len(delta) > 0 {
		op, k := binary.Uvarint(delta)
		if k <= 0 || op>>1 == 0 || op>>1 > uint64(len(base)-len(page)) {
			return nil, errBadDelta
		}
		delta = delta[k:]
		length := int(op >> 1)
		if op&1 == 0 {
			if length > len(delta) {
				return nil, errBadDelta
			}
			page = append(page, delta[:length]...)
			delta = delta[length:]
			continue
		}
		off, k := binary.Uvarint(delta)
		if k <= 0 || off > uint64(len(base)) || uint64(length) > uint64(len(base))-off {
			return nil, errBadDelta
		}
		delta = delta[k:]
		page = append(page, base[off:off+uint64(length)]...)
	}
	if len(page) != len(base) {
		return nil, errBadDelta
	}
	return page, nil
}

// smallerDelta returns the smaller of the two encodings of page against
// base, and its kind: runs at the same offsets (makeDelta), which a row
// changed in place needs, or copies (makeCopyDelta), which moved cells
// need. buf is reused for the result.
func smallerDelta(buf, page, base []byte) ([]byte, Kind) {
	d := makeDelta(buf[:0], page, base)
	if len(d) <= len(page)/64 {
		return d, KindDelta // a few changed bytes: copies cannot do better
	}
	mark := len(d)
	d = makeCopyDelta(d, page, base)
	if c := d[mark:]; len(c) < mark {
		return d[:copy(d, c)], KindCopyDelta
	}
	return d[:mark], KindDelta
}
