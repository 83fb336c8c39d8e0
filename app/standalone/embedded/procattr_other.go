//go:build !linux

package embedded

import "syscall"

// childProcAttr: outside Linux there is no parent-death signal; a child
// server outlives a kiln that is killed with SIGKILL.
func childProcAttr() *syscall.SysProcAttr { return nil }
