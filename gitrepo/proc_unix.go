//go:build unix

package gitrepo

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
)

// configureProcess runs cmd in its own process group and makes context
// cancellation send SIGTERM to the whole group (git, pack-objects, hooks), so
// that git removes its lock files and quarantine before exiting; exec's
// WaitDelay then kills what is left.
func configureProcess(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}
}
