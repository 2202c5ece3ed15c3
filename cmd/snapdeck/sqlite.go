package main

import (
	"database/sql"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// sqliteVersion asks the embedded SQLite for its version.
func sqliteVersion() string {
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		return "unknown"
	}
	defer db.Close()
	var v string
	if err := db.QueryRow("SELECT sqlite_version()").Scan(&v); err != nil {
		return "unknown"
	}
	return v
}
