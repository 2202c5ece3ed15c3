// Package upload is the console's resumable upload service, the import
// extension of the API (docs/api.md, "Import (snapdeck extension)"): an
// upload is announced by its size and SHA-256, arrives in chunks that can
// be resumed, and is handed to the database's load once complete. Its
// wire types and a client for push-to-cloud live here too, so both ends
// share one definition of the headers and the upload object.
package upload

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jonboulle/clockwork"

	"github.com/snapdeck/snapdeck/internal/activity"
	"github.com/snapdeck/snapdeck/internal/bytesize"
	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/importfile"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// DefaultTTL is how long an upload nobody touches is kept: a day, as
// docs/api.md promises, long enough to resume after a night's outage.
const DefaultTTL = 24 * time.Hour

// sweepEvery is how often forgotten uploads are looked for besides at each
// announcement: an hour past the TTL at most, while looking costs a walk
// over a map of a few entries.
const sweepEvery = time.Hour

// Loader is what uploads are loaded by: *database.Snapshots.
type Loader interface {
	// CheckLoad refuses a load into d whatever the file holds (not
	// running, another load under way, data without overwrite).
	CheckLoad(ctx context.Context, d snapdeck.Database, overwrite bool) error
	// UploadDir is the directory uploads are kept in until loaded, on the
	// data directory's file system and emptied at every start.
	UploadDir() (string, error)
	// Load checks the complete file and starts the load job; it takes the
	// file over and removes it, whatever the outcome.
	Load(ctx context.Context, dbID string, src database.LoadSource, actor string) (snapdeck.Job, error)
}

// Config is what a Service needs.
type Config struct {
	// Loader checks and loads the uploads.
	Loader Loader
	// Activity records the loads refused before they reach Loader.Load
	// (over the size limit, the database not ready, a checksum
	// mismatch); Load records its own. Nil records nothing.
	Activity *activity.Recorder
	// FindJob returns a load job, to tell loading from loaded or failed.
	FindJob func(ctx context.Context, id string) (snapdeck.Job, error)
	// Limits are handed to every load; Limits.MaxSize also refuses an
	// announcement over it (zero: importfile.DefaultMaxSize).
	Limits importfile.Limits
	// Clock tells the time of the last activity and runs the sweep; the
	// real clock when nil.
	Clock clockwork.Clock
	// TTL is how long an upload nobody touches is kept; DefaultTTL when
	// zero.
	TTL    time.Duration
	Logger *slog.Logger

	// swept, when set (by tests), is told the ids each sweep forgot.
	swept func(ids []string)
}

// Service keeps the uploads under way. They live in memory and in the
// upload directory: a restart ends them (tmp/ is emptied at start), and
// the client starts over on the ReasonNotFound that follows.
type Service struct {
	cfg Config

	mu      sync.Mutex
	uploads map[string]*upload

	stop context.CancelFunc
	done chan struct{}
}

// New returns a Service and starts its sweep of forgotten uploads; Close
// stops it.
func New(cfg Config) *Service {
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Limits.MaxSize <= 0 {
		cfg.Limits.MaxSize = importfile.DefaultMaxSize
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &Service{cfg: cfg, uploads: map[string]*upload{}, stop: stop, done: make(chan struct{})}
	ticker := cfg.Clock.NewTicker(sweepEvery)
	go func() {
		defer close(s.done)
		defer ticker.Stop()
		for {
			select {
			case <-ticker.Chan():
				s.Sweep()
			case <-ctx.Done():
				return
			}
		}
	}()
	return s
}

// Close stops the sweep and removes the files of the uploads no request
// is using; the uploads are forgotten, as at a restart.
func (s *Service) Close(ctx context.Context) error {
	s.stop()
	select {
	case <-s.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, u := range s.uploads {
		if u.mu.TryLock() {
			os.Remove(u.path)
			delete(s.uploads, id)
			u.mu.Unlock()
		}
	}
	return nil
}

// loadRefusal marks an error that refused a load, for the activity log.
type loadRefusal struct{ error }

func (r loadRefusal) Unwrap() error { return r.error }

// IsLoadRefusal reports whether err refused a load before the load itself
// was asked (over the size limit, the database not ready for it, a
// checksum mismatch): the Service records it in the activity log as the
// load's refusal. Refusals of the load itself are recorded by the load.
func IsLoadRefusal(err error) bool {
	var r loadRefusal
	return errors.As(err, &r)
}

// refused records err in the activity log when it refused a load before
// the load itself was asked, and returns it.
func (s *Service) refused(ctx context.Context, actor, dbID string, err error) error {
	if IsLoadRefusal(err) && s.cfg.Activity != nil {
		s.cfg.Activity.Record(ctx, activity.Entry{Actor: actor, Action: activity.Load, DatabaseID: dbID, Err: err})
	}
	return err
}

// Announce starts an upload of a file into d by actor, refusing at once,
// before any byte is sent, a file over the size limit, a database that is
// not running or is loading another file (Busy: push again), or one that
// holds data without a.Overwrite. The reply's status is receiving.
func (s *Service) Announce(ctx context.Context, d snapdeck.Database, a Announce, actor string) (Reply, error) {
	r, err := s.announce(ctx, d, a, actor)
	return r, s.refused(ctx, actor, d.ID, err)
}

func (s *Service) announce(ctx context.Context, d snapdeck.Database, a Announce, actor string) (Reply, error) {
	if limit := s.cfg.Limits.MaxSize; a.Size > limit {
		return Reply{}, loadRefusal{&snapdeck.Error{Code: snapdeck.Invalid, Reason: "import-too-large", Field: HeaderSize,
			Message: fmt.Sprintf("The file is %s, over this console's import limit of %s (--max-import-size).", bytesize.Format(a.Size), bytesize.Format(limit))}}
	}
	if err := s.cfg.Loader.CheckLoad(ctx, d, a.Overwrite); err != nil {
		if e, ok := snapdeck.AsError(err); ok && e.Code == snapdeck.Busy {
			// Nothing was sent yet: the client pushes again, rather than
			// loading a file it already sent.
			pushed := *e
			pushed.Message = fmt.Sprintf("The database is %s; push again once it is running.", d.Status)
			err = &pushed
		}
		return Reply{}, loadRefusal{err}
	}
	if s.isChecking(d.ID) {
		// The load marks the database only once it runs: until then, the
		// upload's own state keeps a second one out.
		return Reply{}, loadRefusal{&snapdeck.Error{Code: snapdeck.Busy, Reason: "ongoing-database-operation",
			Message: fmt.Sprintf("Another file is being checked for loading into %s; push again once that load is over.", d.Name)}}
	}
	dir, err := s.cfg.Loader.UploadDir()
	if err != nil {
		return Reply{}, err
	}
	f, err := os.CreateTemp(dir, "api-upload-*")
	if err != nil {
		return Reply{}, err
	}
	f.Close()
	u := &upload{id: uuid.NewString(), dbID: d.ID, name: a.Filename, size: a.Size, sha256: a.SHA256, overwrite: a.Overwrite,
		actor: actor, path: f.Name(), sum: sha256.New(), status: StatusReceiving, lastActive: s.cfg.Clock.Now()}
	s.Sweep()
	s.mu.Lock()
	s.uploads[u.id] = u
	s.mu.Unlock()
	return u.reply(), nil
}

// isChecking reports whether an upload into database dbID is being
// checked.
func (s *Service) isChecking(dbID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.uploads {
		if u.dbID == dbID && u.reply().Status == StatusChecking {
			return true
		}
	}
	return false
}

// Sweep forgets the uploads nobody touched for the TTL and removes their
// files. It runs at each announcement and every sweepEvery.
func (s *Service) Sweep() {
	now := s.cfg.Clock.Now()
	var gone []string
	s.mu.Lock()
	for id, u := range s.uploads {
		if u.mu.TryLock() {
			if now.Sub(u.lastActive) > s.cfg.TTL {
				os.Remove(u.path)
				delete(s.uploads, id)
				gone = append(gone, id)
			}
			u.mu.Unlock()
		}
	}
	s.mu.Unlock()
	if len(gone) > 0 {
		s.cfg.Logger.Info("forgot idle uploads", "uploads", len(gone))
	}
	if s.cfg.swept != nil {
		s.cfg.swept(gone)
	}
}

// find returns upload id of database dbID.
func (s *Service) find(dbID, id string) (*upload, error) {
	s.mu.Lock()
	u, ok := s.uploads[id]
	s.mu.Unlock()
	if !ok || u.dbID != dbID {
		return nil, &snapdeck.Error{Code: snapdeck.NotFound, Reason: ReasonNotFound,
			Message: "No such upload: it finished long ago, or the console restarted. Start the upload again."}
	}
	return u, nil
}

// Status returns upload id of database dbID: how many bytes arrived (to
// resume from), and how the load goes once all did.
func (s *Service) Status(ctx context.Context, dbID, id string) (Reply, error) {
	u, err := s.find(dbID, id)
	if err != nil {
		return Reply{}, err
	}
	// Not u.mu: a chunk being written or a file being checked holds it,
	// and the answer is the bytes and the state so far.
	return s.reply(ctx, u)
}

// reply is the upload object, refreshed from the upload's load job.
func (s *Service) reply(ctx context.Context, u *upload) (Reply, error) {
	r := u.reply()
	if r.JobID == "" {
		return r, nil
	}
	j, err := s.cfg.FindJob(ctx, r.JobID)
	if err != nil {
		return Reply{}, err
	}
	r.SnapshotID = j.SnapshotID
	switch j.Status {
	case snapdeck.JobSucceeded:
		r.Status = StatusLoaded
	case snapdeck.JobFailed:
		r.Status, r.Error = StatusFailed, j.Error
	}
	if r.Status != StatusLoaded {
		r.SnapshotID = "" // the Load snapshot exists only once it completed
	}
	return r, nil
}

// Chunk is one PUT of an upload.
type Chunk struct {
	// Range is the request's Content-Range header, as sent.
	Range string
	// Length is the body's announced length; -1 when unknown (chunked
	// transfer encoding).
	Length int64
	// Body is the chunk's bytes.
	Body io.Reader
}

// Put writes the next chunk of upload id of database dbID; it must start
// exactly where the received bytes end. The chunk that completes the file
// has its SHA-256 compared, then the file is checked on ctx and loaded:
// started is true and the reply's status is loading, with the load's job.
// A chunk that does not fit the announced file is refused whole; one from
// the wrong place is refused with ReasonOffsetMismatch, and the reply
// then still tells the bytes received. Once the upload is past
// receiving, Put answers its state and writes nothing.
func (s *Service) Put(ctx context.Context, dbID, id string, c Chunk) (r Reply, started bool, err error) {
	u, err := s.find(dbID, id)
	if err != nil {
		return Reply{}, false, err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.lastActive = s.cfg.Clock.Now()
	if u.status != StatusReceiving {
		r, err := s.reply(ctx, u)
		return r, false, err
	}
	if err := u.fits(c); err != nil {
		if snapdeck.ErrorCode(err) == snapdeck.Conflict {
			return u.reply(), false, err
		}
		return Reply{}, false, err
	}
	rng, _ := ParseContentRange(c.Range)
	if err := u.append(c.Body, rng.Length()); err != nil {
		return Reply{}, false, err
	}
	if u.received < u.size {
		r, err := s.reply(ctx, u)
		return r, false, err
	}
	if err := s.finish(ctx, u); err != nil {
		return Reply{}, false, err
	}
	r, err = s.reply(ctx, u)
	return r, err == nil, err
}

// fits refuses a chunk that is not the next one of the upload: malformed
// or over MaxChunk, not inside the announced file, a body not as long as
// its range, or not starting where the received bytes end (Conflict).
func (u *upload) fits(c Chunk) error {
	rng, ok := ParseContentRange(c.Range)
	length := rng.Length()
	switch {
	case !ok || rng.End < rng.Start || length > MaxChunk:
		return &snapdeck.Error{Code: snapdeck.Invalid, Reason: "invalid-request", Field: HeaderContentRange,
			Message: fmt.Sprintf("Send Content-Range: bytes START-END/%d, at most %s at once.", u.size, bytesize.Format(MaxChunk))}
	case rng.Total != u.size:
		return &snapdeck.Error{Code: snapdeck.Invalid, Reason: "invalid-request", Field: HeaderContentRange,
			Message: fmt.Sprintf("The chunk's Content-Range gives the file's size as %d bytes, but the upload was announced with %d; nothing was written.", rng.Total, u.size)}
	case rng.End >= u.size:
		// The announced size was checked against the import limit; a
		// chunk past it would carry the file over the limit.
		return &snapdeck.Error{Code: snapdeck.Invalid, Reason: "invalid-request", Field: HeaderContentRange,
			Message: fmt.Sprintf("The chunk ends at byte %d, past the end of the announced %d-byte file; nothing was written.", rng.End, u.size)}
	case c.Length >= 0 && c.Length != length:
		return errChunkLength(c.Length, length)
	case rng.Start != u.received:
		return &snapdeck.Error{Code: snapdeck.Conflict, Reason: ReasonOffsetMismatch,
			Message: fmt.Sprintf("The console has %d bytes of this upload; send the next chunk from there.", u.received)}
	}
	return nil
}

// finish checks the complete file's SHA-256 and hands it to the load;
// u.mu is held. The check runs on ctx, while the client waits for its
// answer: it stops when the client goes away (or the console shuts down),
// as a check of user SQL nobody waits for would only hold a core and a
// check slot.
func (s *Service) finish(ctx context.Context, u *upload) error {
	if got := hex.EncodeToString(u.sum.Sum(nil)); got != u.sha256 {
		os.Remove(u.path)
		msg := "checksum mismatch: the file was changed or damaged on the way (its SHA-256 differs from " + HeaderSHA256 + "); nothing was changed"
		u.set(func() { u.status, u.message = StatusFailed, msg })
		return s.refused(ctx, u.actor, u.dbID, loadRefusal{&snapdeck.Error{Code: snapdeck.Invalid, Reason: ReasonChecksumMismatch, Message: snapdeck.Sentence(msg)}})
	}
	u.set(func() { u.status = StatusChecking })
	j, err := s.cfg.Loader.Load(ctx, u.dbID, database.LoadSource{Path: u.path, Name: u.name, Reason: "push-to-cloud",
		Overwrite: u.overwrite, Limits: s.cfg.Limits}, u.actor)
	if err != nil {
		u.set(func() { u.status, u.message = StatusFailed, snapdeck.ErrorMessage(err) })
		if e, ok := snapdeck.AsError(err); ok && e.Reason == "" && (e.Code == snapdeck.Invalid || e.Code == snapdeck.TooLarge) {
			// Aura clients know no 413: a file over the limit is a 400 too.
			return &snapdeck.Error{Code: snapdeck.Invalid, Reason: "import-rejected", Message: snapdeck.Sentence(e.Message), Err: e.Err}
		}
		return err
	}
	u.set(func() { u.status, u.jobID = StatusLoading, j.ID })
	return nil
}
