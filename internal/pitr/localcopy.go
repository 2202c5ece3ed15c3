package pitr

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"
)

// pruneInterval is how often a replicator removes the local L0 files
// already uploaded: a directory listing each time, and the local copy
// lags the uploads by at most this.
const pruneInterval = 5 * time.Second

// pruneLocalCopy removes the L0 files Litestream keeps next to the
// database that it no longer needs: those uploaded (up to the replica's
// position) and older than the newest. Litestream keeps every L0 file
// locally until L0 retention removes it from the replica, the whole
// window, so the history would take its size twice on the data disk (the
// first file is the whole database). It needs locally only the newest
// (its position, DB.Pos, and the check of the WAL against it, verify)
// and those not yet uploaded (Replica.Sync reads them); its compaction
// reads the replica's copy when a local one is missing
// (Compactor.LocalFileOpener). It returns how many bytes it removed.
//
// With local blobs a stored L0 file is this same file, hard-linked
// (Client.WriteLTXFile, snapstore.Local.PutFile): removing the local name
// leaves the stored one whole and frees no space, so the history then
// takes its size once, and the bytes returned are names removed. That is
// safe because Litestream never writes to an L0 file once it has its name,
// only removes it (see Local.PutFile).
func pruneLocalCopy(db *litestream.DB, logger *slog.Logger) int64 {
	if db.Replica == nil {
		return 0
	}
	uploaded := db.Replica.Pos().TXID
	dir := db.LTXLevelDir(0)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var newest ltx.TXID
	for _, ent := range ents {
		if _, maxTXID, err := ltx.ParseFilename(ent.Name()); err == nil && maxTXID > newest {
			newest = maxTXID
		}
	}
	var removed int64
	for _, ent := range ents {
		name := ent.Name()
		_, maxTXID, err := ltx.ParseFilename(name)
		if err != nil || !strings.HasSuffix(name, ".ltx") || maxTXID >= newest || maxTXID > uploaded {
			continue
		}
		info, err := ent.Info()
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			if !os.IsNotExist(err) {
				logger.Warn("remove an uploaded local ltx file", "file", name, "err", err)
			}
			continue
		}
		if err == nil {
			removed += info.Size()
		}
	}
	return removed
}
