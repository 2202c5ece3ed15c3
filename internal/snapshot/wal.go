package snapshot

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
)

// pageSet is a set of page numbers, one bit each.
type pageSet []uint64

func (s pageSet) has(pgno int64) bool {
	i := pgno / 64
	return i < int64(len(s)) && s[i]&(1<<(pgno%64)) != 0
}

// The WAL file format (https://www.sqlite.org/fileformat.html#the_write_ahead_log):
// a 32-byte header, then frames of a 24-byte header and one page.
const (
	walHeaderSize      = 32
	walFrameHeaderSize = 24
	walMagic           = 0x377f0682 // the low bit says the checksums' byte order
)

// walPages returns the pages that frames of the current WAL generation of
// the database at dbPath hold, among pages 1 to pages: a superset of the
// pages a read transaction open on the database reads from the WAL rather
// than from the database file. Every other page of the transaction's view
// is in the database file and stays there, unchanged, until the
// transaction ends, so Capture may read it from the file directly:
//
//   - a checkpoint copies into the database file only frames up to the
//     oldest read mark, so only pages that a frame of our view holds;
//   - a transaction that reads no frame (read mark 0) keeps every
//     checkpoint from writing the database file at all;
//   - the WAL cannot restart, and so change its salts, while a reader
//     still uses its frames.
//
// A frame counts when its salts match the header's, without checking the
// checksums: frames appended after the transaction began, or a torn frame
// at the end, only add pages to the set. ok is false when the WAL is there
// but cannot be made sense of; the capture must then read every page
// through SQLite.
func walPages(dbPath string, pageSize int, pages int64) (set pageSet, count int64, ok bool, err error) {
	set = make(pageSet, pages/64+1)
	f, err := os.Open(dbPath + "-wal")
	if errors.Is(err, fs.ErrNotExist) {
		return set, 0, true, nil
	}
	if err != nil {
		return nil, 0, false, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var hdr [walHeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return set, 0, true, nil // empty: a WAL that was reset or never written
		}
		return nil, 0, false, nil
	}
	size := int(binary.BigEndian.Uint32(hdr[8:]))
	if size == 1 {
		size = 65536
	}
	if binary.BigEndian.Uint32(hdr[:])&^1 != walMagic || size != pageSize {
		return nil, 0, false, nil
	}
	salts := hdr[16:24]
	var fh [walFrameHeaderSize]byte
	for {
		if _, err := io.ReadFull(r, fh[:]); err != nil {
			break // the end, or a frame being appended: later than our view
		}
		if string(fh[8:16]) == string(salts) {
			if pgno := int64(binary.BigEndian.Uint32(fh[:])); pgno >= 1 && pgno <= pages && !set.has(pgno) {
				set[pgno/64] |= 1 << (pgno % 64)
				count++
			}
		}
		if _, err := r.Discard(pageSize); err != nil {
			break
		}
	}
	return set, count, true, nil
}
