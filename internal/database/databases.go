package database

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/snapdeck/snapdeck/internal/activity"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/internal/snapshot"
	"github.com/snapdeck/snapdeck/store"
)

// Databases is the service of a hosted database's life: create (empty or
// from a snapshot), rename, plan and placement, pause and resume, delete,
// its credentials, and the Query tab's SQL. Each action takes its actor,
// checks its input, does the work, records one line in the activity log,
// refusals included, and returns the database as it now is, whichever door
// asked.
type Databases struct {
	*core
	// snaps makes the copies of snapshots and forgets the snapshots of a
	// deleted database.
	snaps *Snapshots
}

// NewDatabases returns the Databases service over its dependencies; snaps
// is the Snapshots service over the same store and files, which makes a
// database's data from a snapshot.
func NewDatabases(cfg Config, snaps *Snapshots) (*Databases, error) {
	c, err := newCore(cfg)
	if err != nil {
		return nil, err
	}
	if snaps == nil || snaps.db != c.db || snaps.host != c.host {
		return nil, errors.New("database: Databases needs the Snapshots service over the same Store and Host")
	}
	return &Databases{core: c, snaps: snaps}, nil
}

// Host returns the files the service keeps.
func (ds *Databases) Host() *Host { return ds.host }

// CreateRequest is a new database as either door asks for it: the console's
// form and POST /v1/instances make the same call.
type CreateRequest struct {
	Name string
	Plan snapdeck.Plan
	// Placement is where an API client asked for the database to live; it
	// is only stored and shown. The console sends none.
	Placement snapdeck.Placement
	// FromDatabase and FromSnapshot name a completed snapshot whose data
	// the new database starts with; both "" for an empty database.
	FromDatabase, FromSnapshot string
	// At, with FromDatabase and no FromSnapshot, asks for FromDatabase's
	// content as of that time, from its point-in-time history.
	At time.Time
	// BadInput, when set, is why the door could not read the request (a
	// body that is not JSON, an unknown instance type): Create refuses
	// it as it refuses its own checks, recorded, and makes nothing.
	BadInput error
}

// Created is what Create made: the database, its credentials (the
// password shown once), and for a copy of a snapshot the job writing the
// data, the database being "creating" until it ends.
type Created struct {
	Database    snapdeck.Database
	Credentials Credentials
	Job         snapdeck.Job
}

// Create makes a database, empty or from a snapshot, with its placement
// and its credentials, and records one line in the activity log:
// database.create, or database.create-from-snapshot whose outcome the
// copy's job records. A refusal is recorded the same way, whichever door
// asked.
//
// The record, its placement and its credentials are one insert, written
// before the file: a crash before the file exists leaves a "creating"
// record that the next start marks failed, never a file that no record
// owns, nor a database without credentials.
func (ds *Databases) Create(ctx context.Context, actor string, req CreateRequest) (Created, error) {
	req.Name = strings.TrimSpace(req.Name)
	if req.FromDatabase != "" || req.FromSnapshot != "" {
		return ds.createCopy(ctx, actor, req)
	}
	if req.BadInput != nil {
		ds.record(ctx, actor, activity.DatabaseCreate, "", "", req.BadInput, 0, "")
		return Created{}, req.BadInput
	}
	out, err := ds.createEmpty(ctx, req)
	detail := ""
	if err == nil {
		detail = fmt.Sprintf("Created %s (%s-db)", out.Database.Name, out.Database.Plan)
	}
	ds.record(ctx, actor, activity.DatabaseCreate, out.Database.ID, "", err, 0, detail)
	return out, err
}

// checkNew checks the name, plan and placement of a new database.
func checkNew(name string, plan snapdeck.Plan, p snapdeck.Placement) error {
	if err := snapdeck.ValidateDatabaseName(name); err != nil {
		return err
	}
	if !plan.Valid() {
		return snapdeck.FieldError("plan", "Choose a plan: free, professional or enterprise.")
	}
	return checkPlacement(p)
}

// insertNew checks the name, plan and placement of a new database and
// records it, "creating", with its placement and freshly issued
// credentials, in one insert.
func (c *core) insertNew(ctx context.Context, req CreateRequest) (Created, error) {
	if err := checkNew(req.Name, req.Plan, req.Placement); err != nil {
		return Created{}, err
	}
	d := snapdeck.Database{ID: snapdeck.NewDatabaseID(), Name: req.Name, Plan: req.Plan, Status: snapdeck.StatusCreating,
		Placement: req.Placement}
	cred := newCredentials(d.ID)
	rec := store.NewDatabase{Database: d, Username: cred.Username, PasswordHash: hashCredential(cred.Password)}
	if err := c.db.CreateDatabaseWith(ctx, &rec); err != nil {
		return Created{Database: rec.Database}, err
	}
	return Created{Database: rec.Database, Credentials: cred}, nil
}

func (ds *Databases) createEmpty(ctx context.Context, req CreateRequest) (Created, error) {
	out, err := ds.insertNew(ctx, req)
	if err != nil {
		return out, err
	}
	d, cred := out.Database, out.Credentials
	if err := ds.host.Create(ctx, d.ID); err != nil {
		ds.setStatus(d.ID, snapdeck.StatusFailed)
		return Created{Database: d}, fmt.Errorf("create database %s: %w", d.ID, err)
	}
	running := snapdeck.StatusRunning
	d, err = ds.db.UpdateDatabase(ctx, d.ID, store.DatabaseUpdate{Status: &running})
	if err != nil {
		return Created{Database: d}, err
	}
	ds.logger.Info("database created", "database_id", d.ID, "plan", d.Plan)
	ds.observer.DatabaseCreated(ctx, d)
	ds.startPITR(ctx, d)
	return Created{Database: d, Credentials: cred}, nil
}

// createCopy makes a database from a snapshot of FromDatabase. Refusals
// before the copy starts are recorded here, the copy's outcome by its job.
func (ds *Databases) createCopy(ctx context.Context, actor string, req CreateRequest) (Created, error) {
	err := req.BadInput
	if err == nil {
		err = checkPlacement(req.Placement)
	}
	if err == nil {
		err = ds.sourceDatabase(ctx, req.FromDatabase)
	}
	// A door that could not read the time asked for a copy at a time too.
	badTime, _ := snapdeck.AsError(req.BadInput)
	atTime := req.FromSnapshot == "" && (!req.At.IsZero() || badTime != nil && badTime.Field == "time")
	var out Created
	if err == nil && atTime {
		out, err = ds.snaps.createAtTime(ctx, actor, req)
	} else if err == nil {
		out, err = ds.snaps.createFromSnapshot(ctx, actor, req)
	}
	if err != nil && atTime {
		ds.record(ctx, actor, activity.CreateAtTime, out.Database.ID, "", err, 0, atTimeDetail(req.FromDatabase, req.At))
	} else if err != nil {
		ds.record(ctx, actor, activity.CreateFromSnap, out.Database.ID, req.FromSnapshot, err, 0, "")
	}
	return out, err
}

// sourceDatabase checks that the database a copy or an overwrite names as
// its source exists.
func (ds *Databases) sourceDatabase(ctx context.Context, id string) error {
	_, err := findSource(ctx, ds.db, id)
	return err
}

// findSource finds a database named in a request as a source.
func findSource(ctx context.Context, db *store.DB, id string) (snapdeck.Database, error) {
	if !snapdeck.ValidDatabaseID(id) {
		return snapdeck.Database{}, &snapdeck.Error{Code: snapdeck.NotFound, Reason: "db-not-found", Field: "source_instance_id",
			Message: "DB not found: " + id}
	}
	return db.FindDatabase(ctx, id)
}

// checkPlacement bounds the free-text placement values, which are only
// stored and echoed: at most 64 printable characters each.
func checkPlacement(p snapdeck.Placement) error {
	for _, f := range []struct{ name, v string }{
		{"cloud_provider", p.CloudProvider}, {"region", p.Region}, {"memory", p.Memory}, {"storage", p.Storage},
	} {
		if len(f.v) > 64 {
			return snapdeck.FieldError(f.name, "%s is %d characters long; use at most 64.", f.name, len(f.v))
		}
		for _, r := range f.v {
			if !unicode.IsPrint(r) {
				return snapdeck.FieldError(f.name, "%s may hold only printable characters.", f.name)
			}
		}
	}
	return nil
}

// find returns the database id names, refusing an id that cannot be one
// as not found.
func (ds *Databases) find(ctx context.Context, id string) (snapdeck.Database, error) {
	d, err := ds.findDatabase(ctx, id)
	if err == nil {
		d.SizeBytes = ds.host.Size(id)
	}
	return d, err
}

// Find returns one database with its current size on disk.
func (ds *Databases) Find(ctx context.Context, id string) (snapdeck.Database, error) {
	d, err := ds.db.FindDatabase(ctx, id)
	if err != nil {
		return d, err
	}
	d.SizeBytes = ds.host.Size(id)
	return d, nil
}

// List returns every database with its current size on disk.
func (ds *Databases) List(ctx context.Context) ([]snapdeck.Database, error) {
	dbs, err := ds.db.FindDatabases(ctx)
	if err != nil {
		return nil, err
	}
	for i := range dbs {
		dbs[i].SizeBytes = ds.host.Size(dbs[i].ID)
	}
	return dbs, nil
}

// Changes are the fields of a database an update sets; nil fields stay.
type Changes struct {
	Name            *string
	Plan            *snapdeck.Plan
	Memory, Storage *string
	// BadInput, when set, is why the door could not read the changes:
	// Update refuses them, recorded, and changes nothing.
	BadInput error
}

// Update renames a database, moves it to another plan and changes its
// recorded placement, as one action in the activity log (database.update),
// from the console's Settings tab or PATCH /v1/instances/{id}. A database
// in the middle of an operation is refused. It returns the database as it
// now is.
func (ds *Databases) Update(ctx context.Context, actor, id string, ch Changes) (snapdeck.Database, error) {
	d, detail, err := ds.update(ctx, id, ch)
	ds.record(ctx, actor, activity.DatabaseUpdate, id, "", err, 0, detail)
	return d, err
}

func (ds *Databases) update(ctx context.Context, id string, ch Changes) (snapdeck.Database, string, error) {
	d, err := ds.find(ctx, id)
	if err != nil {
		return d, "", err
	}
	if ch.BadInput != nil {
		return d, "", ch.BadInput
	}
	p := d.Placement
	np := p
	if ch.Memory != nil {
		np.Memory = *ch.Memory
	}
	if ch.Storage != nil {
		np.Storage = *ch.Storage
	}
	if err := checkPlacement(np); err != nil {
		return d, "", err
	}
	var u store.DatabaseUpdate
	var changed []string
	if ch.Name != nil {
		name := strings.TrimSpace(*ch.Name)
		if err := snapdeck.ValidateDatabaseName(name); err != nil {
			return d, "", err
		}
		if name != d.Name {
			u.Name = &name
			changed = append(changed, fmt.Sprintf("renamed %s to %s", d.Name, name))
		}
	}
	if ch.Plan != nil {
		if !ch.Plan.Valid() {
			return d, "", snapdeck.FieldError("plan", "Choose a plan: free, professional or enterprise.")
		}
		if *ch.Plan != d.Plan {
			u.Plan = ch.Plan
			changed = append(changed, fmt.Sprintf("moved to the %s plan", *ch.Plan))
		}
	}
	if d.Status.IsBusy() {
		return d, "", &snapdeck.Error{Code: snapdeck.Busy, Reason: "ongoing-database-operation",
			Message: fmt.Sprintf("The database is currently undergoing an operation: %s", d.Status)}
	}
	fault("update:checked")
	if np != p {
		u.Placement = &np
		changed = append(changed, "memory/storage recorded")
	}
	if u.Name == nil && u.Plan == nil && u.Placement == nil {
		return d, strings.Join(changed, "; "), nil
	}
	if u.Plan != nil {
		// A new plan starts or stops the replication, which a restore,
		// overwrite or load stops and starts again around its swap, under
		// this lock: the two must not interleave.
		l := ds.snaps.lock(d.ID)
		l.Lock()
		defer l.Unlock()
	}
	// The update lands only if no operation claimed the database since
	// the check above (a restore's TransitionDatabase); it is then
	// refused as Busy, as it would have been a moment earlier.
	u.From = []snapdeck.Status{d.Status}
	nd, err := ds.db.UpdateDatabase(ctx, d.ID, u)
	if err != nil {
		return d, "", err
	}
	nd.SizeBytes = d.SizeBytes
	d = nd
	if u.Plan != nil && d.Status == snapdeck.StatusRunning {
		ds.startPITR(ctx, d) // the new plan's window, or none
	}
	return d, strings.Join(changed, "; "), nil
}

// Delete removes a database, and its snapshots with it, recorded in the
// activity log as one database.delete line, refused or not, whichever door
// asked. The console asks the user to type the database's exact name
// (typedName); the API's DELETE is its own confirmation (typedName nil). A
// database busy with another operation is refused. It returns the
// database as it was, in its last status, deleting.
func (ds *Databases) Delete(ctx context.Context, actor, id string, typedName *string) (snapdeck.Database, error) {
	d, err := ds.find(ctx, id)
	if err == nil {
		err = ds.delete(ctx, d, typedName)
	}
	detail := ""
	if err == nil {
		d.Status = snapdeck.StatusDeleting
		detail = "Deleted " + d.Name
	}
	ds.record(ctx, actor, activity.DatabaseDelete, id, "", err, 0, detail)
	return d, err
}

func (ds *Databases) delete(ctx context.Context, d snapdeck.Database, typedName *string) error {
	if typedName != nil && *typedName != d.Name {
		return snapdeck.FieldError("confirm_name", "Type the database name, %s, exactly to delete it.", d.Name)
	}
	if _, err := ds.db.TransitionDatabase(ctx, d.ID,
		[]snapdeck.Status{snapdeck.StatusRunning, snapdeck.StatusFailed, snapdeck.StatusPaused}, snapdeck.StatusDeleting); err != nil {
		return err
	}
	ds.dropPITR(ctx, d.ID)
	if err := ds.host.Delete(ctx, d.ID); err != nil {
		return fmt.Errorf("delete database %s: %w", d.ID, err)
	}
	snapshot.ForgetFile(ds.host.Path(d.ID))
	if err := ds.db.DeleteDatabase(ctx, d.ID); err != nil {
		return err
	}
	ds.logger.Info("database deleted", "database_id", d.ID)
	// Its snapshots go with it: no restore, overwrite or copy may bring
	// the data of a deleted database back.
	ds.forgetSnapshots(ctx)
	return nil
}

// forgetSnapshots deletes the records of the snapshots of deleted
// databases and sweeps the snapshot store. The database is gone whatever
// happens here, so a failure is only logged: the next start deletes the
// records (Recover), and the retention sweeper reclaims the storage.
func (ds *Databases) forgetSnapshots(ctx context.Context) {
	n, err := ds.db.DeleteOrphanSnapshots(ctx)
	if err != nil {
		ds.logger.Error("delete snapshots of deleted databases", "err", err)
		return
	}
	if n == 0 {
		return
	}
	reclaimed, err := ds.snaps.Reclaim(ctx)
	if err != nil {
		ds.logger.Warn("reclaim the snapshots of a deleted database", "err", err)
		return
	}
	ds.logger.Info("snapshots of deleted databases deleted", "count", n, "reclaimed_bytes", reclaimed)
}

// Query runs user SQL on a running database.
func (ds *Databases) Query(ctx context.Context, id, sqlText string, readOnly bool) (*Result, error) {
	d, err := ds.db.FindDatabase(ctx, id)
	if err != nil {
		return nil, err
	}
	if d.Status != snapdeck.StatusRunning {
		return nil, &snapdeck.Error{Code: snapdeck.Busy, Reason: "ongoing-database-operation",
			Message: fmt.Sprintf("The database is %s; queries run again once it is running.", d.Status)}
	}
	return ds.host.Query(ctx, id, sqlText, readOnly)
}

// Recover cleans up after a crash, before anything serves: the safety
// snapshot of a replace (restore, overwrite, load) that a stop interrupted
// after the swap is taken again from the replaced file the replace kept,
// other snapshots and jobs that never finished are marked failed, leftover
// temporary files of every purpose (tempPurposes) are removed, a database
// still "creating" failed, one "deleting" finishes deleting, the snapshots
// of deleted databases go, and one caught "restoring" or "loading" serves
// again: its file is whole, old or new, because the swap is one atomic
// rename. Completed
// snapshots whose verification a stop cancelled are verified again, in the
// background.
func (ds *Databases) Recover(ctx context.Context) error {
	var errs []error
	n, err := ds.db.FailInterruptedSnapshots(ctx)
	errs = append(errs, err)
	if n > 0 {
		ds.logger.Warn("snapshots interrupted by a stop were marked failed", "count", n)
	}
	jobs, err := ds.db.FailInterruptedJobs(ctx)
	errs = append(errs, err)
	for _, j := range jobs {
		ds.logger.Warn("job interrupted by a stop was marked failed", "job_id", j.ID, "kind", j.Kind, "database_id", j.DatabaseID)
	}
	errs = append(errs, ds.snaps.recoverUndo(ctx))
	errs = append(errs, ds.snaps.removeTempFiles())
	dbs, err := ds.db.FindDatabases(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, d := range dbs {
		switch d.Status {
		case snapdeck.StatusCreating:
			failed := snapdeck.StatusFailed
			_, err := ds.db.UpdateDatabase(ctx, d.ID, store.DatabaseUpdate{Status: &failed})
			errs = append(errs, err)
			ds.logger.Warn("database creation was interrupted; marked failed", "database_id", d.ID)
		case snapdeck.StatusDeleting:
			ds.dropPITR(ctx, d.ID)
			errs = append(errs, ds.host.Delete(ctx, d.ID), ds.db.DeleteDatabase(ctx, d.ID))
			snapshot.ForgetFile(ds.host.Path(d.ID))
		case snapdeck.StatusRestoring, snapdeck.StatusLoading:
			running := snapdeck.StatusRunning
			_, err := ds.db.UpdateDatabase(ctx, d.ID, store.DatabaseUpdate{Status: &running})
			errs = append(errs, err)
			ds.logger.Warn("restore or load was interrupted; the database serves its old or its new content, whichever the atomic swap left", "database_id", d.ID)
		}
	}
	// Snapshots of deleted databases: kept by consoles before they went
	// with their database, or left by a stop during a delete. The first
	// sweep of the retention sweeper reclaims their storage.
	if n, err := ds.db.DeleteOrphanSnapshots(ctx); err != nil {
		errs = append(errs, err)
	} else if n > 0 {
		ds.logger.Info("snapshots of deleted databases deleted", "count", n)
	}
	// A stop cancels verifications under way; they run again.
	unverified, err := ds.db.FindUnverifiedSnapshots(ctx)
	errs = append(errs, err)
	for _, rec := range unverified {
		ds.snaps.verifyLater(rec)
	}
	if len(unverified) > 0 {
		ds.logger.Info("verifying snapshots whose verification never finished", "count", len(unverified))
	}
	return errors.Join(errs...)
}
