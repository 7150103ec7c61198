//go:build !unix

package gitpack

import "os"

// mapFile reads the file at path.
func mapFile(path string) ([]byte, func() error, func(lo, hi int), error) {
	data, err := os.ReadFile(path)
	return data, func() error { return nil }, func(int, int) {}, err
}
