package upload

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// The import extension's headers (docs/api.md, "Import (snapdeck
// extension)"): the console reads them and push-to-cloud sends them.
const (
	// HeaderSize is the announced file's size in bytes.
	HeaderSize = "X-Snapdeck-Size"
	// HeaderSHA256 is the announced file's SHA-256, 64 hex digits.
	HeaderSHA256 = "X-Snapdeck-SHA256"
	// HeaderFilename is the file's name, for the log; optional.
	HeaderFilename = "X-Snapdeck-Filename"
	// HeaderOverwrite set to "true" replaces a database that holds data.
	HeaderOverwrite = "X-Snapdeck-Overwrite"
	// HeaderReceived answers how many bytes the console has, to resume
	// from.
	HeaderReceived = "X-Snapdeck-Received"
	// HeaderContentRange places a chunk in the file.
	HeaderContentRange = "Content-Range"
)

// MaxChunk bounds one PUT of an upload; push-to-cloud sends 32 MiB.
const MaxChunk = 64 << 20

// The states of an upload, as the upload object's "status" shows them:
// receiving until every byte arrived, checking while the file is
// validated, loading while the load job runs, then loaded or failed.
const (
	StatusReceiving = "receiving"
	StatusChecking  = "checking"
	StatusLoading   = "loading"
	StatusLoaded    = "loaded"
	StatusFailed    = "failed"
)

// The reasons of the import extension's own refusals, which clients act
// on.
const (
	// ReasonNotFound: the console does not know the upload (it expired, or
	// the console restarted); the client starts over.
	ReasonNotFound = "upload-not-found"
	// ReasonOffsetMismatch: the chunk does not start where the received
	// bytes end; HeaderReceived says where to resume.
	ReasonOffsetMismatch = "upload-offset-mismatch"
	// ReasonChecksumMismatch: the complete file's SHA-256 is not the
	// announced one.
	ReasonChecksumMismatch = "checksum-mismatch"
)

// Reply is the upload object: the data of every answer of the import
// extension (announce, chunk, status).
type Reply struct {
	UploadID   string `json:"upload_id"`
	InstanceID string `json:"instance_id"`
	Filename   string `json:"filename"`
	Size       int64  `json:"size"`
	Received   int64  `json:"received"`
	SHA256     string `json:"sha256"`
	Status     string `json:"status"`
	JobID      string `json:"job_id"`
	SnapshotID string `json:"snapshot_id"`
	Error      string `json:"error"`
}

// Announce is the announcement of an upload, sent as headers of
// POST /v1/instances/{id}/import.
type Announce struct {
	// Size is the file's size in bytes, more than zero.
	Size int64
	// SHA256 is the file's SHA-256 in lower-case hex.
	SHA256 string
	// Filename is the file's name as the user gave it; may be empty.
	Filename string
	// Overwrite replaces a database that holds data.
	Overwrite bool
}

// Header returns the announcement as the request's headers.
func (a Announce) Header() http.Header {
	h := http.Header{}
	h.Set(HeaderSize, strconv.FormatInt(a.Size, 10))
	h.Set(HeaderSHA256, a.SHA256)
	if a.Filename != "" {
		h.Set(HeaderFilename, a.Filename)
	}
	if a.Overwrite {
		h.Set(HeaderOverwrite, "true")
	}
	return h
}

// ParseAnnounce reads an announcement from a request's headers: a size
// and a SHA-256 are required (Invalid, with the header as Field).
func ParseAnnounce(h http.Header) (Announce, error) {
	a := Announce{Filename: h.Get(HeaderFilename), Overwrite: strings.EqualFold(h.Get(HeaderOverwrite), "true")}
	size, err := strconv.ParseInt(h.Get(HeaderSize), 10, 64)
	if err != nil || size <= 0 {
		return a, &snapdeck.Error{Code: snapdeck.Invalid, Reason: "invalid-request", Field: HeaderSize,
			Message: "Send the file's size in bytes as " + HeaderSize + "."}
	}
	a.Size = size
	a.SHA256 = strings.ToLower(h.Get(HeaderSHA256))
	if b, err := hex.DecodeString(a.SHA256); err != nil || len(b) != sha256.Size {
		return a, &snapdeck.Error{Code: snapdeck.Invalid, Reason: "invalid-request", Field: HeaderSHA256,
			Message: "Send the file's SHA-256 as 64 hexadecimal digits in " + HeaderSHA256 + "."}
	}
	return a, nil
}

// ContentRange is a chunk's place in the file: bytes Start to End,
// inclusive, of a file of Total bytes.
type ContentRange struct {
	Start, End, Total int64
}

// String is the Content-Range header's value, "bytes START-END/TOTAL".
func (r ContentRange) String() string {
	return fmt.Sprintf("bytes %d-%d/%d", r.Start, r.End, r.Total)
}

// Length is the number of bytes in the range.
func (r ContentRange) Length() int64 { return r.End - r.Start + 1 }

// ParseContentRange reads "bytes START-END/TOTAL"; ok is false when v is
// not of that form or START is negative. END before START is left to the
// caller to refuse.
func ParseContentRange(v string) (r ContentRange, ok bool) {
	rest, found := strings.CutPrefix(v, "bytes ")
	if !found {
		return ContentRange{}, false
	}
	rng, tot, found := strings.Cut(rest, "/")
	if !found {
		return ContentRange{}, false
	}
	from, to, found := strings.Cut(rng, "-")
	if !found {
		return ContentRange{}, false
	}
	var errs [3]error
	r.Start, errs[0] = strconv.ParseInt(from, 10, 64)
	r.End, errs[1] = strconv.ParseInt(to, 10, 64)
	r.Total, errs[2] = strconv.ParseInt(tot, 10, 64)
	if errors.Join(errs[:]...) != nil || r.Start < 0 {
		return ContentRange{}, false
	}
	return r, true
}

// Path is where uploads into database dbID are announced.
func Path(dbID string) string {
	return "/v1/instances/" + url.PathEscape(dbID) + "/import"
}

// UploadPath is where the chunks and the status of one upload are.
func UploadPath(dbID, uploadID string) string {
	return Path(dbID) + "/" + url.PathEscape(uploadID)
}
