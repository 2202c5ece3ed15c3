package database

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"modernc.org/sqlite"
)

// The Query tab refuses what the SQL import refuses (internal/importfile,
// sqltext.go): other files, file functions, virtual tables other than full
// text search and R*Tree, raw pages, and pragmas beyond a list. Its pragma
// list is longer, because each run is a session of its own (Host.Query): a
// setting that lasts only for the session harms nobody else.

// sessionPragmas may be set from the Query tab: they last only as long as
// the run's own connection, or they change data inside the database as any
// UPDATE does. Pragmas that only read (no value given) are allowed whatever
// their name.
var sessionPragmas = map[string]bool{
	"foreign_keys": true, "defer_foreign_keys": true, "recursive_triggers": true, "legacy_alter_table": true,
	"ignore_check_constraints": true, "case_sensitive_like": true, "automatic_index": true,
	"reverse_unordered_selects": true, "cell_size_check": true, "busy_timeout": true, "max_page_count": true,
	"trusted_schema": true, "read_uncommitted": true, "count_changes": true, "empty_result_callbacks": true,
	"full_column_names": true, "short_column_names": true, "secure_delete": true, "analysis_limit": true,
	"query_only": true, "optimize": true, "incremental_vacuum": true,
	"user_version": true, "application_id": true, "encoding": true, "auto_vacuum": true,
	// These take a table or index name: they read.
	"table_info": true, "table_xinfo": true, "table_list": true, "index_list": true, "index_info": true,
	"index_xinfo": true, "foreign_key_list": true, "foreign_key_check": true,
	"integrity_check": true, "quick_check": true,
}

// pragmaRefusals says why the pragmas known to be dangerous are refused;
// any other pragma not in sessionPragmas gets a general reason.
var pragmaRefusals = map[string]string{}

func init() {
	for reason, names := range map[string][]string{
		"it changes a setting of the whole console process, not of this database: every database " +
			"and the console's own store would feel it": {
			"hard_heap_limit", "soft_heap_limit", "temp_store_directory", "data_store_directory"},
		"it changes how the console keeps the database file (journal, locking, syncing, checkpoints " +
			"or the schema's own records), which is the console's to decide": {
			"journal_mode", "locking_mode", "synchronous", "wal_autocheckpoint", "wal_checkpoint", "mmap_size",
			"page_size", "schema_version", "writable_schema", "journal_size_limit", "fullfsync",
			"checkpoint_fullfsync", "default_cache_size", "legacy_file_format"},
		"it would let one run take more memory or more cores than the console gives a query": {
			"cache_size", "cache_spill", "temp_store", "threads"},
	} {
		for _, n := range names {
			pragmaRefusals[n] = reason
		}
	}
}

// fileFunctions read or write files, or load code, where they exist.
var fileFunctions = map[string]bool{"load_extension": true, "readfile": true, "writefile": true, "edit": true, "fts3_tokenizer": true}

// vtableModules are the virtual table modules the Query tab may create: full
// text search and R*Tree keep their data inside the database.
var vtableModules = map[string]bool{"fts3": true, "fts4": true, "fts5": true, "rtree": true, "rtree_i32": true, "geopoly": true}

// rawPageTables expose the file's pages for writing. Writing sqlite_dbpage
// rewrites pages behind SQLite's back and corrupts the database; the
// connection's defensive mode refuses it too, this says why. dbstat, the
// other table over raw pages, only reads: SQLite refuses writes to it.
var rawPageTables = map[string]bool{"sqlite_dbpage": true}

// queryPolicy is the authorizer of one Query-tab connection. It keeps the
// reason of its first refusal, so the message says what was refused and
// why instead of SQLite's "not authorized".
type queryPolicy struct {
	readOnly bool
	refused  string
}

func (p *queryPolicy) authorize(action sqlite.AuthorizerActionCode, arg1, arg2, dbName, trigger string) sqlite.AuthorizerReturnCode {
	deny := func(format string, args ...any) sqlite.AuthorizerReturnCode {
		if p.refused == "" {
			p.refused = fmt.Sprintf(format, args...)
		}
		return sqlite.AuthorizerDeny
	}
	switch action {
	case sqlite.AuthAttach:
		// SQLite runs VACUUM as an ATTACH of a new, nameless file, and
		// VACUUM INTO as an ATTACH of its target.
		if arg1 == "" {
			return deny("VACUUM is refused: it rewrites the whole database file, which only the console does")
		}
		return deny("ATTACH and VACUUM INTO are refused: they open another file (%q), and a hosted database must not reach any file beside its own", clip(arg1, 80))
	case sqlite.AuthDetach:
		return deny("DETACH is refused: a hosted database has nothing attached")
	case sqlite.AuthFunction:
		if name := strings.ToLower(arg2); fileFunctions[name] {
			return deny("calling %s() is refused: it reads or writes files or loads code", name)
		}
	case sqlite.AuthPragma:
		name := strings.ToLower(arg1)
		if arg2 == "" {
			return sqlite.AuthorizerOK
		}
		if reason, ok := pragmaRefusals[name]; ok {
			return deny("PRAGMA %s is refused: %s", name, reason)
		}
		if name == "query_only" && p.readOnly {
			return deny("PRAGMA query_only is refused: a viewer's session is read-only")
		}
		if !sessionPragmas[name] {
			return deny("PRAGMA %s is refused: the Query tab sets only pragmas that last for its own run or change data inside the database", clip(name, 40))
		}
	case sqlite.AuthCreateVTable:
		if !vtableModules[strings.ToLower(arg2)] {
			return deny("a virtual table using %q is refused: only full text search (fts3, fts4, fts5) and R*Tree tables may be created", clip(arg2, 40))
		}
	case sqlite.AuthInsert, sqlite.AuthUpdate, sqlite.AuthDelete:
		if rawPageTables[strings.ToLower(arg1)] {
			return deny("writing %s is refused: it rewrites raw pages of the file and would corrupt the database", strings.ToLower(arg1))
		}
	}
	if table, ok := replicatorTableChanged(action, arg1, arg2); ok {
		return deny("changing %s is refused: point-in-time replication keeps it, and the database's history depends on it", table)
	}
	return sqlite.AuthorizerOK
}

// clip shortens s to at most n bytes, at a character boundary, for a
// message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
