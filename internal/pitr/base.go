package pitr

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"
	"modernc.org/sqlite"

	"github.com/snapdeck/snapdeck/internal/durable"
	"github.com/snapdeck/snapdeck/internal/snapstore"
)

// A base is the level-0 file that starts a database's history again from
// its whole file, written by snapdeck rather than by Litestream.
//
// Litestream goes on from its last level-0 file by the WAL that file ends
// at (its offset and salts). When a replicator starts on a file without a
// WAL (after a swap: restore, overwrite, load, restore to a time; after a
// clean stop, whose last close checkpointed the WAL away), Litestream
// cannot match the two and reads the whole file into a new level-0 file:
// a read and an lz4 frame write system call per page, fsynced, about 7.8
// CPU-s per GiB (docs/benchmarks.md, set J), on the cores of the steps
// that follow, and a commit made meanwhile is restorable only once it is
// stored (4.7-13 s after the swap of 1 GiB).
//
// Instead, before Litestream opens, prepareBase makes the WAL as
// Litestream's own start would (its two tables and one write to its
// sequence, which gives the WAL its header) and notes the WAL's salts;
// writeBase then writes the file as it is, pages read and written a MiB at
// a time, as the next level-0 file, ending at the WAL's start with those
// salts. Litestream finds its position there and reads the WAL from its
// start as the file after it: the timeline is the one Litestream would
// have written, with the base's time that of the start, not of its end.
//
// The file does not change meanwhile: nothing checkpoints (the
// database's checkpoints are already taken over, console connections
// never checkpoint on commit, and the base's own connection stays open
// until Litestream's is, so no close is the last), so every commit
// meanwhile stays in the WAL, after the base.
type base struct {
	// conn is the connection that made the WAL; it stays open until
	// Litestream has opened the database.
	conn *sql.DB
	// txID is the base's TXID: one after the last level-0 file.
	txID ltx.TXID
	// salt1 and salt2 are the WAL header's.
	salt1, salt2 uint32
	// at is the base's time: before the write that made the WAL.
	at time.Time
	// tail is the WAL as the base's connection left it, when it could be
	// read whole: written as the file after the base, so that Litestream,
	// which checks the whole of its last level-0 file when it opens (its
	// position), checks a few pages rather than the base.
	tail *walTail
	// prev, when set, is the file the history ended on (over): the base
	// then holds only the pages that differ from it, and the pages of
	// always.
	prev *os.File
	// always are pages the base holds even when prev has them the same:
	// those of Litestream's own tables (see over).
	always map[uint32]bool
}

// settle is where a database's history ended when its replicator stopped:
// its last level-0 file's TXID, and the database file as it was then.
type settle struct {
	txID ltx.TXID
	file os.FileInfo
}

// settleOf is where db's history ends now that it is closed; false when
// that is not known.
func settleOf(db *litestream.DB) (settle, bool) {
	_, local, err := db.MaxLTX()
	if err != nil || local == 0 {
		return settle{}, false
	}
	fi, err := os.Stat(db.Path())
	if err != nil {
		return settle{}, false
	}
	return settle{txID: local, file: fi}, true
}

// over makes b a base over replaced, the file swapped out, when the
// history ended on it (s): it holds only the pages that differ from it.
// The history ended on replaced when the last level-0 file is s's (none
// came since) and replaced is the file s saw. Its replicator stopped after
// every other connection had closed, so its last read of the WAL held
// every commit but one: Litestream's own write to _litestream_seq after a
// checkpoint that leaves the WAL where it was, read only by the next read
// of the WAL, which a stop does not make. The pages of Litestream's two
// tables, in either file, are therefore always in the base. On an error b
// stays a whole base.
func (b *base) over(replaced string, s settle) error {
	if s.txID+1 != b.txID {
		return fmt.Errorf("the history went on after its stop (TXID %s, then %s)", s.txID, b.txID-1)
	}
	f, err := os.Open(replaced)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil || !os.SameFile(fi, s.file) {
		f.Close()
		return fmt.Errorf("%s is not the file the history ended on", replaced)
	}
	always := map[uint32]bool{1: true}
	ctx := context.Background()
	if err := litestreamPages(ctx, b.conn, always); err != nil {
		f.Close()
		return err
	}
	old, err := sql.Open("sqlite", "file:"+replaced+"?mode=ro&immutable=1")
	if err != nil {
		f.Close()
		return err
	}
	err = litestreamPages(ctx, old, always)
	old.Close()
	if err != nil {
		f.Close()
		return err
	}
	b.prev, b.always = f, always
	return nil
}

// litestreamPages adds to pages the root pages of Litestream's tables in
// the database db opens: each holds one page (a row, or none).
func litestreamPages(ctx context.Context, db *sql.DB, pages map[uint32]bool) error {
	rows, err := db.QueryContext(ctx, `SELECT rootpage FROM sqlite_schema WHERE type = 'table' AND name IN ('_litestream_seq', '_litestream_lock')`)
	if err != nil {
		return fmt.Errorf("find Litestream's tables: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var pgno uint32
		if err := rows.Scan(&pgno); err != nil {
			return err
		}
		pages[pgno] = true
	}
	return rows.Err()
}

// walTail is what a WAL holds from its header to its last commit: each
// page's last version, the database's size in pages at that commit, and
// the WAL's size up to there.
type walTail struct {
	pages  map[uint32][]byte
	commit uint32
	size   int64
	at     time.Time
}

// walHeaderSize is the size of a SQLite WAL file's header.
const walHeaderSize = 32

// prepareBase makes the WAL of the database file path, replicated by db
// with client c, and returns the base to write, or nil when Litestream
// goes on by itself: the file has a WAL (it reads on from it, or decides
// itself), is empty, or the replica holds a later file than the local
// ones.
func prepareBase(ctx context.Context, db *litestream.DB, c *Client, path string) (*base, error) {
	if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() >= walHeaderSize {
		return nil, nil
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	// An empty file has no pages for a base to hold: Litestream's first
	// file is the WAL's few.
	if fi, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) || (err == nil && fi.Size() == 0) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	_, local, err := db.MaxLTX()
	if err != nil {
		return nil, err
	}
	// The base and its tail take the next two TXIDs. A replica that
	// holds either already (its local files lost or older, as from a
	// backup of the data directory) is Litestream's to catch up with: it
	// fetches the replica's last file and reads the whole file itself. One
	// holding later ones only is too: Litestream finds itself behind it,
	// drops the base and does the same. So two listings of one name each,
	// not one of the level (a day of history is many files).
	for _, txID := range []ltx.TXID{local + 1, local + 2} {
		later := false
		if err := snapstore.ListPrefix(ctx, c.blobs, c.levelPrefix(0)+txID.String()+"-", func(string) error {
			later = true
			return nil
		}); err != nil {
			return nil, err
		}
		if later {
			return nil, nil
		}
	}
	b := &base{txID: local + 1, at: time.Now()}
	// What Litestream's start does before its first read of the WAL,
	// the same statements, so that its own find nothing to do.
	q := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=wal_autocheckpoint(0)"
	if b.conn, err = sql.Open("sqlite", q); err != nil {
		return nil, err
	}
	b.conn.SetMaxOpenConns(1)
	ok := false
	defer func() {
		if !ok {
			b.conn.Close()
		}
	}()
	// Should this connection still be the last to close, SQLite keeps
	// the WAL, as it does for Litestream's.
	conn, err := b.conn.Conn(ctx)
	if err != nil {
		return nil, err
	}
	err = conn.Raw(func(dc any) error {
		fc, ok := dc.(sqlite.FileControl)
		if !ok {
			return errors.New("the sqlite driver has no file control")
		}
		_, err := fc.FileControlPersistWAL("main", 1)
		return err
	})
	conn.Close()
	if err != nil {
		return nil, err
	}
	for _, stmt := range []string{
		`PRAGMA journal_mode = wal`,
		`CREATE TABLE IF NOT EXISTS _litestream_seq (id INTEGER PRIMARY KEY, seq INTEGER)`,
		`CREATE TABLE IF NOT EXISTS _litestream_lock (id INTEGER)`,
		`INSERT INTO _litestream_seq (id, seq) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET seq = seq + 1`,
	} {
		if _, err := b.conn.ExecContext(ctx, stmt); err != nil {
			return nil, fmt.Errorf("prepare the WAL: %w", err)
		}
	}
	// Read with the write lock held: nothing appends meanwhile, so every
	// frame up to the WAL's end is committed (the WAL was empty before).
	conn, err = b.conn.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		return nil, err
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`)
	data, err := os.ReadFile(path + "-wal")
	if err != nil {
		return nil, err
	}
	if len(data) < walHeaderSize {
		return nil, fmt.Errorf("a WAL of %d bytes after a write", len(data))
	}
	if magic := binary.BigEndian.Uint32(data); magic != 0x377f0682 && magic != 0x377f0683 {
		return nil, fmt.Errorf("the WAL's header is not one (magic %#x)", magic)
	}
	b.salt1, b.salt2 = binary.BigEndian.Uint32(data[16:]), binary.BigEndian.Uint32(data[20:])
	b.tail = readTail(data)
	ok = true
	return b, nil
}

// walFrameHeaderSize is the size of a WAL frame's header.
const walFrameHeaderSize = 24

// readTail reads a WAL's frames from its header to its last commit; nil
// when it has none. A frame of other salts ends it, as SQLite reads it.
func readTail(data []byte) *walTail {
	pageSize := int64(binary.BigEndian.Uint32(data[8:]))
	salts := data[16:24]
	t := &walTail{pages: map[uint32][]byte{}, at: time.Now()}
	var pending [][]byte
	for off := int64(walHeaderSize); off+walFrameHeaderSize+pageSize <= int64(len(data)); off += walFrameHeaderSize + pageSize {
		frame := data[off : off+walFrameHeaderSize+pageSize]
		if string(frame[8:16]) != string(salts) {
			break
		}
		pending = append(pending, frame)
		if commit := binary.BigEndian.Uint32(frame[4:]); commit != 0 {
			for _, f := range pending {
				t.pages[binary.BigEndian.Uint32(f)] = f[walFrameHeaderSize:]
			}
			pending = pending[:0]
			t.commit, t.size = commit, off+walFrameHeaderSize+pageSize-walHeaderSize
		}
	}
	if t.commit == 0 {
		return nil
	}
	return t
}

// close closes the base's connection: once Litestream's is open, it is
// not the last, and its close checkpoints nothing.
func (b *base) close() error {
	b.closePrev()
	return b.conn.Close()
}

// closePrev closes the file b is over, if any.
func (b *base) closePrev() {
	if b.prev != nil {
		b.prev.Close()
		b.prev = nil
	}
}

// basePiece is how much of the file writeBase reads, and writes, at a time.
const basePiece = 1 << 20

// write writes b as db's next level-0 file, from the database file path:
// into a temporary file in Litestream's level-0 directory, fsynced, then
// renamed, and the directory fsynced, as Litestream writes its own. It
// returns the file's size.
func (b *base) write(ctx context.Context, db *litestream.DB, path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	var hdr [100]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return 0, fmt.Errorf("read the database header: %w", err)
	}
	pageSize := int64(binary.BigEndian.Uint16(hdr[16:]))
	if pageSize == 1 {
		pageSize = 65536
	}
	if pageSize < 512 || fi.Size()%pageSize != 0 {
		return 0, fmt.Errorf("database file of %d bytes with pages of %d", fi.Size(), pageSize)
	}
	name := db.LTXPath(0, b.txID, b.txID)
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return 0, err
	}
	pages := uint32(fi.Size() / pageSize)
	defer b.closePrev()
	var prevSize int64
	if b.prev != nil {
		pfi, err := b.prev.Stat()
		if err != nil {
			return 0, err
		}
		var phdr [100]byte
		if _, err := b.prev.ReadAt(phdr[:], 0); err != nil {
			return 0, fmt.Errorf("read the replaced file's header: %w", err)
		}
		if string(phdr[16:18]) != string(hdr[16:18]) {
			// Pages of another size share no page with these.
			b.closePrev()
		}
		prevSize = pfi.Size()
	}
	n, err := writeLTX(name, fi.Mode().Perm(), ltx.Header{
		Version: ltx.Version, Flags: ltx.HeaderFlagNoChecksum, PageSize: uint32(pageSize), Commit: pages,
		MinTXID: b.txID, MaxTXID: b.txID, Timestamp: b.at.UnixMilli(),
		WALOffset: walHeaderSize, WALSize: 0, WALSalt1: b.salt1, WALSalt2: b.salt2,
	}, func(enc *ltx.Encoder) error {
		lock := ltx.LockPgno(uint32(pageSize))
		buf := make([]byte, basePiece-basePiece%pageSize)
		var prevBuf []byte
		if b.prev != nil {
			prevBuf = make([]byte, len(buf))
		}
		for off := int64(0); off < fi.Size(); off += int64(len(buf)) {
			if err := ctx.Err(); err != nil {
				return err
			}
			piece := buf[:min(int64(len(buf)), fi.Size()-off)]
			if _, err := f.ReadAt(piece, off); err != nil {
				return fmt.Errorf("read the database file: %w", err)
			}
			// What the replaced file holds at the same place: pages past
			// its end differ.
			var prev []byte
			if b.prev != nil && off < prevSize {
				prev = prevBuf[:min(int64(len(piece)), prevSize-off)]
				if _, err := b.prev.ReadAt(prev, off); err != nil {
					return fmt.Errorf("read the replaced file: %w", err)
				}
			}
			for i := int64(0); i < int64(len(piece)); i += pageSize {
				pgno := uint32((off+i)/pageSize) + 1
				if pgno == lock {
					continue
				}
				page := piece[i : i+pageSize]
				if i+pageSize <= int64(len(prev)) && !b.always[pgno] && bytes.Equal(page, prev[i:i+pageSize]) {
					continue
				}
				if err := enc.EncodePage(ltx.PageHeader{Pgno: pgno}, page); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if b.tail != nil {
		if err := b.writeTail(db, pages, uint32(pageSize), fi.Mode().Perm()); err != nil {
			return 0, err
		}
	}
	return n, durable.SyncDir(filepath.Dir(name))
}

// writeTail writes b's tail as the level-0 file after the base: the
// pages the WAL holds up to its last commit, over the base's basePages
// pages (a page the database grew by but the WAL lacks, which SQLite never
// leaves, is refused rather than made up).
func (b *base) writeTail(db *litestream.DB, basePages, pageSize uint32, perm fs.FileMode) error {
	t := b.tail
	txID := b.txID + 1
	pgnos := make([]uint32, 0, len(t.pages))
	for pgno := range t.pages {
		if pgno <= t.commit {
			pgnos = append(pgnos, pgno)
		}
	}
	for pgno := basePages + 1; pgno <= t.commit; pgno++ {
		if _, ok := t.pages[pgno]; !ok && pgno != ltx.LockPgno(pageSize) {
			return fmt.Errorf("the WAL grows the database to %d pages but lacks page %d", t.commit, pgno)
		}
	}
	slices.Sort(pgnos)
	name := db.LTXPath(0, txID, txID)
	_, err := writeLTX(name, perm, ltx.Header{
		Version: ltx.Version, Flags: ltx.HeaderFlagNoChecksum, PageSize: pageSize, Commit: t.commit,
		MinTXID: txID, MaxTXID: txID, Timestamp: t.at.UnixMilli(),
		WALOffset: walHeaderSize, WALSize: t.size, WALSalt1: b.salt1, WALSalt2: b.salt2,
	}, func(enc *ltx.Encoder) error {
		for _, pgno := range pgnos {
			if err := enc.EncodePage(ltx.PageHeader{Pgno: pgno}, t.pages[pgno]); err != nil {
				return err
			}
		}
		return nil
	})
	return err
}

// writeLTX writes the LTX file name as Litestream writes its own: into a
// temporary file beside it, buffered a piece at a time (the encoder makes
// three writes a page), with hdr and the pages that encode gives it,
// fsynced, then renamed. It returns the file's size; the caller syncs the
// directory.
func writeLTX(name string, perm fs.FileMode, hdr ltx.Header, encode func(enc *ltx.Encoder) error) (int64, error) {
	tmp := name + ".tmp"
	out, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return 0, err
	}
	defer func() {
		out.Close()
		os.Remove(tmp)
	}()
	w := bufio.NewWriterSize(out, basePiece)
	enc, err := ltx.NewEncoder(w)
	if err != nil {
		return 0, err
	}
	if err := enc.EncodeHeader(hdr); err != nil {
		return 0, err
	}
	if err := encode(enc); err != nil {
		return 0, err
	}
	if err := enc.Close(); err != nil {
		return 0, err
	}
	if err := w.Flush(); err != nil {
		return 0, err
	}
	if err := out.Sync(); err != nil {
		return 0, err
	}
	if err := out.Close(); err != nil {
		return 0, err
	}
	return enc.N(), os.Rename(tmp, name)
}
