// Package ui holds the console's primitives: buttons, badges, tables, cards,
// alerts and form fields. Each takes a Props struct with Class, for extra
// Tailwind classes, and Attributes, for hx-* or data-* attributes, so pages
// can adapt them without forking them.
package ui

import "strings"

// classes joins non-empty class lists with single spaces.
func classes(list ...string) string {
	var b strings.Builder
	for _, c := range list {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(c)
	}
	return b.String()
}
