//go:build !linux

package gitrepo

// renameNoReplace renames oldpath to newpath, failing with an error wrapping
// os.ErrExist if newpath exists (checked, then renamed: not atomic here).
func renameNoReplace(oldpath, newpath string) error { return renameCheck(oldpath, newpath) }
