package web

import (
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/snapdeck/snapdeck/internal/activity"
	"github.com/snapdeck/snapdeck/internal/apikey"
	"github.com/snapdeck/snapdeck/internal/bytesize"
	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// The import extension's headers (docs/api.md, "Import (snapdeck
// extension)").
const (
	headerSize      = "X-Snapdeck-Size"
	headerSHA256    = "X-Snapdeck-SHA256"
	headerFilename  = "X-Snapdeck-Filename"
	headerOverwrite = "X-Snapdeck-Overwrite"
	headerReceived  = "X-Snapdeck-Received"
)

// maxChunk bounds one PUT of an upload; push-to-cloud sends 32 MiB.
const maxChunk = 64 << 20

// uploadTTL is how long an upload nobody touches is kept.
const uploadTTL = 24 * time.Hour

// The states of an upload, as its "status" shows them.
const (
	uploadReceiving = "receiving"
	uploadChecking  = "checking"
	uploadLoading   = "loading"
	uploadLoaded    = "loaded"
	uploadFailed    = "failed"
)

// importAPI serves POST /v1/instances/{id}/import and its uploads. Uploads
// live in memory and in tmp/uploads: a restart ends them (tmp/ is emptied
// at start), and the client starts over on the 404 that follows.
type importAPI struct {
	a *api

	mu      sync.Mutex
	uploads map[string]*upload
}

// upload is one resumable upload.
type upload struct {
	// mu is held by the request writing a chunk or checking the file;
	// state guards the fields a status request reads meanwhile.
	mu         sync.Mutex
	state      sync.Mutex
	id, dbID   string
	name       string
	size       int64
	sha256     string
	overwrite  bool
	actor      string
	path       string
	received   int64
	sum        hash.Hash
	status     string
	jobID      string
	message    string
	lastActive time.Time
}

func (a *api) newImportAPI() *importAPI {
	return &importAPI{a: a, uploads: map[string]*upload{}}
}

// uploadReply is the upload object of the API.
type uploadReply struct {
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

// reply writes the upload's state, refreshing it from its load job.
func (im *importAPI) reply(c echo.Context, status int, u *upload) error {
	u.state.Lock()
	r := uploadReply{UploadID: u.id, InstanceID: u.dbID, Filename: u.name, Size: u.size, Received: u.received,
		SHA256: u.sha256, Status: u.status, JobID: u.jobID, Error: u.message}
	u.state.Unlock()
	if r.JobID != "" {
		j, err := im.a.s.deps.Store.FindJob(c.Request().Context(), r.JobID)
		if err != nil {
			return err
		}
		r.SnapshotID = j.SnapshotID
		switch j.Status {
		case snapdeck.JobSucceeded:
			r.Status = uploadLoaded
		case snapdeck.JobFailed:
			r.Status, r.Error = uploadFailed, j.Error
		}
		if r.Status != uploadLoaded {
			r.SnapshotID = "" // the Load snapshot exists only once it completed
		}
	}
	c.Response().Header().Set(headerReceived, strconv.FormatInt(r.Received, 10))
	return data(c, status, r)
}

// start is POST /v1/instances/{id}/import: announce an upload by its size
// and SHA-256, so that a file over the limit, a busy database, or one that
// holds data without X-Snapdeck-Overwrite is refused before any byte is
// sent.
func (im *importAPI) start(c echo.Context) error {
	d, _, err := im.a.findInstance(c)
	if err != nil {
		return err
	}
	h := c.Request().Header
	name := cleanFileName(h.Get(headerFilename))
	refuse := func(err error) error {
		im.a.s.record(c, activity.Load, d.ID, "", "", err)
		return err
	}
	size, err := strconv.ParseInt(h.Get(headerSize), 10, 64)
	if err != nil || size <= 0 {
		return &snapdeck.Error{Code: snapdeck.Invalid, Reason: "invalid-request", Field: headerSize,
			Message: "Send the file's size in bytes as " + headerSize + "."}
	}
	sum := strings.ToLower(h.Get(headerSHA256))
	if b, err := hex.DecodeString(sum); err != nil || len(b) != sha256.Size {
		return &snapdeck.Error{Code: snapdeck.Invalid, Reason: "invalid-request", Field: headerSHA256,
			Message: "Send the file's SHA-256 as 64 hexadecimal digits in " + headerSHA256 + "."}
	}
	if limit := im.a.s.maxImportSize(); size > limit {
		return refuse(&snapdeck.Error{Code: snapdeck.Invalid, Reason: "import-too-large", Field: headerSize,
			Message: fmt.Sprintf("The file is %s, over this console's import limit of %s (--max-import-size).", bytesize.Format(size), bytesize.Format(limit))})
	}
	overwrite := strings.EqualFold(h.Get(headerOverwrite), "true")
	if err := im.a.s.deps.Databases.CheckLoad(c.Request().Context(), d, overwrite); err != nil {
		if e, ok := snapdeck.AsError(err); ok && e.Code == snapdeck.Busy {
			// Nothing was sent yet: the client pushes again, rather than
			// loading a file it already sent.
			pushed := *e
			pushed.Message = fmt.Sprintf("The database is %s; push again once it is running.", d.Status)
			err = &pushed
		}
		return refuse(err)
	}
	dir, err := im.a.s.deps.Databases.UploadDir()
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "api-upload-*")
	if err != nil {
		return err
	}
	f.Close()
	u := &upload{id: uuid.NewString(), dbID: d.ID, name: name, size: size, sha256: sum, overwrite: overwrite,
		actor: apikey.Actor(callerKey(c)), path: f.Name(), sum: sha256.New(), status: uploadReceiving, lastActive: im.a.s.deps.Now()}
	im.mu.Lock()
	im.sweep()
	im.uploads[u.id] = u
	im.mu.Unlock()
	return im.reply(c, http.StatusAccepted, u)
}

// sweep forgets uploads nobody touched for uploadTTL; im.mu is held.
func (im *importAPI) sweep() {
	now := im.a.s.deps.Now()
	for id, u := range im.uploads {
		if u.mu.TryLock() {
			if now.Sub(u.lastActive) > uploadTTL {
				os.Remove(u.path)
				delete(im.uploads, id)
			}
			u.mu.Unlock()
		}
	}
}

// find returns the upload named in the path, of the database in the path.
func (im *importAPI) find(c echo.Context) (*upload, error) {
	im.mu.Lock()
	u, ok := im.uploads[c.Param("uid")]
	im.mu.Unlock()
	if !ok || u.dbID != c.Param("id") {
		return nil, &snapdeck.Error{Code: snapdeck.NotFound, Reason: "upload-not-found",
			Message: "No such upload: it finished long ago, or the console restarted. Start the upload again."}
	}
	return u, nil
}

// status is GET /v1/instances/{id}/import/{uploadId}: how many bytes
// arrived (to resume from), and how the load goes once all did.
func (im *importAPI) status(c echo.Context) error {
	u, err := im.find(c)
	if err != nil {
		return err
	}
	// Not u.mu: a chunk being written or a file being checked holds it,
	// and the answer is the bytes and the state so far.
	return im.reply(c, http.StatusOK, u)
}

// put is PUT /v1/instances/{id}/import/{uploadId} with Content-Range
// "bytes START-END/SIZE": the next chunk, starting exactly where the
// received bytes end. The chunk that completes the file has its SHA-256
// compared, then the file is checked and loaded as the console's IMPORT
// DATABASE tab does: 202 with the load's job, or the refusal.
func (im *importAPI) put(c echo.Context) error {
	u, err := im.find(c)
	if err != nil {
		return err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.lastActive = im.a.s.deps.Now()
	if u.status != uploadReceiving {
		return im.reply(c, http.StatusOK, u)
	}
	start, end, total, ok := parseContentRange(c.Request().Header.Get("Content-Range"))
	length := end - start + 1
	switch {
	case !ok || end < start || length > maxChunk:
		return &snapdeck.Error{Code: snapdeck.Invalid, Reason: "invalid-request", Field: "Content-Range",
			Message: fmt.Sprintf("Send Content-Range: bytes START-END/%d, at most %s at once.", u.size, bytesize.Format(maxChunk))}
	case total != u.size:
		return &snapdeck.Error{Code: snapdeck.Invalid, Reason: "invalid-request", Field: "Content-Range",
			Message: fmt.Sprintf("The chunk's Content-Range gives the file's size as %d bytes, but the upload was announced with %d; nothing was written.", total, u.size)}
	case end >= u.size:
		// The announced size was checked against --max-import-size; a
		// chunk past it would carry the file over the limit.
		return &snapdeck.Error{Code: snapdeck.Invalid, Reason: "invalid-request", Field: "Content-Range",
			Message: fmt.Sprintf("The chunk ends at byte %d, past the end of the announced %d-byte file; nothing was written.", end, u.size)}
	case c.Request().ContentLength >= 0 && c.Request().ContentLength != length:
		return errChunkLength(c.Request().ContentLength, length)
	case start != u.received:
		c.Response().Header().Set(headerReceived, strconv.FormatInt(u.received, 10))
		return &snapdeck.Error{Code: snapdeck.Conflict, Reason: "upload-offset-mismatch",
			Message: fmt.Sprintf("The console has %d bytes of this upload; send the next chunk from there.", u.received)}
	}
	if err := u.append(http.MaxBytesReader(c.Response(), c.Request().Body, length), length); err != nil {
		return err
	}
	if u.received < u.size {
		return im.reply(c, http.StatusOK, u)
	}
	return im.finish(c, u)
}

// set changes the fields a status request reads.
func (u *upload) set(change func()) {
	u.state.Lock()
	defer u.state.Unlock()
	change()
}

// append writes body, a chunk of length bytes, at the end of the upload's
// file, hashing what was written. What arrived before an interruption is
// kept, to resume from; a body that ends early or runs past length is
// taken back whole, as the client sent something else than it said.
func (u *upload) append(body io.Reader, length int64) error {
	f, err := os.OpenFile(u.path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Seek(u.received, io.SeekStart); err != nil {
		return err
	}
	from := u.received
	before, err := u.sum.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return err
	}
	takeBack := func(got int64) error {
		if err := f.Truncate(from); err != nil {
			return err
		}
		if err := u.sum.(encoding.BinaryUnmarshaler).UnmarshalBinary(before); err != nil {
			return err
		}
		u.set(func() { u.received = from })
		return errChunkLength(got, length)
	}
	buf := make([]byte, 1<<20)
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, err := f.Write(buf[:n]); err != nil {
				// The file may hold part of this read: cut it back to what
				// is hashed, so a resume continues from consistent bytes.
				f.Truncate(u.received)
				return err
			}
			u.sum.Write(buf[:n])
			u.set(func() { u.received += int64(n) })
		}
		var tooLong *http.MaxBytesError
		switch {
		case errors.Is(rerr, io.EOF) && u.received-from != length:
			return takeBack(u.received - from)
		case errors.Is(rerr, io.EOF):
			return nil
		case errors.As(rerr, &tooLong):
			return takeBack(-1)
		case rerr != nil:
			return &snapdeck.Error{Code: snapdeck.Invalid, Reason: "upload-interrupted", Err: rerr,
				Message: fmt.Sprintf("The chunk stopped arriving; the console has %d bytes. Resume from there.", u.received)}
		}
	}
}

// errChunkLength refuses a chunk whose body is not as long as its
// Content-Range says; got is negative when the body was longer.
func errChunkLength(got, want int64) error {
	size := fmt.Sprintf("%d bytes, not", got)
	if got < 0 {
		size = "longer than"
	}
	return &snapdeck.Error{Code: snapdeck.Invalid, Reason: "invalid-request", Field: "Content-Range",
		Message: fmt.Sprintf("The chunk's body is %s the %d bytes its Content-Range announces; nothing was written.", size, want)}
}

// finish checks the complete file's SHA-256 and hands it to the load.
func (im *importAPI) finish(c echo.Context, u *upload) error {
	got := hex.EncodeToString(u.sum.Sum(nil))
	if got != u.sha256 {
		os.Remove(u.path)
		msg := "checksum mismatch: the file was changed or damaged on the way (its SHA-256 differs from " + headerSHA256 + "); nothing was changed"
		u.set(func() { u.status, u.message = uploadFailed, msg })
		err := &snapdeck.Error{Code: snapdeck.Invalid, Reason: "checksum-mismatch", Message: sentence(msg)}
		im.a.s.record(c, activity.Load, u.dbID, "", "", err)
		return err
	}
	u.set(func() { u.status = uploadChecking })
	// The check runs while the client waits for its answer: it stops when
	// the client goes away (or the console shuts down), as a check of user
	// SQL nobody waits for would only hold a core and a check slot.
	ctx, cancel := im.a.s.checkContext(c)
	defer cancel()
	j, err := im.a.s.deps.Databases.Load(ctx, u.dbID, database.LoadSource{Path: u.path, Name: u.name, Reason: "push-to-cloud",
		Overwrite: u.overwrite, Limits: im.a.s.importLimits()}, u.actor)
	if err != nil {
		u.set(func() { u.status, u.message = uploadFailed, snapdeck.ErrorMessage(err) })
		if e, ok := snapdeck.AsError(err); ok && e.Reason == "" && (e.Code == snapdeck.Invalid || e.Code == snapdeck.TooLarge) {
			// Aura clients know no 413: a file over the limit is a 400 too.
			return &snapdeck.Error{Code: snapdeck.Invalid, Reason: "import-rejected", Message: sentence(e.Message), Err: e.Err}
		}
		return err
	}
	u.set(func() { u.status, u.jobID = uploadLoading, j.ID })
	return im.reply(c, http.StatusAccepted, u)
}

// parseContentRange reads "bytes START-END/TOTAL".
func parseContentRange(v string) (start, end, total int64, ok bool) {
	rest, found := strings.CutPrefix(v, "bytes ")
	if !found {
		return 0, 0, 0, false
	}
	rng, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, 0, false
	}
	from, to, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, 0, false
	}
	var errs [3]error
	start, errs[0] = strconv.ParseInt(from, 10, 64)
	end, errs[1] = strconv.ParseInt(to, 10, 64)
	total, errs[2] = strconv.ParseInt(tot, 10, 64)
	if errors.Join(errs[:]...) != nil || start < 0 {
		return 0, 0, 0, false
	}
	return start, end, total, true
}
