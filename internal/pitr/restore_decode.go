package pitr

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc64"
	"io"
	"os"

	"github.com/pierrec/lz4/v4"
	"github.com/superfly/ltx"
)

// errFrameFormat is a file whose pages are lz4 frames, the LTX format
// before the block format Litestream v0.5 writes. Snapdeck's history was
// written by v0.5 (ltx v0.5) from its first file, so it holds none.
var errFrameFormat = errors.New("ltx pages in lz4 frames")

// decodeBuffer is how much of a snapshot is read at a time; a page's
// compressed block is decoded where it lies in it, not copied out.
const decodeBuffer = 1 << 20

// applyBlocks decodes file i of the plan, rc, and writes the pages it
// owns: for the snapshot (i 0) every page from 1 to its size, once, in
// order (the lock page excepted, which SQLite never writes); for a later
// file the pages its index named, in that order. It decodes the LTX
// block format here rather than with ltx.Decoder, which allocates three
// buffers a page and copies each compressed block out of its reader: at
// 1 GiB that was a third of a restore's CPU (docs/benchmarks.md, issue 16). It checks
// what ltx.Decoder checks: the header, every page in order, the file's
// CRC-64 (over the header, page headers, sizes and decoded pages, the
// page index and the trailer) and the post-apply checksum of the pages.
// It refuses the older format (errFrameFormat), having written nothing.
func (o *owners) applyBlocks(ctx context.Context, rc io.Reader, f *os.File, i int) (n int64, err error) {
	// A small file takes a buffer of its size: a plan may hold hundreds
	// of level-0 files of a few KiB.
	bufSize := int(min(int64(decodeBuffer), o.plan[i].Size+16))
	br := bufio.NewReaderSize(rc, bufSize)
	file := crc64.New(crc64.MakeTable(crc64.ISO))
	b, err := br.Peek(ltx.HeaderSize)
	if err != nil {
		return 0, err
	}
	var hdr ltx.Header
	if err := hdr.UnmarshalBinary(b); err != nil {
		return 0, err
	}
	if err := hdr.Validate(); err != nil {
		return 0, err
	}
	info := o.plan[i]
	switch {
	case hdr.MinTXID != info.MinTXID || hdr.MaxTXID != info.MaxTXID:
		return 0, fmt.Errorf("its header says %s-%s", hdr.MinTXID, hdr.MaxTXID)
	case hdr.PageSize != o.pageSize:
		return 0, fmt.Errorf("pages of %d bytes in a database of %d-byte pages", hdr.PageSize, o.pageSize)
	case i == 0 && !hdr.IsSnapshot():
		return 0, errors.New("the plan's first file is not a snapshot")
	}
	file.Write(b)
	br.Discard(ltx.HeaderSize)

	pages := int(o.commit)
	if i > 0 {
		pages = len(o.pages[i])
	}
	w := newPageWriter(f, o.pageSize, pages)
	defer func() {
		if cerr := w.close(); err == nil {
			err = cerr
		}
	}()
	scratch := make([]byte, o.pageSize)
	page := crc64.New(crc64.MakeTable(crc64.ISO))
	var pgnoBuf [4]byte
	sum := ltx.ChecksumFlag
	lock := hdr.LockPgno()
	pgnos := o.pages[i]
	want := uint32(1)
	k := 0
	for ; ; k++ {
		if i == 0 {
			if want == lock {
				want++
			}
		} else if k < len(pgnos) {
			want = pgnos[k]
		} else {
			want = 0 // the end of the pages
		}
		if k%1024 == 1023 && ctx.Err() != nil {
			return 0, ctx.Err()
		}
		b, err := br.Peek(ltx.PageHeaderSize + 4)
		if len(b) < ltx.PageHeaderSize {
			return 0, fmt.Errorf("page %d: %w", want, errShort(err))
		}
		var ph ltx.PageHeader
		ph.UnmarshalBinary(b)
		if ph.IsZero() {
			if i > 0 && k != len(pgnos) {
				return 0, fmt.Errorf("%d pages where its index names %d", k, len(pgnos))
			}
			file.Write(b[:ltx.PageHeaderSize])
			br.Discard(ltx.PageHeaderSize)
			break
		}
		if ph.Flags&ltx.PageHeaderFlagSize == 0 {
			if k == 0 {
				return 0, errFrameFormat
			}
			return 0, fmt.Errorf("page %d: not in the block format of the pages before it", want)
		}
		if err := ph.Validate(); err != nil {
			return 0, fmt.Errorf("page %d: %w", want, err)
		}
		if ph.Pgno != want {
			if i > 0 {
				return 0, fmt.Errorf("page %d where its index names another", ph.Pgno)
			}
			return 0, fmt.Errorf("page %d where page %d belongs", ph.Pgno, want)
		}
		if len(b) < ltx.PageHeaderSize+4 {
			return 0, fmt.Errorf("page %d: %w", want, errShort(err))
		}
		size := int(binary.BigEndian.Uint32(b[ltx.PageHeaderSize:]))
		file.Write(b)
		br.Discard(len(b))
		if size > bufSize {
			return 0, fmt.Errorf("page %d: a block of %d bytes", want, size)
		}
		block, err := br.Peek(size)
		if len(block) < size {
			return 0, fmt.Errorf("page %d: %w", want, errShort(err))
		}
		mine := want <= o.commit && o.owner[want] == int32(i)
		slot := scratch
		if mine {
			slot = w.next(want)
		}
		if m, err := lz4.UncompressBlock(block, slot); err != nil || m != len(slot) {
			return 0, fmt.Errorf("page %d: decompress: %d bytes, %v", want, m, err)
		}
		br.Discard(size)
		file.Write(slot)
		if i == 0 {
			if want == 1 && !bytes.HasPrefix(slot, []byte("SQLite format 3\x00")) {
				return 0, errors.New("not a SQLite database")
			}
			binary.BigEndian.PutUint32(pgnoBuf[:], want)
			sum ^= pageChecksum(page, pgnoBuf[:], slot)
		}
		if mine {
			n++
		}
		if i == 0 {
			want++
		}
	}
	if i == 0 && want <= hdr.Commit {
		return 0, fmt.Errorf("it ends at page %d of %d", want-1, hdr.Commit)
	}
	// The page index, then the trailer, whose last 8 bytes are the
	// file's checksum.
	rest, err := io.ReadAll(br)
	if err != nil {
		return 0, err
	}
	if len(rest) < ltx.TrailerSize {
		return 0, errors.New("no trailer")
	}
	file.Write(rest[:len(rest)-ltx.ChecksumSize])
	var tr ltx.Trailer
	if err := tr.UnmarshalBinary(rest[len(rest)-ltx.TrailerSize:]); err != nil {
		return 0, err
	}
	if got := ltx.ChecksumFlag | ltx.Checksum(file.Sum64()); got != tr.FileChecksum {
		return 0, ltx.ErrChecksumMismatch
	}
	// As ltx.Decoder, the pages' checksum only of a snapshot, which
	// holds them all.
	if i == 0 && !hdr.NoChecksum() && tr.PostApplyChecksum != sum {
		return 0, fmt.Errorf("post-apply checksum in trailer (%s) does not match its pages' (%s)", tr.PostApplyChecksum, sum)
	}
	return n, nil
}

// pageChecksum is ltx.ChecksumPage with a hasher of the caller's, pgno
// given as its four big-endian bytes.
func pageChecksum(h hash.Hash64, pgno, data []byte) ltx.Checksum {
	h.Reset()
	h.Write(pgno)
	h.Write(data)
	return ltx.ChecksumFlag | ltx.Checksum(h.Sum64())
}

// errShort is a read that ended early: the reader's error, or an
// unexpected end of the file.
func errShort(err error) error {
	if err == nil || err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
