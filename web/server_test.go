package web_test

import (
	"context"
	"testing"

	"github.com/snapdeck/snapdeck/internal/app"
	"github.com/snapdeck/snapdeck/web"
)

// TestNewTakesItsDependencies checks that web.New builds none of its
// dependencies: without the API key manager or the scheduler it refuses
// rather than quietly making ones of its own beside the app's.
func TestNewTakesItsDependencies(t *testing.T) {
	ctx := context.Background()
	a, err := app.New(ctx, app.Config{DataDir: t.TempDir(), Version: "test", Unscheduled: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(ctx) })
	full := web.Deps{Store: a.Store, Databases: a.Databases, Snapshots: a.Snapshots, Uploads: a.Uploads, Auth: a.Auth, Activity: a.Activity, Scheduler: a.Scheduler, APIKeys: a.APIKeys, Tokens: a.Tokens}
	if _, err := web.New(ctx, web.Config{Version: "test"}, full); err != nil {
		t.Fatalf("with every dependency: %v", err)
	}
	for name, drop := range map[string]func(*web.Deps){
		"APIKeys":   func(d *web.Deps) { d.APIKeys = nil },
		"Tokens":    func(d *web.Deps) { d.Tokens = nil },
		"Scheduler": func(d *web.Deps) { d.Scheduler = nil },
		"Store":     func(d *web.Deps) { d.Store = nil },
		"Databases": func(d *web.Deps) { d.Databases = nil },
		"Snapshots": func(d *web.Deps) { d.Snapshots = nil },
		"Uploads":   func(d *web.Deps) { d.Uploads = nil },
		"Auth":      func(d *web.Deps) { d.Auth = nil },
		"Activity":  func(d *web.Deps) { d.Activity = nil },
	} {
		deps := full
		drop(&deps)
		if s, err := web.New(ctx, web.Config{Version: "test"}, deps); err == nil || s != nil {
			t.Errorf("without %s: got a server, want an error", name)
		}
	}
}
