//go:build unix

package gitpack

import (
	"os"

	"golang.org/x/sys/unix"
)

// mapFile maps the file at path read-only. release drops the pages of a
// range from the process (the page cache keeps them).
func mapFile(path string) (data []byte, unmap func() error, release func(lo, hi int), err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, nil, err
	}
	if fi.Size() == 0 {
		return nil, func() error { return nil }, func(int, int) {}, nil
	}
	data, err = unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, nil, err
	}
	page := os.Getpagesize()
	release = func(lo, hi int) {
		lo = lo / page * page
		if hi -= hi % page; hi > lo {
			// Advice only: a failure costs memory, not correctness.
			_ = unix.Madvise(data[lo:hi], unix.MADV_DONTNEED)
		}
	}
	return data, func() error { return unix.Munmap(data) }, release, nil
}
