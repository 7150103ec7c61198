//go:build !unix

package gitrepo

import "os/exec"

// configureProcess keeps exec's default cancellation (kill the process).
func configureProcess(cmd *exec.Cmd) {}
