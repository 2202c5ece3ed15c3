//go:build unix

package snapshot

import (
	"os/exec"
	"syscall"
	"time"
)

// sysTime returns the system CPU time this process has used. The engine
// benchmark reports it per phase next to cp's, because on its machine the
// kernel's cost of finding memory for the page cache swings several times
// between runs and explains most of the spread of the ratios.
func sysTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Stime.Nano())
}

// childSysTime returns the system CPU time of a finished command and the
// children it waited for.
func childSysTime(cmd *exec.Cmd) time.Duration {
	if cmd.ProcessState == nil {
		return 0
	}
	return cmd.ProcessState.SystemTime()
}
