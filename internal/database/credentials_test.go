package database_test

import (
	"context"
	"testing"

	"github.com/snapdeck/snapdeck/internal/database"
	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

func mustDatabases(t *testing.T) *database.Databases {
	t.Helper()
	return mustEnv(t).dbs
}

func TestCredentialsIssueCheckReset(t *testing.T) {
	ctx := context.Background()
	m := mustDatabases(t)
	out, err := m.Create(ctx, "ann@example.com", database.CreateRequest{Name: "orders", Plan: snapdeck.PlanFree})
	if err != nil {
		t.Fatal(err)
	}
	d, first := out.Database, out.Credentials
	if ok, err := m.CheckCredentials(ctx, d.ID, "", ""); ok || err != nil {
		t.Fatalf("wrong credentials: got %v %v, want false", ok, err)
	}
	if ok, _ := m.CheckCredentials(ctx, d.ID, first.Username, first.Password); !ok {
		t.Fatal("issued credentials refused")
	}
	second, err := m.ResetCredentials(ctx, "ann@example.com", d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := m.CheckCredentials(ctx, d.ID, first.Username, first.Password); ok {
		t.Fatal("the old password still works after a reset")
	}
	if ok, _ := m.CheckCredentials(ctx, d.ID, second.Username, second.Password); !ok || second.Username != first.Username {
		t.Fatalf("after reset: ok %v, username %q; want true, %q", ok, second.Username, first.Username)
	}
}

func TestPauseRefusesQueriesUntilResume(t *testing.T) {
	ctx := context.Background()
	m := mustDatabases(t)
	out, err := m.Create(ctx, "ann@example.com", database.CreateRequest{Name: "orders", Plan: snapdeck.PlanFree})
	if err != nil {
		t.Fatal(err)
	}
	d := out.Database
	if _, err := m.Pause(ctx, "ann@example.com", d.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Query(ctx, d.ID, "SELECT 1", true); snapdeck.ErrorCode(err) != snapdeck.Busy {
		t.Fatalf("query on paused: got %v, want Busy", err)
	}
	if _, err := m.Pause(ctx, "ann@example.com", d.ID); snapdeck.ErrorCode(err) != snapdeck.Busy {
		t.Fatalf("pause twice: got %v, want Busy", err)
	}
	if _, err := m.Resume(ctx, "ann@example.com", d.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Query(ctx, d.ID, "SELECT 1", true); err != nil {
		t.Fatalf("query after resume: %v", err)
	}
	if _, err := m.Pause(ctx, "ann@example.com", d.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Delete(ctx, "ann@example.com", d.ID, &d.Name); err != nil {
		t.Fatalf("delete paused: %v", err)
	}
}
