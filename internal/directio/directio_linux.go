package directio

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

func create(path string, perm os.FileMode) (*os.File, bool, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_DIRECT, perm)
	if err == nil {
		return f, true, nil
	}
	if !errors.Is(err, unix.EINVAL) {
		return nil, false, err
	}
	// The file system refuses O_DIRECT. Some kernels refuse it only once
	// the file exists; with O_EXCL, a file there now is the one this call
	// created.
	os.Remove(path)
	f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	return f, false, err
}

func refused(err error) bool { return errors.Is(err, unix.EINVAL) }

func openWriter(path string) (*os.File, bool, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|unix.O_DIRECT, 0)
	if err == nil {
		return f, true, nil
	}
	if !errors.Is(err, unix.EINVAL) {
		return nil, false, err
	}
	f, err = os.OpenFile(path, os.O_WRONLY, 0)
	return f, false, err
}
