package embedded

import "syscall"

// childProcAttr makes the kernel stop a child server when kiln itself
// dies, even by SIGKILL, so no redis-server is left behind holding its
// port and memory. (The signal follows the OS thread that started the
// child; Go keeps its threads unless a goroutine exits while locked to
// one, which Kiln never does.)
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
