package database

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/snapdeck/snapdeck/internal/activity"
	"github.com/snapdeck/snapdeck/internal/importfile"
	"github.com/snapdeck/snapdeck/internal/job"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// LoadSource is an uploaded file to load into a database.
type LoadSource struct {
	// Path is the uploaded file, on the data directory's file system. Load
	// takes it over and removes it, whatever the outcome.
	Path string
	// Name is the file's name as the user gave it, for the Load
	// snapshot's reason "Loaded <Name>" and the activity log.
	Name string
	// Reason, when set, is the Load snapshot's reason instead, e.g.
	// "push-to-cloud".
	Reason string
	// Overwrite loads even into a database that holds tables; without it
	// such a database is refused with reason "database-not-empty".
	Overwrite bool
	// Limits bound the upload: --max-import-size and the SQL time limit.
	Limits importfile.Limits
	// Receive, when set, writes the upload into a new file in dir and
	// returns its path and the name the user gave it: Load calls it once
	// the database is known to take a load (CheckLoad), so that a
	// refused load is refused before the file is received, and sets Path
	// and Name from it. A refusal of Receive (too large, cut short) is
	// the load's refusal.
	Receive func(dir string) (path, name string, err error)
}

// reason is the Load snapshot's reason.
func (s LoadSource) reason() string {
	if s.Reason != "" {
		return s.Reason
	}
	return "Loaded " + s.Name
}

// UploadDir returns the directory uploads are streamed to before Load
// takes them: tmp/uploads, on the data directory's file system so that a
// checked SQLite file moves next to the database by a rename, and emptied
// with the rest of tmp/ at every start.
func (ss *Snapshots) UploadDir() (string, error) {
	dir := filepath.Join(ss.cfg.TmpDir, "uploads")
	return dir, os.MkdirAll(dir, 0o750)
}

// HoldsData reports whether a database has any table, view, index or
// trigger: loading over it throws data away, which push-to-cloud does only
// when told to.
func (ss *Snapshots) HoldsData(ctx context.Context, id string) (bool, error) {
	db, err := ss.host.DB(id)
	if err != nil {
		return false, err
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'"+notReplicatorTable).Scan(&n); err != nil {
		return false, fmt.Errorf("look into database %s: %w", id, err)
	}
	return n > 0, nil
}

// DefaultImportChecks is how many uploads are checked at once when
// Snapshots.ImportChecks is zero: serve's --import-checks default. A check
// keeps a core busy (SQL text runs on one connection, a .dump decompresses
// on two goroutines); two leave the console's other work room on a small
// machine.
const DefaultImportChecks = 2

// loadState is what keeps loads apart: one per database, and a
// console-wide number of checks at once.
type loadState struct {
	// loading holds the ids of the databases whose upload is being
	// checked; once checked, the database's status says it is loading.
	loading sync.Map // database id -> struct{}
	// checks holds a token per check running.
	checks chan struct{}
}

// errLoadUnderWay refuses a second load into a database.
func errLoadUnderWay(d snapdeck.Database) error {
	return &snapdeck.Error{Code: snapdeck.Busy, Reason: "ongoing-database-operation",
		Message: fmt.Sprintf("Another file is being checked for loading into %s; load this one once that load is over.", d.Name)}
}

// CheckLoad refuses a load into d whatever the file holds: d is not
// running or another upload into it is being checked (Busy, reason
// "ongoing-database-operation"), or it holds data and overwrite is not set
// (Conflict, reason "database-not-empty"). The API runs it when an upload
// is announced, before any byte is sent, and the IMPORT DATABASE tab before
// it receives the file; Load runs it again once the file is in, as the
// database may have changed meanwhile.
func (ss *Snapshots) CheckLoad(ctx context.Context, d snapdeck.Database, overwrite bool) error {
	if d.Status != snapdeck.StatusRunning {
		return &snapdeck.Error{Code: snapdeck.Busy, Reason: "ongoing-database-operation",
			Message: fmt.Sprintf("The database is %s; load the file once it is running again.", d.Status)}
	}
	if _, checking := ss.loads.loading.Load(d.ID); checking {
		return errLoadUnderWay(d)
	}
	if overwrite {
		return nil
	}
	full, err := ss.HoldsData(ctx, d.ID)
	if err != nil {
		return err
	}
	if full {
		return &snapdeck.Error{Code: snapdeck.Conflict, Reason: "database-not-empty",
			Message: fmt.Sprintf("Database %s already holds data; loading would overwrite it. Nothing was changed: push again with --overwrite to replace it.", d.Name)}
	}
	return nil
}

// Load replaces a database's data with an uploaded file: a .dump, a SQLite
// database or SQL text, told apart by content.
//
// The file is checked completely first, in the caller's time and on its
// ctx (a check stops when its client goes away or the console stops), next
// to the database file (importfile.Prepare): a refused file returns its
// *snapdeck.Error (Invalid, or TooLarge) before anything changed, and the
// refusal is in the activity log. One load per database is checked at a
// time, a second is refused at once (Busy, "ongoing-database-operation"),
// and at most Snapshots.ImportChecks uploads are checked at once: over
// that, the load is refused at once with TooMany rather than queued, as
// a check may take minutes and the client holds its request meanwhile.
// Once the file passed, the database is marked loading and a background
// job (replace, as for a restore) swaps the new file in atomically, takes
// the Load snapshot, sets the database running and takes a safety
// On-demand snapshot of the replaced data; whatever happens the database
// serves again afterwards, with its old content if the swap did not
// happen.
func (ss *Snapshots) Load(ctx context.Context, dbID string, src LoadSource, actor string) (snapdeck.Job, error) {
	if src.Receive != nil {
		var err error
		if src, err = ss.receive(ctx, dbID, src, actor); err != nil {
			return snapdeck.Job{}, err
		}
	}
	defer os.Remove(src.Path)
	start := time.Now()
	detail := "from " + src.Name
	if src.Reason != "" {
		detail = src.Reason + " of " + src.Name
	}
	refuse := func(err error) (snapdeck.Job, error) {
		ss.record(ctx, actor, activity.Load, dbID, "", err, time.Since(start), detail)
		return snapdeck.Job{}, err
	}
	d, err := ss.db.FindDatabase(ctx, dbID)
	if err != nil {
		return refuse(err)
	}
	if err := ss.CheckLoad(ctx, d, src.Overwrite); err != nil {
		return refuse(err)
	}
	if _, checking := ss.loads.loading.LoadOrStore(dbID, struct{}{}); checking {
		return refuse(errLoadUnderWay(d))
	}
	// Once the database is marked loading, its status keeps other loads
	// out; until then, this mark does.
	defer ss.loads.loading.Delete(dbID)
	select {
	case ss.loads.checks <- struct{}{}:
	default:
		return refuse(&snapdeck.Error{Code: snapdeck.TooMany, Reason: "import-checks-busy",
			Message: fmt.Sprintf("This console is already checking %d uploaded files, the most it checks at once (--import-checks); nothing was changed: load the file again in a minute.", cap(ss.loads.checks))})
	}
	release := sync.OnceFunc(func() { <-ss.loads.checks })
	defer release()
	// Next to the database file, so the swap is a rename; a crash leaves
	// a .load- file that Recover removes.
	tmp := tempPath(ss.host.Path(dbID), tempLoad, "")
	res, err := importfile.Prepare(ctx, src.Path, tmp, src.Limits, nil)
	release()
	if err != nil && ctx.Err() != nil {
		err = &snapdeck.Error{Code: snapdeck.Busy, Reason: "import-check-stopped", Err: err,
			Message: "The check of the file stopped before it ended: its client went away, or the console is shutting down. Nothing was changed; load the file again."}
	}
	if err != nil {
		ss.logger.Info("upload refused", "database_id", dbID, "user", actor, "err", err)
		return refuse(err)
	}
	detail += " (" + res.Format.Label() + ")"
	_, j, err := ss.replace(ctx, dbID, replacement{door: "load", kind: snapdeck.JobLoad, status: snapdeck.StatusLoading,
		action: activity.Load, actor: actor, detail: detail, safetyReason: "Before load of " + src.Name,
		swapping: "Swapping in the loaded data", held: tmp,
		prepare: func(context.Context, snapdeck.Database, *job.Progress) (prepared, error) {
			return prepared{path: tmp, size: res.Size, point: "prepared", done: fmt.Sprintf("Loaded %s into %s", src.Name, d.Name)}, nil
		},
		seal: func(ctx context.Context, d snapdeck.Database, p *job.Progress) error {
			return ss.takeLoadSnapshot(ctx, d, src, p)
		}})
	if err != nil {
		return refuse(err)
	}
	return j, nil
}

// receive checks that the database takes a load before src.Receive
// writes the upload, and returns src with the file's path and name. A
// refusal is recorded, under the file's name once it is known.
func (ss *Snapshots) receive(ctx context.Context, dbID string, src LoadSource, actor string) (LoadSource, error) {
	d, err := ss.findDatabase(ctx, dbID)
	if err == nil {
		err = ss.CheckLoad(ctx, d, src.Overwrite)
	}
	var dir string
	if err == nil {
		dir, err = ss.UploadDir()
	}
	if err == nil {
		src.Path, src.Name, err = src.Receive(dir)
		src.Receive = nil
	}
	if err != nil {
		detail := ""
		if src.Name != "" {
			detail = "from " + src.Name
		}
		ss.record(ctx, actor, activity.Load, dbID, "", err, 0, detail)
	}
	return src, err
}

// takeLoadSnapshot takes the Load snapshot of the data just loaded into d,
// which is still marked loading, so that no one writes before it holds
// exactly what was loaded.
func (ss *Snapshots) takeLoadSnapshot(ctx context.Context, d snapdeck.Database, src LoadSource, p *job.Progress) error {
	p.Stage("Taking the Load snapshot", ss.host.Size(d.ID))
	rec, err := ss.newSnapshot(ctx, d, snapdeck.SnapshotLoad, src.reason())
	if err != nil {
		return err
	}
	p.SetSnapshot(rec.ID)
	if err := ss.capture(ctx, &rec, p.Bytes); err != nil {
		return fmt.Errorf("the data was loaded, but its Load snapshot failed: %w", err)
	}
	return nil
}
