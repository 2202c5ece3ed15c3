package web_test

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapdeck/snapdeck/internal/activity"
	"github.com/snapdeck/snapdeck/internal/app"
	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/internal/snapstore"
	"github.com/snapdeck/snapdeck/internal/snapstore/s3blobs"
	"github.com/snapdeck/snapdeck/internal/snapstore/s3blobs/s3test"
)

// TestSnapshotRestoreExportOnS3 takes a snapshot, restores it and exports
// it through the console with the snapshot store on a real SeaweedFS
// server, checks its verification, creates a database from it, loads the
// export, and reclaims deleted snapshots: the packs land in the bucket and
// none in data/snapshots/.
func TestSnapshotRestoreExportOnS3(t *testing.T) {
	weed := s3test.Start(t)
	ctx := context.Background()
	c := startConsoleWith(t, func(cfg *app.Config) {
		cfg.SnapshotStore = "s3://" + weed.Bucket + "/console"
		cfg.S3 = app.S3Config{Endpoint: weed.Endpoint, AccessKeyID: weed.AccessKeyID, SecretAccessKey: weed.SecretAccessKey, CacheSize: 64 << 20}
	})
	c.t = t
	d := c.mustDatabase("ledger", snapdeck.PlanProfessional)
	c.exec(t, d.ID, "CREATE TABLE t (n INTEGER, s TEXT)")
	c.exec(t, d.ID, "WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v+1 FROM s WHERE v < 20000) INSERT INTO t SELECT v, hex(randomblob(100)) FROM s")
	want := c.rows(t, d.ID)

	member := c.newClient("member@x")
	mark := c.activity.mark()
	if res, _ := member.post("/databases/"+d.ID+"/snapshots", nil, true); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("take snapshot: got %d, want 303", res.StatusCode)
	}
	events := c.activity.waitFor(t, mark, "member@x", string(activity.SnapshotTake))
	if last := events[len(events)-1]; last.Outcome != snapdeck.OutcomeOK {
		t.Fatalf("snapshot on S3: %s %s: %s", last.Action, last.Outcome, last.Detail)
	}
	snaps, err := c.store.FindSnapshots(ctx, snapdeck.SnapshotFilter{DatabaseID: d.ID})
	if err != nil || len(snaps) != 1 || snaps[0].Status != snapdeck.SnapshotCompleted {
		t.Fatalf("snapshots: %+v, %v; want one completed", snaps, err)
	}
	snap := snaps[0]

	c.exec(t, d.ID, "DELETE FROM t WHERE n % 2 = 0")
	res, _ := member.post("/databases/"+d.ID+"/snapshots/"+snap.ID+"/restore", url.Values{"confirm": {"RESTORE"}}, true)
	jobURL := res.Header.Get("Location")
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(jobURL, "/jobs/") {
		t.Fatalf("restore: got %d to %q, want 303 to its job", res.StatusCode, jobURL)
	}
	j, err := c.jobs.Wait(ctx, strings.TrimPrefix(jobURL, "/jobs/"))
	if err != nil || j.Status != snapdeck.JobSucceeded {
		t.Fatalf("restore job: %+v, %v", j, err)
	}
	if got := c.rows(t, d.ID); got != want {
		t.Errorf("after restore from S3: rows %s, want %s", got, want)
	}

	res, body := member.get("/databases/" + d.ID + "/snapshots/" + snap.ID + "/export")
	if res.StatusCode != http.StatusOK || len(body) < 100_000 || !bytes.HasPrefix([]byte(body), []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		t.Fatalf("export from S3: got %d with %d bytes, want 200 and a zstd .dump", res.StatusCode, len(body))
	}

	// The snapshot's verification job read it back from S3.
	open, err := c.store.FindOpenJobs(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range open {
		c.jobs.Wait(ctx, j.ID)
	}
	if rec, _ := c.store.FindSnapshot(ctx, snap.ID); !rec.Verified || rec.VerifyError != "" {
		t.Errorf("verification on S3: verified %v, error %q", rec.Verified, rec.VerifyError)
	}

	// Create from the snapshot, and load the export into it.
	made, err := c.databases.Create(ctx, "member@x", database.CreateRequest{Name: "copy", Plan: snapdeck.PlanProfessional,
		FromDatabase: d.ID, FromSnapshot: snap.ID})
	copyDB, j2 := made.Database, made.Job
	if err != nil {
		t.Fatal(err)
	}
	if j2, err = c.jobs.Wait(ctx, j2.ID); err != nil || j2.Status != snapdeck.JobSucceeded {
		t.Fatalf("create from a snapshot on S3: %s %q, %v", j2.Status, j2.Error, err)
	}
	if got := c.rows(t, copyDB.ID); got != want {
		t.Errorf("created from the snapshot: rows %s, want %s", got, want)
	}
	c.exec(t, copyDB.ID, "DELETE FROM t")
	res, _ = member.upload(copyDB.ID, "ledger.dump", strings.NewReader(body))
	loadURL := res.Header.Get("Location")
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loadURL, "/jobs/") {
		t.Fatalf("load of the export: got %d to %q, want 303 to its job", res.StatusCode, loadURL)
	}
	if j2, err = c.jobs.Wait(ctx, strings.TrimPrefix(loadURL, "/jobs/")); err != nil || j2.Status != snapdeck.JobSucceeded {
		t.Fatalf("load on S3: %s %q, %v", j2.Status, j2.Error, err)
	}
	if got := c.rows(t, copyDB.ID); got != want {
		t.Errorf("after the load: rows %s, want %s", got, want)
	}

	// Retention deletes records; reclaiming then deletes their packs.
	_, before, _ := c.snaps.Stats(ctx)
	c.snaps.SetGrace(0)
	all, _ := c.store.FindSnapshots(ctx, snapdeck.SnapshotFilter{})
	for _, s := range all {
		if s.ID != snap.ID {
			c.snapshots.DeleteSnapshot(ctx, s.ID)
		}
	}
	reclaimed, err := c.snapshots.Reclaim(ctx)
	_, after, _ := c.snaps.Stats(ctx)
	if err != nil || reclaimed <= 0 || after >= before {
		t.Errorf("reclaim on S3: %d bytes, %v (store %d -> %d bytes); want some reclaimed", reclaimed, err, before, after)
	}
	if res, _ := member.post("/databases/"+d.ID+"/snapshots/"+snap.ID+"/restore", url.Values{"confirm": {"RESTORE"}}, true); res.StatusCode == http.StatusSeeOther {
		j, err := c.jobs.Wait(ctx, strings.TrimPrefix(res.Header.Get("Location"), "/jobs/"))
		if err != nil || j.Status != snapdeck.JobSucceeded || c.rows(t, d.ID) != want {
			t.Errorf("restore of the kept snapshot after reclaiming: %s %q, %v", j.Status, j.Error, err)
		}
	}

	// The data directory holds no pack; the bucket does.
	var local []string
	filepath.WalkDir(filepath.Join(c.dir, "snapshots"), func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			local = append(local, p)
		}
		return nil
	})
	if len(local) > 0 {
		t.Errorf("data/snapshots/ holds %q, want nothing with an S3 store", local)
	}
	remote, err := s3blobs.New(s3blobs.Config{Bucket: weed.Bucket, Prefix: "console", Endpoint: weed.Endpoint,
		AccessKeyID: weed.AccessKeyID, SecretAccessKey: weed.SecretAccessKey})
	if err != nil {
		t.Fatal(err)
	}
	packs := 0
	remote.List(ctx, func(key string) error {
		if strings.HasPrefix(key, "packs/") {
			packs++
		}
		return nil
	})
	if packs == 0 {
		t.Errorf("the bucket holds no pack under console/packs/")
	}
}

// TestS3OutagesLeaveEarlierSnapshots stops the SeaweedFS server in the
// middle of a capture (right after its first pack is written) and during a
// restore: each fails saying why, the database keeps its content, and once
// the server is back the earlier snapshot restores.
func TestS3OutagesLeaveEarlierSnapshots(t *testing.T) {
	weed := s3test.Start(t)
	ctx := context.Background()
	c := startConsoleWith(t, func(cfg *app.Config) {
		cfg.SnapshotStore = "s3://" + weed.Bucket + "/outage"
		// A cache smaller than a block: every read goes to the server.
		cfg.S3 = app.S3Config{Endpoint: weed.Endpoint, AccessKeyID: weed.AccessKeyID, SecretAccessKey: weed.SecretAccessKey, CacheSize: 1 << 10}
	})
	c.t = t
	d := c.mustDatabase("ledger", snapdeck.PlanProfessional)
	c.exec(t, d.ID, "CREATE TABLE t (n INTEGER, s TEXT)")
	c.exec(t, d.ID, "WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v+1 FROM s WHERE v < 60000) INSERT INTO t SELECT v, hex(randomblob(100)) FROM s")
	first, err := c.snapshots.Snapshot(ctx, d.ID, snapdeck.SnapshotOnDemand, "test", "system")
	if err != nil {
		t.Fatal(err)
	}
	want := c.rows(t, d.ID)

	c.exec(t, d.ID, "UPDATE t SET s = hex(randomblob(100)) WHERE n % 3 = 0")
	changed := c.rows(t, d.ID)
	stopped := false
	snapstore.FaultHook = func(point string) {
		if point == "capture:pack-written" && !stopped {
			stopped = true
			weed.Stop()
		}
	}
	t.Cleanup(func() { snapstore.FaultHook = nil })
	second, err := c.snapshots.Snapshot(ctx, d.ID, snapdeck.SnapshotOnDemand, "test", "system")
	snapstore.FaultHook = nil
	if !stopped {
		t.Fatal("the capture wrote no pack: the test no longer stops the server during one")
	}
	if err == nil || !strings.Contains(err.Error(), "S3 at "+weed.Endpoint) {
		t.Fatalf("capture with the server stopped: %v, want an error naming the S3 server", err)
	}
	if rec, _ := c.store.FindSnapshot(ctx, second.ID); rec.Status != snapdeck.SnapshotFailed || !strings.Contains(rec.Error, "S3") {
		t.Errorf("failed snapshot: status %s, error %q; want failed saying S3 is unreachable", rec.Status, rec.Error)
	}

	_, j, err := c.snapshots.Restore(ctx, d.ID, first.ID, "member@x")
	if err != nil {
		t.Fatal(err)
	}
	if j, err = c.jobs.Wait(ctx, j.ID); err != nil || j.Status != snapdeck.JobFailed || !strings.Contains(j.Error, "S3") {
		t.Errorf("restore with the server stopped: %s %q, %v; want failed saying S3 is unreachable", j.Status, j.Error, err)
	}
	if got := c.rows(t, d.ID); got != changed {
		t.Errorf("after the failed restore: rows %s, want the content before it, %s", got, changed)
	}

	weed.Restart(t)
	_, j, err = c.snapshots.Restore(ctx, d.ID, first.ID, "member@x")
	if err != nil {
		t.Fatal(err)
	}
	if j, err = c.jobs.Wait(ctx, j.ID); err != nil || j.Status != snapdeck.JobSucceeded {
		t.Fatalf("restore once the server is back: %s %q, %v", j.Status, j.Error, err)
	}
	if got := c.rows(t, d.ID); got != want {
		t.Errorf("after restoring the first snapshot: rows %s, want %s", got, want)
	}
}
