package web_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// TestRestoreNeedsExactlyRESTORE checks the server refuses every other
// answer, whatever the browser does, and changes nothing.
func TestRestoreNeedsExactlyRESTORE(t *testing.T) {
	c := mustConsole(t)
	d := c.mustDatabase("ledger", snapdeck.PlanProfessional)
	c.exec(t, d.ID, "CREATE TABLE t (n INTEGER)")
	c.exec(t, d.ID, "INSERT INTO t VALUES (1), (2)")
	snap, err := c.snapshots.Snapshot(context.Background(), d.ID, snapdeck.SnapshotOnDemand, "test", "system")
	if err != nil {
		t.Fatal(err)
	}
	c.exec(t, d.ID, "DELETE FROM t")
	member := c.newClient("member@x")
	path := "/databases/" + d.ID + "/snapshots/" + snap.ID + "/restore"
	for _, word := range []string{"", "restore", "RESTORE ", " RESTORE", "Restore", "RESTORE\n", "RESTOR"} {
		res, body := member.post(path, url.Values{"confirm": {word}}, true)
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Type RESTORE") {
			t.Errorf("confirm %q: got %d, want 400 re-showing the form with the error", word, res.StatusCode)
		}
		if got := c.rows(t, d.ID); got != "0:0" {
			t.Fatalf("confirm %q changed the data: got %s, want 0:0", word, got)
		}
	}
	n, _ := c.store.CountSnapshots(context.Background(), snapdeck.SnapshotFilter{DatabaseID: d.ID})
	if n != 1 {
		t.Errorf("snapshots after refused restores: got %d, want 1 (no safety snapshot taken)", n)
	}
	events, _ := c.store.FindEvents(context.Background(), snapdeck.EventFilter{DatabaseID: d.ID})
	refused := 0
	for _, e := range events {
		if e.Action == "restore" && e.Outcome == snapdeck.OutcomeRefused {
			refused++
		}
	}
	if refused != 7 {
		t.Errorf("refused restores in the activity log: got %d, want 7", refused)
	}
}

func TestViewersCannotTakeRestoreOrExport(t *testing.T) {
	c := mustConsole(t)
	d := c.mustDatabase("ledger", snapdeck.PlanEnterprise)
	snap, err := c.snapshots.Snapshot(context.Background(), d.ID, snapdeck.SnapshotOnDemand, "test", "system")
	if err != nil {
		t.Fatal(err)
	}
	viewer := c.newClient("viewer@x")
	base := "/databases/" + d.ID + "/snapshots"
	if res, _ := viewer.post(base, nil, true); res.StatusCode != http.StatusForbidden {
		t.Errorf("viewer take snapshot: got %d, want 403", res.StatusCode)
	}
	if res, _ := viewer.post(base+"/"+snap.ID+"/restore", url.Values{"confirm": {"RESTORE"}}, true); res.StatusCode != http.StatusForbidden {
		t.Errorf("viewer restore: got %d, want 403", res.StatusCode)
	}
	if res, _ := viewer.get(base + "/" + snap.ID + "/export"); res.StatusCode != http.StatusForbidden {
		t.Errorf("viewer export: got %d, want 403", res.StatusCode)
	}
	_, body := viewer.get(base)
	row := doc(t, body).Find(`tr[data-snapshot-id="` + snap.ID + `"]`)
	if row.Length() != 1 {
		t.Fatalf("viewer sees %d rows for the snapshot, want 1", row.Length())
	}
	if got, _ := row.Attr("data-snapshot-type"); got != "On-demand" {
		t.Errorf("data-snapshot-type: got %q, want On-demand", got)
	}
	if row.Find(`[data-action]`).Length() != 0 {
		t.Errorf("viewer row has actions: %s", row.Text())
	}
}

func TestExportAnswersRangesForResumedDownloads(t *testing.T) {
	c := mustConsole(t)
	d := c.mustDatabase("big", snapdeck.PlanProfessional)
	c.exec(t, d.ID, "CREATE TABLE t (n INTEGER, s TEXT)")
	c.exec(t, d.ID, "WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v+1 FROM s WHERE v < 5000) INSERT INTO t SELECT v, hex(randomblob(40)) FROM s")
	snap, err := c.snapshots.Snapshot(context.Background(), d.ID, snapdeck.SnapshotOnDemand, "test", "system")
	if err != nil {
		t.Fatal(err)
	}
	member := c.newClient("member@x")
	// The first download follows the preparation, so its length is not
	// known when it starts. A resumed download waits for the prepared file,
	// and so has a length, as every download after it does.
	res, whole := member.get("/databases/" + d.ID + "/snapshots/" + snap.ID + "/export")
	if res.StatusCode != http.StatusOK || len(whole) < 1000 {
		t.Fatalf("first export: got %d with %d bytes", res.StatusCode, len(whole))
	}
	if cd := res.Header.Get("Content-Disposition"); !strings.Contains(cd, `filename="big-`) || !strings.HasSuffix(cd, `.dump"`) {
		t.Errorf("Content-Disposition: got %q, want big-<UTC time>.dump", cd)
	}
	req, _ := http.NewRequest(http.MethodGet, c.srv.URL+"/databases/"+d.ID+"/snapshots/"+snap.ID+"/export", nil)
	req.Header.Set("Range", "bytes=500-")
	res, tail := member.do(req)
	if res.StatusCode != http.StatusPartialContent || tail != whole[500:] {
		t.Fatalf("resumed download: got %d and %d bytes, want 206 and the last %d bytes", res.StatusCode, len(tail), len(whole)-500)
	}
	res, again := member.get("/databases/" + d.ID + "/snapshots/" + snap.ID + "/export")
	if res.StatusCode != http.StatusOK || res.ContentLength != int64(len(again)) || again != whole {
		t.Fatalf("export of the prepared file: got %d with Content-Length %d for %d bytes; the first gave %d bytes, want the same", res.StatusCode, res.ContentLength, len(again), len(whole))
	}
}

func TestExportThatFailsWhileStreamedIsCut(t *testing.T) {
	c := mustConsole(t)
	d := c.mustDatabase("big", snapdeck.PlanProfessional)
	c.exec(t, d.ID, "CREATE TABLE t (n INTEGER, s BLOB)")
	c.exec(t, d.ID, "WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v+1 FROM s WHERE v < 3000) INSERT INTO t SELECT v, randomblob(1000) FROM s")
	snap, err := c.snapshots.Snapshot(context.Background(), d.ID, snapdeck.SnapshotOnDemand, "test", "system")
	if err != nil {
		t.Fatal(err)
	}
	packs, _ := filepath.Glob(filepath.Join(c.dir, "snapshots", "packs", "*"))
	damaged := 0
	for _, p := range packs {
		data, err := os.ReadFile(p)
		if err != nil || len(data) < 2<<20 {
			continue
		}
		data[len(data)*3/4] ^= 0xff
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		damaged++
	}
	if damaged == 0 {
		t.Fatalf("no pack of 2 MiB or more among %v to damage", packs)
	}
	member := c.newClient("member@x")
	req, _ := http.NewRequest(http.MethodGet, c.srv.URL+"/databases/"+d.ID+"/snapshots/"+snap.ID+"/export", nil)
	res, err := member.http.Do(req)
	if err != nil {
		return // refused before any answer: no file either
	}
	defer res.Body.Close()
	n, err := io.Copy(io.Discard, res.Body)
	if res.StatusCode == http.StatusOK && err == nil {
		t.Errorf("a download of a damaged snapshot ended cleanly after %d bytes; want the connection cut", n)
	}
}

// TestExportJobOffersTheDownload checks that an export's job page, once the
// job has ended, offers the prepared file for download.
func TestExportJobOffersTheDownload(t *testing.T) {
	c := mustConsole(t)
	d := c.mustDatabase("big", snapdeck.PlanProfessional)
	c.exec(t, d.ID, "CREATE TABLE t (n INTEGER)")
	snap, err := c.snapshots.Snapshot(context.Background(), d.ID, snapdeck.SnapshotOnDemand, "test", "system")
	if err != nil {
		t.Fatal(err)
	}
	exp, err := c.snapshots.Export(context.Background(), d.ID, snap.ID, "member@x")
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Close()
	if exp.JobID == "" {
		t.Fatal("an export being prepared names no job")
	}
	if err := exp.Wait(); err != nil {
		t.Fatal(err)
	}
	member := c.newClient("member@x")
	res, body := member.get("/jobs/" + exp.JobID)
	want := `href="/databases/` + d.ID + `/snapshots/` + snap.ID + `/export"`
	if res.StatusCode != http.StatusOK || !strings.Contains(body, want) {
		t.Errorf("export job page: %d, want a link %s", res.StatusCode, want)
	}
}
