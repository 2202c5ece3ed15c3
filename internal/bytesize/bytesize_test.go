package bytesize

import "testing"

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"0", 0, false},
		{"1048576", 1048576, false},
		{"4GiB", 4 << 30, false},
		{"4gib", 4 << 30, false},
		{"512MiB", 512 << 20, false},
		{"512 MiB", 512 << 20, false},
		{"1.5GiB", 3 << 29, false},
		{"10KB", 10000, false},
		{"2G", 2 << 30, false},
		{"7B", 7, false},
		{" 64MiB ", 64 << 20, false},
		{"", 0, true},
		{"GiB", 0, true},
		{"-1", 0, true},
		{"4XB", 0, true},
		{"1..5MiB", 0, true},
		{"9223372036854775807", 9223372036854775807, false},
		{"9999999999TiB", 0, true},
		{"1e9", 0, true},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("Parse(%q): got error %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if got != tt.want {
			t.Errorf("Parse(%q): got %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0B"},
		{1000, "1000B"},
		{1024, "1KiB"},
		{1536, "1.5KiB"},
		{4 << 30, "4GiB"},
		{64 << 20, "64MiB"},
		{-2048, "-2KiB"},
	}
	for _, tt := range tests {
		if got := Format(tt.in); got != tt.want {
			t.Errorf("Format(%d): got %q, want %q", tt.in, got, tt.want)
		}
		if n, err := Parse(tt.want); tt.in >= 0 && (err != nil || n != tt.in) {
			t.Errorf("Parse(Format(%d)): got %d, %v, want %d", tt.in, n, err, tt.in)
		}
	}
}

func TestGrouped(t *testing.T) {
	for in, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 12345678: "12,345,678", -1234: "-1,234"} {
		if got := Grouped(in); got != want {
			t.Errorf("Grouped(%d): got %q, want %q", in, got, want)
		}
	}
}
