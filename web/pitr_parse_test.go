package web

import (
	"errors"
	"testing"
	"time"

	"github.com/snapdeck/snapdeck/internal/snapdeck"
)

// TestParsePointInTime covers the forms SPEC §10 accepts for a point in
// time and what is refused, as a field error on the named field.
func TestParsePointInTime(t *testing.T) {
	want := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		raw  string
		want time.Time // zero: refused
	}{
		{"2026-01-02T03:04:05", want},
		{" 2026-01-02T03:04:05 ", want},
		{"2026-01-02 03:04:05", want},
		{"2026-01-02T03:04:05Z", want},
		{"2026-01-02T05:04:05+02:00", want},
		{"2026-01-01T22:04:05-05:00", want},
		{"2026-01-02T03:04:05.250Z", want.Add(250 * time.Millisecond)},
		{"", time.Time{}},
		{"yesterday", time.Time{}},
		{"2026-01-02", time.Time{}},
		{"2026-01-02T03:04", time.Time{}},
		{"2026-02-30T03:04:05", time.Time{}},
		{"2026-01-02T25:04:05", time.Time{}},
		{"1767323045", time.Time{}},
		{"02/01/2026 03:04:05", time.Time{}},
	} {
		got, err := parsePointInTime("time", tc.raw)
		if tc.want.IsZero() {
			if err == nil {
				t.Errorf("%q: got %v, want a refusal", tc.raw, got)
				continue
			}
			var e *snapdeck.Error
			if snapdeck.ErrorCode(err) != snapdeck.Invalid || !errors.As(err, &e) || e.Field != "time" {
				t.Errorf("%q: got %v, want an Invalid error on field time", tc.raw, err)
			}
			continue
		}
		if err != nil || !got.Equal(tc.want) || got.Location() != time.UTC {
			t.Errorf("%q: got %v, %v; want %v in UTC", tc.raw, got, err, tc.want)
		}
	}
}
