package snapdeck

import (
	"strings"
	"unicode"
)

// Sentence starts a message with a capital letter and ends it with a full
// stop: the domain's messages are clauses, shown this way on their own.
func Sentence(s string) string {
	if s == "" {
		return s
	}
	r := []rune(s)
	r[0] = unicode.ToUpper(r[0])
	if !strings.HasSuffix(s, ".") {
		r = append(r, '.')
	}
	return string(r)
}
