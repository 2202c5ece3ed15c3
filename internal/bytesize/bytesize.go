// Package bytesize reads and writes byte counts the way people type them on a
// command line: "4GiB", "512MiB", "1.5GB", "1048576".
package bytesize

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The binary units, for callers that state limits in code.
const (
	KiB int64 = 1 << 10
	MiB int64 = 1 << 20
	GiB int64 = 1 << 30
	TiB int64 = 1 << 40
)

// units maps every accepted suffix (lower case) to its multiplier. Decimal
// suffixes mean powers of ten, as they do on disk labels; "K", "M", "G" and
// "T" alone are read as binary because that is what people mean when they
// type them for a memory or upload limit.
var units = map[string]int64{
	"":    1,
	"b":   1,
	"k":   KiB,
	"kb":  1000,
	"kib": KiB,
	"m":   MiB,
	"mb":  1000 * 1000,
	"mib": MiB,
	"g":   GiB,
	"gb":  1000 * 1000 * 1000,
	"gib": GiB,
	"t":   TiB,
	"tb":  1000 * 1000 * 1000 * 1000,
	"tib": TiB,
}

// Parse reads a non-negative byte count: a number, optionally with a
// fraction, followed by an optional unit (B, KiB, MiB, GiB, TiB, KB, MB, GB,
// TB, or K, M, G, T for the binary units), case-insensitive, with optional
// space between. The result is rounded down to a whole byte.
func Parse(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult, ok := units[unit]
	if num == "" || !ok {
		return 0, fmt.Errorf("invalid size %q: want a number of bytes with an optional unit, such as 4GiB, 512MiB or 1048576", s)
	}
	// Whole numbers are parsed exactly; only fractions go through float64,
	// which would otherwise lose precision above 2^53 bytes.
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n > math.MaxInt64/mult {
			return 0, fmt.Errorf("invalid size %q: too large", s)
		}
		return n * mult, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q: want a number of bytes with an optional unit, such as 4GiB, 512MiB or 1048576", s)
	}
	v := f * float64(mult)
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return int64(v), nil
}

// Format writes n with the largest binary unit that keeps it at least 1, to
// one decimal place when that is not exact: 4294967296 is "4GiB",
// 1572864 is "1.5MiB", 1000 is "1000B". Parse reads back every exact result.
func Format(n int64) string {
	if n < 0 {
		return "-" + Format(-n)
	}
	for _, u := range []struct {
		size int64
		name string
	}{{TiB, "TiB"}, {GiB, "GiB"}, {MiB, "MiB"}, {KiB, "KiB"}} {
		if n < u.size {
			continue
		}
		if n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name
		}
		return strconv.FormatFloat(float64(n)/float64(u.size), 'f', 1, 64) + u.name
	}
	return strconv.FormatInt(n, 10) + "B"
}

// Grouped writes n in full with a comma between groups of three digits,
// as people read an exact count: 12345678 is "12,345,678".
func Grouped(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}
