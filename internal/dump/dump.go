// Package dump writes and reads snapdeck's .dump files: a zstd-compressed tar
// archive holding manifest.json, then database.sqlite (SPEC §5). The format
// is documented, with its version history, in docs/dump-format.md.
//
// Both directions are streams: Write never holds the database image in
// memory, and Extract checks everything (compression, archive structure,
// entry names and types, sizes, the SHA-256, the SQLite header and PRAGMA
// integrity_check) while it copies, before it reports success. Every problem
// with the input is a *snapdeck.Error whose Message tells the user what was
// wrong and what a .dump should look like.
package dump

//go:generate go test -run TestHostileCorpus -update .

import (
	"bytes"

	"github.com/snapdeck/snapdeck/internal/bytesize"
)

// FormatVersion is the version of the .dump format this package writes, and
// the newest it reads. Bump it for any change that a reader of the previous
// version would misread; adding a manifest key that old readers may ignore
// does not need a bump.
const FormatVersion = 1

// The two entries of a .dump, in this order and no others.
const (
	ManifestName = "manifest.json"
	ImageName    = "database.sqlite"
)

// DefaultMaxImageSize is the decompressed-size limit used when
// Limits.MaxImageSize is zero. It matches serve's --max-import-size default.
const DefaultMaxImageSize = 4 * bytesize.GiB

// maxManifestSize caps manifest.json. A real manifest is a few hundred bytes;
// the cap keeps a hostile one from being read into memory.
const maxManifestSize = 64 * bytesize.KiB

// maxWindow caps the zstd window (the history a decoder must keep) and so the
// decoder's memory. 32 MiB accepts everything zstd writes up to level 19
// (8 MiB windows); only --long and --ultra go beyond it.
const maxWindow = 32 * bytesize.MiB

// Limits bounds what Extract and Verify accept.
type Limits struct {
	// MaxImageSize is the largest database.sqlite accepted, in decompressed
	// bytes; zero means DefaultMaxImageSize. A larger dump is refused with
	// snapdeck.TooLarge before anything is written.
	MaxImageSize int64
}

// maxImageSize returns the effective image size limit.
func (l Limits) maxImageSize() int64 {
	if l.MaxImageSize <= 0 {
		return DefaultMaxImageSize
	}
	return l.MaxImageSize
}

// zstdMagic starts every zstd frame. Skippable frames (which some parallel
// compressors put first) start with 0x184D2A50 to 0x184D2A5F, little endian.
var zstdMagic = []byte{0x28, 0xB5, 0x2F, 0xFD}

// IsDump reports whether prefix, the first bytes of a file, starts a zstd
// stream, which is how a .dump is recognised by content rather than by name.
// It needs at least 4 bytes; a dump's own validation happens in Extract.
func IsDump(prefix []byte) bool {
	if len(prefix) < 4 {
		return false
	}
	if bytes.Equal(prefix[:4], zstdMagic) {
		return true
	}
	return prefix[0]&0xF0 == 0x50 && prefix[1] == 0x2A && prefix[2] == 0x4D && prefix[3] == 0x18
}
