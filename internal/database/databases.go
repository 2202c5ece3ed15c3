package database

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/snapdeck/snapdeck/internal/activity"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

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
}

// Created is what CreateDatabase made: the database, its credentials (the
// password shown once), and for a copy of a snapshot the job writing the
// data, the database being "creating" until it ends.
type Created struct {
	Database    snapdeck.Database
	Credentials Credentials
	Job         snapdeck.Job
}

// CreateDatabase makes a database, empty or from a snapshot, records its
// placement, issues its credentials and records one line in the activity
// log: database.create, or database.create-from-snapshot whose outcome the
// copy's job records. A refusal is recorded the same way, whichever door
// asked.
func (m *Manager) CreateDatabase(ctx context.Context, actor string, req CreateRequest) (Created, error) {
	req.Name = strings.TrimSpace(req.Name)
	if req.FromDatabase != "" || req.FromSnapshot != "" {
		return m.createCopy(ctx, actor, req)
	}
	out, err := m.createEmpty(ctx, req)
	detail := ""
	if err == nil {
		detail = fmt.Sprintf("Created %s (%s-db)", out.Database.Name, out.Database.Plan)
	}
	m.record(ctx, actor, activity.DatabaseCreate, out.Database.ID, "", err, 0, detail)
	return out, err
}

func (m *Manager) createEmpty(ctx context.Context, req CreateRequest) (Created, error) {
	if err := checkPlacement(req.Placement); err != nil {
		return Created{}, err
	}
	d, err := m.Create(ctx, req.Name, req.Plan)
	if err != nil {
		return Created{Database: d}, err
	}
	return m.finishCreate(ctx, Created{Database: d}, req.Placement)
}

// createCopy makes a database from a snapshot of FromDatabase. Refusals
// before the copy starts are recorded here or by CreateFromSnapshot, the
// copy's outcome by its job.
func (m *Manager) createCopy(ctx context.Context, actor string, req CreateRequest) (Created, error) {
	err := checkPlacement(req.Placement)
	if err == nil {
		err = m.sourceDatabase(ctx, req.FromDatabase)
	}
	if err != nil {
		m.record(ctx, actor, activity.CreateFromSnap, "", req.FromSnapshot, err, 0, "")
		return Created{}, err
	}
	d, j, err := m.CreateFromSnapshot(ctx, req.FromDatabase, req.FromSnapshot, req.Name, req.Plan, actor)
	if err != nil {
		return Created{Database: d, Job: j}, err
	}
	return m.finishCreate(ctx, Created{Database: d, Job: j}, req.Placement)
}

// finishCreate issues a new database's credentials and stores its
// placement.
func (m *Manager) finishCreate(ctx context.Context, out Created, p snapdeck.Placement) (Created, error) {
	cred, err := m.IssueCredentials(ctx, out.Database.ID)
	if err != nil {
		return out, err
	}
	out.Credentials = cred
	return out, m.db.SetPlacement(ctx, out.Database.ID, p)
}

// sourceDatabase checks that the database a copy names as its source
// exists.
func (m *Manager) sourceDatabase(ctx context.Context, id string) error {
	if !snapdeck.ValidDatabaseID(id) {
		return &snapdeck.Error{Code: snapdeck.NotFound, Reason: "db-not-found", Field: "source_instance_id",
			Message: "DB not found: " + id}
	}
	_, err := m.db.FindDatabase(ctx, id)
	return err
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

// Changes are the fields of a database an update sets; nil fields stay.
type Changes struct {
	Name            *string
	Memory, Storage *string
}

// Update renames a database and changes its recorded placement, as one
// action in the activity log (database.update). A database in the middle
// of an operation is refused.
func (m *Manager) Update(ctx context.Context, actor, id string, ch Changes) (snapdeck.Database, snapdeck.Placement, error) {
	d, p, detail, err := m.update(ctx, id, ch)
	m.record(ctx, actor, activity.DatabaseUpdate, id, "", err, 0, detail)
	return d, p, err
}

func (m *Manager) update(ctx context.Context, id string, ch Changes) (snapdeck.Database, snapdeck.Placement, string, error) {
	d, err := m.Find(ctx, id)
	if err != nil {
		return d, snapdeck.Placement{}, "", err
	}
	p, err := m.db.FindPlacement(ctx, id)
	if err != nil {
		return d, p, "", err
	}
	np := p
	if ch.Memory != nil {
		np.Memory = *ch.Memory
	}
	if ch.Storage != nil {
		np.Storage = *ch.Storage
	}
	if err := checkPlacement(np); err != nil {
		return d, p, "", err
	}
	if ch.Name != nil {
		if err := snapdeck.ValidateDatabaseName(strings.TrimSpace(*ch.Name)); err != nil {
			return d, p, "", err
		}
	}
	if d.Status.IsBusy() {
		return d, p, "", &snapdeck.Error{Code: snapdeck.Busy, Reason: "ongoing-database-operation",
			Message: fmt.Sprintf("The database is currently undergoing an operation: %s", d.Status)}
	}
	var changed []string
	if ch.Name != nil && *ch.Name != d.Name {
		nd, err := m.Rename(ctx, d.ID, *ch.Name)
		if err != nil {
			return d, p, "", err
		}
		changed = append(changed, fmt.Sprintf("renamed %s to %s", d.Name, nd.Name))
		d.Name = nd.Name
	}
	if np != p {
		if err := m.db.SetPlacement(ctx, d.ID, np); err != nil {
			return d, p, "", err
		}
		changed = append(changed, "memory/storage recorded")
	}
	return d, np, strings.Join(changed, "; "), nil
}

// Placement returns where an API client asked a database to live.
func (m *Manager) Placement(ctx context.Context, id string) (snapdeck.Placement, error) {
	return m.db.FindPlacement(ctx, id)
}

// Placements returns the recorded placement of every database that has
// one, by database id.
func (m *Manager) Placements(ctx context.Context) (map[string]snapdeck.Placement, error) {
	return m.db.FindPlacements(ctx)
}

// FindJob returns a job as last recorded.
func (m *Manager) FindJob(ctx context.Context, id string) (snapdeck.Job, error) {
	return m.snaps.cfg.Jobs.Find(ctx, id)
}

// FindOpenJobs returns the jobs not yet ended, of one database or, for
// "", of all.
func (m *Manager) FindOpenJobs(ctx context.Context, dbID string) ([]snapdeck.Job, error) {
	return m.snaps.cfg.Jobs.FindOpen(ctx, dbID)
}

// LatestSnapshotTimes returns, per database, when its newest completed
// snapshot was taken.
func (m *Manager) LatestSnapshotTimes(ctx context.Context) (map[string]time.Time, error) {
	return m.db.LatestSnapshotTimes(ctx)
}

// DeleteDatabase is Delete recorded in the activity log as one
// database.delete line, refused or not, whichever door asked. It returns
// the database as it was, in its last status, deleting.
func (m *Manager) DeleteDatabase(ctx context.Context, actor, id, typedName string) (snapdeck.Database, error) {
	d, err := m.db.FindDatabase(ctx, id)
	if err == nil {
		err = m.Delete(ctx, id, typedName)
	}
	detail := ""
	if err == nil {
		d.Status = snapdeck.StatusDeleting
		detail = "Deleted " + d.Name
	}
	m.record(ctx, actor, activity.DatabaseDelete, id, "", err, 0, detail)
	return d, err
}
