package dataplane

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// cursorRequest is the body of POST v3/cursor: one batch on a stream.
type cursorRequest struct {
	Baton *string `json:"baton"`
	Batch *batch  `json:"batch"`
}

// cursorHead is the first line of a cursor's answer.
type cursorHead struct {
	Baton   *string `json:"baton"`
	BaseURL string  `json:"base_url"`
}

// cursorEntry is one line after it: step_begin, row, step_end, step_error
// or error.
type cursorEntry struct {
	Type             string    `json:"type"`
	Step             *int      `json:"step,omitempty"`
	Cols             []col     `json:"cols,omitempty"`
	Row              []value   `json:"row,omitempty"`
	AffectedRowCount *int64    `json:"affected_row_count,omitempty"`
	LastInsertRowid  *string   `json:"last_insert_rowid,omitempty"`
	Error            *errorMsg `json:"error,omitempty"`
}

// cursor runs POST v3/cursor: the batch runs as a pipeline's batch
// request would, and its results are written as lines of JSON. Neither
// libSQL client uses it today (both speak v2/pipeline over HTTP with
// JSON); it is here because GET v3 says Hrana 3 with JSON is.
func (s *Server) cursor(w http.ResponseWriter, r *http.Request, pathID string) {
	var req cursorRequest
	g, ok := s.accept(w, r, pathID, &req)
	if !ok {
		return
	}
	if req.Batch == nil {
		s.fail(w, protocolError("A cursor request needs a batch."))
		return
	}
	resp, err := s.serve(r.Context(), g, req.Baton, []streamRequest{{Type: "batch", Batch: req.Batch}})
	if err != nil {
		s.failAt(w, err, baseURL(r, g.DatabaseID))
		return
	}
	// The stream's requests are done: the baton goes in the first line,
	// the results after it.
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.Encode(cursorHead{Baton: resp.Baton, BaseURL: baseURL(r, g.DatabaseID)})
	res := resp.Results[0]
	if res.Error != nil {
		enc.Encode(cursorEntry{Type: "error", Error: res.Error})
	} else {
		b := res.Response.(batchResp).Result
		for i := range b.StepResults {
			step := i
			switch {
			case b.StepErrors[i] != nil:
				enc.Encode(cursorEntry{Type: "step_error", Step: &step, Error: b.StepErrors[i]})
			case b.StepResults[i] != nil:
				sr := b.StepResults[i]
				enc.Encode(cursorEntry{Type: "step_begin", Step: &step, Cols: append([]col{}, sr.Cols...)})
				for _, row := range sr.Rows {
					enc.Encode(cursorEntry{Type: "row", Row: row})
				}
				enc.Encode(cursorEntry{Type: "step_end", AffectedRowCount: &sr.AffectedRowCount, LastInsertRowid: sr.LastInsertRowid})
			}
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(out.Bytes())
}
