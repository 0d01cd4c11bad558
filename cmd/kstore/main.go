// Command kstore runs a kstore node (kstore serve) and is the client of one (every other
// command: a protoactor remote client that starts a small actor system of its own).
//
// The contract scripts rely on:
//
//   - stdout holds results only: by default one JSON line per result; -o yaml prints YAML
//     documents, -o name one REF per line.
//   - stderr holds errors as "Error (Reason): sentence", Reason being the Kubernetes status
//     reason (NotFound, AlreadyExists, Conflict, Gone, Invalid, TooLarge, Unavailable, Timeout,
//     InternalError). Errors found before anything is sent (an unreadable file, bad YAML, a
//     malformed REF) have the reason the node would have given: Invalid or TooLarge.
//   - Exit status 0: success. 1: an "Error (Reason): ..." line, or `serve` failed ("Error: ...").
//     2: the command line could not be parsed (unknown command or flag, wrong number of
//     arguments, a missing required flag): "Error: ..." and a pointer to --help.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kstore/kstore/messages"
)

// Exit statuses.
const (
	exitOK     = 0
	exitFailed = 1 // the request failed, or the node did
	exitUsage  = 2 // the command line is wrong
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

// run executes one kstore command line and returns the exit status. SIGINT and SIGTERM cancel
// the command's context: a client gives up its request (and closes its actor system), serve
// stops the node.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	g := &globals{in: stdin, out: stdout, errw: stderr, getenv: getenv, stopSignals: stopSignals}
	root := newRootCmd(g)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	return report(stderr, cmd, err)
}

// failure marks an error a command's run returned, as opposed to one cobra found while parsing
// the command line.
type failure struct{ err error }

func (f failure) Error() string { return f.err.Error() }
func (f failure) Unwrap() error { return f.err }

// runE adapts a command's run function so that report can tell its errors from usage errors.
func runE(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := fn(cmd, args); err != nil {
			return failure{err}
		}
		return nil
	}
}

// report prints err once, as the package doc describes, and returns the exit status.
func report(w io.Writer, cmd *cobra.Command, err error) int {
	var f failure
	if !errors.As(err, &f) {
		fmt.Fprintf(w, "Error: %v\nRun '%s --help' for usage.\n", err, cmd.CommandPath())
		return exitUsage
	}
	var e *messages.Error
	if errors.As(f.err, &e) {
		fmt.Fprintf(w, "Error (%s): %s\n", messages.ReasonName(e.Reason), e.Message)
	} else {
		fmt.Fprintf(w, "Error: %v\n", f.err)
	}
	return exitFailed
}

// invalid is a local refusal with the reason the node would give.
func invalid(format string, args ...any) error {
	return messages.Errorf(messages.StatusReason_INVALID, format, args...)
}
