package scan

import (
	"fmt"
	"io/fs"
	"syscall"
)

// readFile reads name into buf (grown as needed) unless it is larger than
// max, in which case ok is false. On Linux it goes to the system calls
// directly (open, fstat, read, close): os.File's poller set-up and extra
// fstat cost more than the read itself for the small files of source trees.
func readFile(name string, max int64, buf []byte) (data []byte, ok bool, err error) {
	var fd int
	for {
		fd, err = syscall.Open(name, syscall.O_RDONLY|syscall.O_CLOEXEC|syscall.O_NOCTTY, 0)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return buf[:0], false, fmt.Errorf("scan: %w", &fs.PathError{Op: "open", Path: name, Err: err})
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return buf[:0], false, fmt.Errorf("scan: %w", &fs.PathError{Op: "stat", Path: name, Err: err})
	}
	if st.Size > max {
		return buf[:0], false, nil
	}
	if want := int(st.Size) + 1; cap(buf) < want {
		buf = make([]byte, 0, want+512)
	}
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := syscall.Read(fd, buf[len(buf):cap(buf)])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return buf[:0], false, fmt.Errorf("scan: %w", &fs.PathError{Op: "read", Path: name, Err: err})
		}
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > max {
			return buf[:0], false, nil
		}
		// A regular file read short of its size ends there: spare the
		// read that would return 0.
		if n == 0 || int64(len(buf)) == st.Size && st.Mode&syscall.S_IFMT == syscall.S_IFREG {
			return buf, true, nil
		}
	}
}
