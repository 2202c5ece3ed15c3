//go:build !unix

package snapshot

import (
	"os/exec"
	"time"
)

func sysTime() time.Duration { return 0 }

func childSysTime(cmd *exec.Cmd) time.Duration { return 0 }
