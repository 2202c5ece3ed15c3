//go:build !linux

package pagecache

func of(path string) (Stat, error) { return Stat{}, ErrUnsupported }
