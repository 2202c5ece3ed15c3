// Command snapdeck is the snapdeck console: a self-hosted console for SQLite
// databases with snapshots. See README.md for its commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=X.Y.Z".
var version = "0.1.0-dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "snapdeck:", err)
		}
		os.Exit(exitCode(err))
	}
}

// exitCode is 2 for usage errors, a sub-command's own code when it set one
// (push-to-cloud's are in its usage), and 1 for everything else.
func exitCode(err error) int {
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	var ue usageError
	if errors.As(err, &ue) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

// usageError is a mistake in how the command was called.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// run is the whole program: it picks the sub-command and runs it until it
// ends or ctx is cancelled. Tests call it with their own arguments and
// environment.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	name := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		name, args = args[0], args[1:]
	}
	switch name {
	case "serve":
		cmd := &serveCommand{getenv: getenv, stdout: stdout, stderr: stderr}
		if err := cmd.parse(args); err != nil {
			return err
		}
		return cmd.Run(ctx)
	case "version":
		fmt.Fprintf(stdout, "snapdeck %s (SQLite %s)\n", version, sqliteVersion())
		return nil
	case "push-to-cloud":
		cmd := &pushCommand{getenv: getenv, stdout: stdout, stderr: stderr}
		if err := cmd.parse(args); err != nil {
			return err
		}
		return cmd.Run(ctx)
	case "dump":
		return (&dumpCommand{stdout: stdout, stderr: stderr}).Run(ctx, args)
	case "admin":
		cmd := &adminCommand{getenv: getenv, stdout: stdout, stderr: stderr}
		if err := cmd.parse(args); err != nil {
			return err
		}
		return cmd.Run(ctx)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		return usageError{fmt.Sprintf("unknown command %q\n\n%s", name, usage)}
	}
}

const usage = `Usage:
  snapdeck [serve] [--addr 127.0.0.1:8080] [--data ./data] [--max-import-size 4GiB]
  snapdeck push-to-cloud --url URL --database ID [--overwrite] FILE
  snapdeck dump inspect|verify|extract FILE
  snapdeck admin reset-password [--data ./data] EMAIL
  snapdeck version

Every flag can also be set as SNAPDECK_<FLAG> (upper case, dashes as
underscores), e.g. SNAPDECK_ADDR=0.0.0.0:8080. Run 'snapdeck serve -h' for all
flags.
`
