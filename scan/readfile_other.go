//go:build !linux

package scan

import (
	"fmt"
	"io"
	"os"
)

// readFile reads name into buf (grown as needed) unless it is larger than
// max, in which case ok is false.
func readFile(name string, max int64, buf []byte) (data []byte, ok bool, err error) {
	f, err := os.Open(name)
	if err != nil {
		return buf[:0], false, fmt.Errorf("scan: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return buf[:0], false, fmt.Errorf("scan: %w", err)
	}
	if st.Size() > max {
		return buf[:0], false, nil
	}
	if want := int(st.Size()) + 512; cap(buf) < want {
		buf = make([]byte, 0, want)
	}
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > max {
			return buf[:0], false, nil
		}
		if err == io.EOF {
			return buf, true, nil
		}
		if err != nil {
			return buf[:0], false, fmt.Errorf("scan: reading %s: %w", name, err)
		}
	}
}
