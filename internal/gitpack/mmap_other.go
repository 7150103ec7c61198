//go:build !unix

package gitpack

import "os"

// mapFile reads the file at path.
func mapFile(path string) ([]byte, func() error, error) {
	data, err := os.ReadFile(path)
	return data, func() error { return nil }, err
}
