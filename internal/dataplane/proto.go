package dataplane

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The JSON structures of Hrana over HTTP (docs/HRANA_3_SPEC.md of
// tursodatabase/libsql), as far as the data plane reads or writes them.
// Fields the spec adds later are ignored on input, as it asks.

// pipelineRequest is the body of POST v2/pipeline and v3/pipeline.
type pipelineRequest struct {
	Baton    *string         `json:"baton"`
	Requests []streamRequest `json:"requests"`
}

// pipelineResponse answers it. BaseURL is always set: the database's own
// URL, so a client that was given the URL without its trailing slash (and
// posted to /db/v2/pipeline) goes on at /db/<id>/.
type pipelineResponse struct {
	Baton   *string        `json:"baton"`
	BaseURL string         `json:"base_url"`
	Results []streamResult `json:"results"`
}

// streamRequest is one request of a pipeline; Type says which of the
// other fields it uses.
type streamRequest struct {
	Type  string  `json:"type"`
	Stmt  *stmt   `json:"stmt,omitempty"`
	Batch *batch  `json:"batch,omitempty"`
	SQL   *string `json:"sql,omitempty"`
	SQLID *int32  `json:"sql_id,omitempty"`
}

// streamResult is "ok" with a response or "error" with an error.
type streamResult struct {
	Type     string    `json:"type"`
	Response any       `json:"response,omitempty"`
	Error    *errorMsg `json:"error,omitempty"`
}

// errorMsg is Hrana's Error: a sentence and a machine-readable code.
type errorMsg struct {
	Message string `json:"message"`
	Code    string `json:"code,omitempty"`
}

type stmt struct {
	SQL       *string    `json:"sql,omitempty"`
	SQLID     *int32     `json:"sql_id,omitempty"`
	Args      []value    `json:"args,omitempty"`
	NamedArgs []namedArg `json:"named_args,omitempty"`
	WantRows  *bool      `json:"want_rows,omitempty"`
}

type namedArg struct {
	Name  string `json:"name"`
	Value value  `json:"value"`
}

type batch struct {
	Steps []batchStep `json:"steps"`
}

type batchStep struct {
	Condition *batchCond `json:"condition,omitempty"`
	Stmt      stmt       `json:"stmt"`
}

// batchCond is a step's condition: ok, error, not, and, or, is_autocommit.
type batchCond struct {
	Type  string      `json:"type"`
	Step  *uint32     `json:"step,omitempty"`
	Cond  *batchCond  `json:"cond,omitempty"`
	Conds []batchCond `json:"conds,omitempty"`
}

type col struct {
	Name     *string `json:"name"`
	Decltype *string `json:"decltype"`
}

// stmtResult is Hrana's StmtResult. Rows is never null: clients index it.
type stmtResult struct {
	Cols             []col     `json:"cols"`
	Rows             [][]value `json:"rows"`
	AffectedRowCount int64     `json:"affected_row_count"`
	LastInsertRowid  *string   `json:"last_insert_rowid"`
	RowsRead         int64     `json:"rows_read"`
	RowsWritten      int64     `json:"rows_written"`
	QueryDurationMS  float64   `json:"query_duration_ms"`
}

type batchResult struct {
	StepResults []*stmtResult `json:"step_results"`
	StepErrors  []*errorMsg   `json:"step_errors"`
}

type describeResult struct {
	Params     []describeParam `json:"params"`
	Cols       []describeCol   `json:"cols"`
	IsExplain  bool            `json:"is_explain"`
	IsReadonly bool            `json:"is_readonly"`
}

type describeParam struct {
	Name *string `json:"name"`
}

type describeCol struct {
	Name     string  `json:"name"`
	Decltype *string `json:"decltype"`
}

// The responses of each request type.
type (
	executeResp struct {
		Type   string     `json:"type"`
		Result stmtResult `json:"result"`
	}
	batchResp struct {
		Type   string      `json:"type"`
		Result batchResult `json:"result"`
	}
	describeResp struct {
		Type   string         `json:"type"`
		Result describeResult `json:"result"`
	}
	autocommitResp struct {
		Type         string `json:"type"`
		IsAutocommit bool   `json:"is_autocommit"`
	}
	// typeOnly answers close, sequence, store_sql and close_sql.
	typeOnly struct {
		Type string `json:"type"`
	}
)

// value is one SQLite value: nil, int64, float64, string or []byte. It
// reads and writes Hrana's Value: integers as decimal strings, so the
// whole int64 range survives JSON readers that keep numbers as doubles,
// and blobs in base64.
type value struct{ v any }

// wireValue is value's JSON shape, read in one pass: Value is a string
// for integers and text, a number for floats.
type wireValue struct {
	Type   string  `json:"type"`
	Value  any     `json:"value"`
	Base64 *string `json:"base64"`
}

func (v *value) UnmarshalJSON(b []byte) error {
	var w wireValue
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	switch w.Type {
	case "null":
		v.v = nil
	case "integer":
		// The spec sends a string; a number is taken too when it is an
		// exact integer.
		switch x := w.Value.(type) {
		case string:
			n, err := strconv.ParseInt(x, 10, 64)
			if err != nil {
				return fmt.Errorf("integer value %q is not a 64-bit integer", clip(x))
			}
			v.v = n
		case float64:
			if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
				return fmt.Errorf("integer value %v is not exact: send it as a string", x)
			}
			v.v = int64(x)
		default:
			return fmt.Errorf("integer value %v is not a string of digits", w.Value)
		}
	case "float":
		f, ok := w.Value.(float64)
		if !ok {
			return fmt.Errorf("float value %v is not a number", w.Value)
		}
		v.v = f
	case "text":
		s, ok := w.Value.(string)
		if !ok {
			return fmt.Errorf("text value %v is not a string", w.Value)
		}
		v.v = s
	case "blob":
		if w.Base64 == nil {
			return fmt.Errorf("blob value has no base64 field")
		}
		// Clients differ on padding; both are read.
		b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(*w.Base64, "="))
		if err != nil {
			return fmt.Errorf("blob value is not base64: %v", err)
		}
		v.v = b
	default:
		return fmt.Errorf("value type %q is not one of null, integer, float, text, blob", clip(w.Type))
	}
	return nil
}

func (v value) MarshalJSON() ([]byte, error) {
	switch x := v.v.(type) {
	case nil:
		return []byte(`{"type":"null"}`), nil
	case int64:
		return []byte(`{"type":"integer","value":"` + strconv.FormatInt(x, 10) + `"}`), nil
	case float64:
		// JSON has no infinities. 9e999 is what SQLite's own JSON
		// functions write for them: JavaScript reads it as Infinity.
		switch {
		case math.IsInf(x, 1):
			return []byte(`{"type":"float","value":9e999}`), nil
		case math.IsInf(x, -1):
			return []byte(`{"type":"float","value":-9e999}`), nil
		case math.IsNaN(x):
			return []byte(`{"type":"null"}`), nil
		}
		return []byte(`{"type":"float","value":` + strconv.FormatFloat(x, 'g', -1, 64) + `}`), nil
	case string:
		s, err := json.Marshal(x)
		if err != nil {
			return nil, err
		}
		return append(append([]byte(`{"type":"text","value":`), s...), '}'), nil
	case []byte:
		// Without padding, as sqld writes it: the Go client decodes only
		// that.
		return []byte(`{"type":"blob","base64":"` + base64.RawStdEncoding.EncodeToString(x) + `"}`), nil
	default:
		return nil, fmt.Errorf("value of type %T", v.v)
	}
}

// size is about how many bytes v takes in a response, to bound results.
func (v value) size() int {
	switch x := v.v.(type) {
	case string:
		return len(x) + 32
	case []byte:
		return len(x)*4/3 + 32
	default:
		return 40
	}
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
