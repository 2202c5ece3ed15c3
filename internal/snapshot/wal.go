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

// The wal-index (https://www.sqlite.org/walformat.html#the_wal_index_file_format):
// the -shm file SQLite keeps beside a WAL-mode database, in the host's byte
// order. It starts with two copies of a 48-byte header, then the checkpoint
// information, then the page number of every frame of the WAL, in blocks of
// 32 KiB that each end in a hash table.
const (
	shmHeaderSize    = 136   // both header copies and the checkpoint information
	shmBlockSize     = 32768 // one block: page numbers, then the hash table
	shmFirstBlockPgs = 4062  // page numbers in the first block, after the header
	shmBlockPgs      = 4096  // page numbers in each later block
	shmVersion       = 3007000
)

// walIndexHeader reads the header of the wal-index open as f; ok is false
// when it cannot be read, is not initialised, or its two copies disagree
// (a writer was changing it).
func walIndexHeader(f *os.File) (hdr [shmHeaderSize]byte, ok bool) {
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return hdr, false
	}
	return hdr, string(hdr[:48]) == string(hdr[48:96]) && hdr[12] == 1
}

// walIndexPages is walPages read from the wal-index instead of the WAL: it
// returns the pages of the frames the WAL holds past the last checkpoint,
// among pages 1 to pages. Frames a checkpoint has already copied into the
// database file (up to the wal-index's backfill mark) hold the same page as
// the file, which no later checkpoint changes while the caller's read
// transaction is open, unless a later frame of our view holds that page too,
// and that frame is past the mark. So after a big write that has since been
// checkpointed, a capture reads the whole file directly, however large the
// WAL still is: on the issue-14 machine a 1 GiB database filled in large
// batches left a 1.08 GB WAL whose frames held every page, and each capture
// read all of them through SQLite, at 3-4 × the time of a copy of the file.
//
// It must be called inside the caller's read transaction, after its first
// read. The fields are read without SQLite's locks, which is safe for this
// use: the backfill mark only grows while our transaction holds a read mark
// (only frames up to the oldest read mark are ever copied, and the WAL
// cannot restart under a reader of its frames), so the mark read here is a
// lower bound of what has been copied, and the frame count an upper bound
// of our view. A transaction that reads no frame at all (SQLite's read mark
// 0, when the WAL was fully copied as it began) keeps every checkpoint from
// writing the file, so any set is right for it. ok is false when the file
// is missing or its header copies disagree (a writer was changing it); the
// caller then falls back to walPages.
func walIndexPages(dbPath string, pageSize int, pages int64) (set pageSet, count int64, ok bool, err error) {
	f, err := os.Open(dbPath + "-shm")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, false, nil
	}
	if err != nil {
		return nil, 0, false, err
	}
	defer f.Close()
	hdr, ok := walIndexHeader(f)
	if !ok {
		return nil, 0, false, nil
	}
	ne := binary.NativeEndian
	size := int(ne.Uint16(hdr[14:]))
	if size == 1 {
		size = 65536
	}
	if ne.Uint32(hdr[:]) != shmVersion || size != pageSize {
		return nil, 0, false, nil
	}
	maxFrame, backfill := int64(ne.Uint32(hdr[16:])), int64(ne.Uint32(hdr[96:]))
	if backfill > maxFrame {
		return nil, 0, false, nil
	}
	set = make(pageSet, pages/64+1)
	buf := make([]byte, 4*shmBlockPgs)
	for frame := backfill + 1; frame <= maxFrame; {
		// The block holding frame, the offset of its page number, and
		// how many of the block's frames we want.
		var off, left int64
		if frame <= shmFirstBlockPgs {
			off, left = shmHeaderSize+4*(frame-1), shmFirstBlockPgs-frame+1
		} else {
			i := frame - shmFirstBlockPgs - 1
			off, left = shmBlockSize*(1+i/shmBlockPgs)+4*(i%shmBlockPgs), shmBlockPgs-i%shmBlockPgs
		}
		n := min(left, maxFrame-frame+1)
		b := buf[:4*n]
		if _, err := f.ReadAt(b, off); err != nil {
			return nil, 0, false, nil
		}
		for i := range n {
			if pgno := int64(ne.Uint32(b[4*i:])); pgno >= 1 && pgno <= pages && !set.has(pgno) {
				set[pgno/64] |= 1 << (pgno % 64)
				count++
			}
		}
		frame += n
	}
	return set, count, true, nil
}

// fileState tells whether a database's committed content can have changed
// between two moments, without reading it. Every commit in WAL mode
// appends frames and rewrites the wal-index header with the new frame
// count; a WAL that starts over gets new salts. So while the wal-index
// exists, the same file (device and inode) with the same salts and frame
// count has had no commit in between; checkpoints, which only copy
// committed pages into the file, change neither. When no connection has
// the database open there is no wal-index, and the file's size and
// modification time stand in for it. Any other change makes two states
// differ, which only costs a full capture.
type fileState struct {
	file     os.FileInfo
	shm      bool
	salts    [8]byte
	maxFrame uint32
	size     int64
	modTime  int64
}

// stateOf reads the state of the database at path; ok is false when it
// cannot be told.
func stateOf(path string) (s fileState, ok bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return s, false
	}
	s.file = fi
	f, err := os.Open(path + "-shm")
	if errors.Is(err, fs.ErrNotExist) {
		if _, err := os.Stat(path + "-wal"); !errors.Is(err, fs.ErrNotExist) {
			return s, false // a WAL without its index: left by a crash, replayed at the next open
		}
		s.size, s.modTime = fi.Size(), fi.ModTime().UnixNano()
		return s, true
	}
	if err != nil {
		return s, false
	}
	defer f.Close()
	hdr, ok := walIndexHeader(f)
	if !ok {
		return s, false
	}
	s.shm = true
	copy(s.salts[:], hdr[32:40])
	s.maxFrame = binary.NativeEndian.Uint32(hdr[16:])
	return s, true
}

// same reports whether no commit can have happened between states a and b.
func (a fileState) same(b fileState) bool {
	return a.file != nil && b.file != nil && os.SameFile(a.file, b.file) && a.shm == b.shm &&
		a.salts == b.salts && a.maxFrame == b.maxFrame && a.size == b.size && a.modTime == b.modTime
}
