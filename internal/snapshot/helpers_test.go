package snapshot

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
	"github.com/snapdeck/snapdeck/internal/snapstore"
)

// openDB opens (creating) a WAL-mode database the way the console does and
// closes it at cleanup. Automatic checkpoints are off so that tests see
// pages that live only in the WAL.
func openDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+
		"?_pragma=journal_mode(wal)&_pragma=synchronous(normal)&_pragma=busy_timeout(10000)&_pragma=wal_autocheckpoint(0)")
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS orders(
		id INTEGER PRIMARY KEY, customer TEXT, email TEXT, amount REAL,
		status TEXT, created_at TEXT, note TEXT);
		CREATE INDEX IF NOT EXISTS orders_customer ON orders(customer);
		CREATE TABLE IF NOT EXISTS counter(id INTEGER PRIMARY KEY, n INTEGER);
		INSERT OR IGNORE INTO counter VALUES (1, 0);`); err != nil {
		t.Fatalf("schema: %v", err)
	}
	return db
}

// insertOrders adds n realistic rows in transactions of 10,000 and keeps
// the counter table equal to the row count, so an image that is not a
// single point in time shows up as a mismatch.
func insertOrders(t testing.TB, db *sql.DB, n int, seed uint64) {
	t.Helper()
	if err := addOrders(db, n, seed); err != nil {
		t.Fatal(err)
	}
}

// addOrders is insertOrders for goroutines other than the test's, which
// must not call t.Fatal: it returns the error instead.
func addOrders(db *sql.DB, n int, seed uint64) error {
	r := rand.New(rand.NewPCG(seed, 42))
	for done := 0; done < n; {
		tx, err := db.Begin()
		if err != nil {
			return err
		}
		st, err := tx.Prepare(`INSERT INTO orders(customer, email, amount, status, created_at, note) VALUES (?, ?, ?, ?, ?, ?)`)
		if err != nil {
			tx.Rollback()
			return err
		}
		batch := min(10000, n-done)
		for i := 0; i < batch; i++ {
			if _, err := st.Exec(fmt.Sprintf("customer-%05d", r.IntN(100000)), fmt.Sprintf("user%d@example.com", r.IntN(1000000)),
				float64(r.IntN(100000))/100, []string{"paid", "shipped", "refunded"}[r.IntN(3)],
				time.Unix(1.7e9+int64(r.IntN(1e8)), 0).UTC().Format(time.RFC3339),
				fmt.Sprintf("gift wrap %x, leave at door %x", r.Uint64(), r.Uint32())); err != nil {
				tx.Rollback()
				return err
			}
		}
		if _, err := tx.Exec(`UPDATE counter SET n = n + ? WHERE id = 1`, batch); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		done += batch
	}
	return nil
}

// contentDigest hashes every row in id order: two databases with the same
// digest hold the same data.
func contentDigest(t testing.TB, path string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT id, customer, email, amount, status, created_at, note FROM orders ORDER BY id`)
	if err != nil {
		t.Fatalf("digest %s: %v", path, err)
	}
	defer rows.Close()
	h := sha256.New()
	for rows.Next() {
		var id int64
		var c, e, s, at, note string
		var amount float64
		if err := rows.Scan(&id, &c, &e, &amount, &s, &at, &note); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%d|%s|%s|%v|%s|%s|%s\n", id, c, e, amount, s, at, note)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// rowsAndCounter returns the row count and the counter of a database.
func rowsAndCounter(t testing.TB, path string) (int64, int64) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows, counter int64
	if err := db.QueryRow(`SELECT (SELECT count(*) FROM orders), (SELECT n FROM counter WHERE id = 1)`).Scan(&rows, &counter); err != nil {
		t.Fatalf("count %s: %v", path, err)
	}
	return rows, counter
}

// openStore opens a snapshot store in dir (a fresh one if empty) and
// closes it at cleanup.
func openStore(t testing.TB, dir string) *snapstore.Store {
	t.Helper()
	if dir == "" {
		dir = filepath.Join(t.TempDir(), "snapshots")
	}
	st, err := snapstore.Open(context.Background(), dir, nil)
	if err != nil {
		t.Fatalf("open snapshot store: %v", err)
	}
	t.Cleanup(func() { st.Close(context.Background()) })
	return st
}

// integrityCheck runs PRAGMA integrity_check on the database at path, in
// place, so a live WAL database is checked with its WAL; it returns an
// error naming the first problems it reports.
func integrityCheck(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "PRAGMA integrity_check(20)")
	if err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return fmt.Errorf("integrity check: %w", err)
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	if len(problems) > 0 {
		return &snapdeck.Error{Code: snapdeck.Internal, Message: "the database fails its integrity check: " + strings.Join(problems, "; ")}
	}
	return nil
}
