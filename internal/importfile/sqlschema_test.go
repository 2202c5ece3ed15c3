package importfile

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// dumpFTS is what sqlite3 3.45's .dump writes for an FTS5 and an R*Tree
// table: their rows go straight into sqlite_schema under writable_schema,
// their shadow tables follow.
const dumpFTS = `PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
PRAGMA writable_schema=ON;
INSERT INTO sqlite_schema(type,name,tbl_name,rootpage,sql)VALUES('table','docs','docs',0,'CREATE VIRTUAL TABLE docs USING fts5(body)');
CREATE TABLE IF NOT EXISTS 'docs_data'(id INTEGER PRIMARY KEY, block BLOB);
INSERT INTO docs_data VALUES(1,X'0102');
INSERT INTO docs_data VALUES(10,X'000000000101010001010101');
INSERT INTO docs_data VALUES(137438953473,X'00000018063068656c6c6f0102020105776f726c64010203040a');
CREATE TABLE IF NOT EXISTS 'docs_idx'(segid, term, pgno, PRIMARY KEY(segid, term)) WITHOUT ROWID;
INSERT INTO docs_idx VALUES(1,X'',2);
CREATE TABLE IF NOT EXISTS 'docs_content'(id INTEGER PRIMARY KEY, c0);
INSERT INTO docs_content VALUES(1,'hello world');
CREATE TABLE IF NOT EXISTS 'docs_docsize'(id INTEGER PRIMARY KEY, sz BLOB);
INSERT INTO docs_docsize VALUES(1,X'02');
CREATE TABLE IF NOT EXISTS 'docs_config'(k PRIMARY KEY, v) WITHOUT ROWID;
INSERT INTO docs_config VALUES('version',4);
INSERT INTO sqlite_schema(type,name,tbl_name,rootpage,sql)VALUES('table','r','r',0,'CREATE VIRTUAL TABLE r USING rtree(id, x0, x1)');
CREATE TABLE IF NOT EXISTS "r_rowid"(rowid INTEGER PRIMARY KEY,nodeno);
CREATE TABLE IF NOT EXISTS "r_node"(nodeno INTEGER PRIMARY KEY,data);
INSERT INTO r_node VALUES(1,zeroblob(1024));
CREATE TABLE IF NOT EXISTS "r_parent"(nodeno INTEGER PRIMARY KEY,parentnode);
PRAGMA writable_schema=OFF;
COMMIT;
`

// TestSQLSchemaWrites checks that SQL text writes the schema table only as
// sqlite3's .dump does for a virtual table of an allowed module: every
// other way in is refused with the line it is on.
func TestSQLSchemaWrites(t *testing.T) {
	const evil = `'CREATE VIRTUAL TABLE evil USING sqlite_dbpage'`
	cases := []struct {
		name string
		sql  string
		line int
		want string
	}{
		{"the attack: writable_schema=ON, a row of sqlite_dbpage",
			"PRAGMA writable_schema=ON;\nINSERT INTO sqlite_schema VALUES('table','evil','evil',0," + evil + ");\n",
			2, "it writes the schema table (sqlite_schema) directly"},
		{"as .dump writes it, but sqlite_dbpage",
			"PRAGMA writable_schema=ON;\nINSERT INTO sqlite_schema(type,name,tbl_name,rootpage,sql)VALUES('table','evil','evil',0," + evil + ");\n",
			2, `it creates a virtual table using "sqlite_dbpage" through the schema table`},
		{"sqlite_master, writable_schema=1",
			"CREATE TABLE t(n);\nPRAGMA writable_schema=1;\nINSERT INTO sqlite_master VALUES('table','evil','evil',0," + evil + ");\n",
			3, "it writes the schema table (sqlite_schema) directly"},
		{"main.sqlite_master as .dump writes it, writable_schema=true",
			"PRAGMA writable_schema=true;\n\nINSERT INTO main.sqlite_master(type,name,tbl_name,rootpage,sql)VALUES('table','evil','evil',0," + evil + ");\n",
			3, `it creates a virtual table using "sqlite_dbpage" through the schema table`},
		{"writable_schema=yes, UPDATE of a row",
			"CREATE TABLE t(n);\nPRAGMA writable_schema=yes;\nUPDATE sqlite_schema SET sql='CREATE VIRTUAL TABLE t USING sqlite_dbpage', rootpage=0 WHERE name='t';\n",
			3, "it writes the schema table (sqlite_schema) directly"},
		{"PRAGMA main.writable_schema, DELETE of a row",
			"CREATE TABLE t(n);\nPRAGMA main.writable_schema=ON;\nDELETE FROM sqlite_schema WHERE name='t';\n",
			3, "it writes the schema table (sqlite_schema) directly"},
		{"the temp schema",
			"PRAGMA writable_schema=ON;\nINSERT INTO temp.sqlite_master VALUES('table','evil','evil',0," + evil + ");\n",
			2, "it writes the schema table (sqlite_schema) directly"},
		{"WITH ... INSERT",
			"PRAGMA writable_schema=ON;\nWITH r(a) AS (SELECT 1)\nINSERT INTO sqlite_schema SELECT 'table','evil','evil',0," + evil + " FROM r;\n",
			2, "it writes the schema table (sqlite_schema) directly"},
		{"a trigger that writes the schema when it fires",
			"PRAGMA writable_schema=ON;\nCREATE TABLE t(n);\nCREATE TRIGGER w AFTER INSERT ON t BEGIN\n  INSERT INTO sqlite_schema VALUES('table','evil','evil',0," + evil + ");\nEND;\nINSERT INTO t VALUES(1);\n",
			6, "it writes the schema table (sqlite_schema) directly"},
		{"a table that is not virtual, as .dump writes virtual ones",
			"PRAGMA writable_schema=ON;\nINSERT INTO sqlite_schema(type,name,tbl_name,rootpage,sql)VALUES('table','t','t',0,'CREATE TABLE t(n)');\n",
			2, "it puts a row into the schema table (sqlite_schema) that is not a virtual table"},
		{"names that disagree",
			"PRAGMA writable_schema=ON;\nINSERT INTO sqlite_schema(type,name,tbl_name,rootpage,sql)VALUES('table','docs','docs',0,'CREATE VIRTUAL TABLE other USING fts5(body)');\n",
			2, "whose names disagree"},
		{"a trigger row, as .dump writes tables",
			"PRAGMA writable_schema=ON;\nINSERT INTO sqlite_schema(type,name,tbl_name,rootpage,sql)VALUES('trigger','x','x',0,'CREATE VIRTUAL TABLE x USING fts5(b)');\n",
			2, "it writes the schema table (sqlite_schema) directly"},
		{"CREATE VIRTUAL TABLE of sqlite_dbpage",
			"CREATE VIRTUAL TABLE evil USING sqlite_dbpage;\n",
			1, `it creates a virtual table using "sqlite_dbpage"`},
		{"CREATE VIRTUAL TABLE of dbstat",
			"\nCREATE VIRTUAL TABLE s USING dbstat(main);\n",
			2, `it creates a virtual table using "dbstat"`},
		{"ATTACH",
			"CREATE TABLE t(n);\nATTACH 'file:other.db' AS o;\n",
			2, "it opens another database file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "new.sqlite")
			_, err := Prepare(context.Background(), writeTemp(t, tc.sql), dst, testLimits, nil)
			e, ok := snapdeck.AsError(err)
			if !ok || e.Code != snapdeck.Invalid {
				t.Fatalf("got %v, want an Invalid refusal", err)
			}
			if at := "refused at line " + strconv.Itoa(tc.line) + ": "; !strings.Contains(e.Message, at) || !strings.Contains(e.Message, tc.want) {
				t.Errorf("message:\n got %q\nwant one with %q and %q", e.Message, at, tc.want)
			}
			if _, err := os.Stat(dst); !os.IsNotExist(err) {
				t.Errorf("the refused database was left at %s", dst)
			}
		})
	}
}

// TestSQLDumpOfVirtualTables loads sqlite3's .dump of FTS5 and R*Tree
// tables, which writes sqlite_schema directly, and searches the result.
func TestSQLDumpOfVirtualTables(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "new.sqlite")
	if _, err := Prepare(context.Background(), writeTemp(t, dumpFTS), dst, testLimits, nil); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	db, err := sql.Open("sqlite", "file:"+dst+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM docs WHERE docs MATCH 'hello'").Scan(&n); err != nil || n != 1 {
		t.Errorf("full-text search: got %d, %v; want 1 row", n, err)
	}
	if err := db.QueryRow("SELECT count(*) FROM r").Scan(&n); err != nil || n != 0 {
		t.Errorf("r*tree: got %d, %v; want 0 rows", n, err)
	}
}

// writeTemp writes text to a file of its own and returns its path.
func writeTemp(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "upload.sql")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
