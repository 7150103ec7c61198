//go:build !linux

package pgtest

import "syscall"

const canSwitchUser = false

// sysProcAttr returns nil: the server runs as the current user.
func (r *runAs) sysProcAttr() *syscall.SysProcAttr { return nil }
