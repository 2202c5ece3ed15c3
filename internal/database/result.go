package database

import "time"

// Result is what one SQL statement gave back: the first rows of a query, or
// the count of rows a change touched.
type Result struct {
	Columns      []string
	Rows         [][]string // values rendered as text; NULL as "NULL"
	Truncated    bool       // more rows existed than were shown
	PageLimit    int64      // set when rows stopped at this many bytes of values, before the row limit
	RolledBack   bool       // the SQL left a transaction open, and it was rolled back
	IsQuery      bool       // the statement returned rows
	RowsAffected int64
	Duration     time.Duration
}

// Table is one table of a hosted database with its row count.
type Table struct {
	Name string
	Rows int64
}
