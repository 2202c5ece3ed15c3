package dump

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// testTime is the snapshot time of every test dump.
var testTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// mustCreateDB makes a real SQLite database of about rows rows of mixed text
// and integers in dir and returns its path. wal leaves it in WAL mode, as a
// snapshot of a hosted database is.
func mustCreateDB(t testing.TB, dir string, rows int, wal bool) string {
	t.Helper()
	path := filepath.Join(dir, "source.sqlite")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mode := "DELETE"
	if wal {
		mode = "WAL"
	}
	stmts := []string{
		"PRAGMA journal_mode=" + mode,
		`CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT NOT NULL,
			email TEXT, amount_cents INTEGER, status TEXT, note TEXT, created INTEGER)`,
		"CREATE INDEX orders_customer ON orders(customer)",
	}
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := fillOrders(db, 0, rows); err != nil {
		t.Fatal(err)
	}
	// Fold the WAL back into the main file so the file alone is the database.
	if _, err := db.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatal(err)
	}
	return path
}

// Vocabulary for realistic rows: repetitive like real data, not zeros.
var (
	firstNames = []string{"ann", "bob", "chen", "dara", "emil", "fatima", "gus", "hana", "ivan", "june", "kofi", "lena"}
	lastNames  = []string{"smith", "garcia", "nguyen", "muller", "rossi", "kowalski", "tanaka", "okafor", "silva", "dubois"}
	statuses   = []string{"pending", "paid", "shipped", "delivered", "refunded"}
	words      = []string{"gift", "wrap", "please", "leave", "at", "door", "urgent", "fragile", "call", "before", "delivery", "back", "entrance", "thanks"}
)

// fillOrders inserts rows [from, from+n) of deterministic pseudo-random orders.
func fillOrders(db *sql.DB, from, n int) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	st, err := tx.Prepare("INSERT INTO orders (id, customer, email, amount_cents, status, note, created) VALUES (?, ?, ?, ?, ?, ?, ?)")
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(uint64(from), 7))
	var note bytes.Buffer
	for i := from; i < from+n; i++ {
		first, last := firstNames[rng.IntN(len(firstNames))], lastNames[rng.IntN(len(lastNames))]
		note.Reset()
		for range rng.IntN(12) {
			note.WriteString(words[rng.IntN(len(words))])
			note.WriteByte(' ')
		}
		_, err := st.Exec(i+1, first+" "+last, fmt.Sprintf("%s.%s%d@example.com", first, last, rng.IntN(1000)),
			rng.IntN(500000), statuses[rng.IntN(len(statuses))], note.String(), 1700000000+rng.IntN(60000000))
		if err != nil {
			return err
		}
	}
	return tx.Commit()
}

// manifestFor returns a complete manifest for the database file at path.
func manifestFor(t testing.TB, path string) Manifest {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return Manifest{
		DatabaseName: "orders", DatabaseID: "a1b2c3d4",
		SnapshotID: "0b6a1a4e-9c1e-4c35-9a51-2f1f8f1c2d3e", SnapshotType: "On-demand",
		SnapshotTime: testTime, Engine: "snapdeck test", SQLiteVersion: "3.50.0",
		Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:]),
	}
}

// mustWriteDump returns a .dump of the database at path.
func mustWriteDump(t testing.TB, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out bytes.Buffer
	if err := Write(context.Background(), &out, manifestFor(t, path), f); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// dirEntries lists the names in dir, to check nothing was left behind.
func dirEntries(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// archiveOf is the tar archive a .dump compresses: its zstd stream
// decompressed, every frame.
func archiveOf(t *testing.T, dump []byte) []byte {
	t.Helper()
	dec, err := zstd.NewReader(bytes.NewReader(dump))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	archive, err := io.ReadAll(dec)
	if err != nil {
		t.Fatal(err)
	}
	return archive
}
