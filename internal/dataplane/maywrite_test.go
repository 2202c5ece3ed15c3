package dataplane_test

import (
	"testing"

	"github.com/snapdeck/snapdeck/internal/dataplane"
)

// TestMayWrite: only a single statement starting with SELECT, VALUES,
// WITH or EXPLAIN is taken as read-only; a statement that commits without
// changing a row (COMMIT, DDL, PRAGMA) is not.
func TestMayWrite(t *testing.T) {
	for text, want := range map[string]bool{
		"SELECT 1":                             false,
		"  -- note\n select * from t;  ":       false,
		"/* x */ VALUES (1)":                   false,
		"with a as (select 1) select * from a": false,
		"EXPLAIN QUERY PLAN SELECT 1":          false,
		"COMMIT":                               true,
		"end":                                  true,
		"CREATE TABLE u(n)":                    true,
		"PRAGMA user_version = 3":              true,
		"INSERT INTO t VALUES (1)":             true,
		"SELECT 1; DROP TABLE t":               true,
		"selection":                            true,
		"":                                     true,
	} {
		if got := dataplane.MayWrite(text); got != want {
			t.Errorf("MayWrite(%q) = %v, want %v", text, got, want)
		}
	}
}
