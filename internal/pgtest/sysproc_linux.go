package pgtest

import "syscall"

const canSwitchUser = true

// sysProcAttr runs a server process as r, and has the kernel stop it
// (immediate shutdown) if the test binary dies without calling Stop.
func (r *runAs) sysProcAttr() *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Pdeathsig: syscall.SIGQUIT}
	if r.switched {
		a.Credential = &syscall.Credential{Uid: r.uid, Gid: r.gid, Groups: []uint32{}}
	}
	return a
}
