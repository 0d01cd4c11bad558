package main

import (
	"io"
	"strings"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// globals is what every command shares: the process's standard streams and environment (passed
// in, so tests can run commands in process) and the flags of the root command.
type globals struct {
	in          io.Reader
	out, errw   io.Writer
	getenv      func(string) string
	stopSignals func() // restores default signal handling: a second SIGINT then ends the process
	logLevel    string
}

// line writes b and a newline to stdout: one result per line.
func (g *globals) line(b []byte) {
	_, _ = g.out.Write(append(b, '\n'))
}

// level parses --log-level.
func (g *globals) level() (zapcore.Level, error) {
	switch strings.ToLower(g.logLevel) {
	case "debug":
		return zap.DebugLevel, nil
	case "info":
		return zap.InfoLevel, nil
	case "warn":
		return zap.WarnLevel, nil
	case "error":
		return zap.ErrorLevel, nil
	}
	return 0, invalid("--log-level %q is not a level: use debug, info, warn or error", g.logLevel)
}

const rootLong = `kstore is a replicated store for Kubernetes-style objects.

'kstore serve' runs a node. Every other command is a client of a running node: it starts a
small actor system of its own (protoactor remote), sends one request per object or command,
prints each result and exits.

Objects are named by a REF: KIND.VERSION[.GROUP]/NAME, such as Pod.v1/web,
Deployment.v1.apps/web or Ingress.v1.networking.k8s.io/web, plus -n NAMESPACE for a namespaced
object (without -n the namespace is empty: a cluster-scoped object). A TYPE is
KIND.VERSION[.GROUP]. Kinds are case-sensitive, as in the objects' "kind" field.

Output: one JSON line per result on stdout. Errors go to stderr as
  Error (Reason): sentence
with the Kubernetes status reason (NotFound, AlreadyExists, Conflict, Gone, Invalid, TooLarge,
Unavailable, Timeout, InternalError). Exit status: 0 success; 1 an error with a reason (the node
refused the request, or kstore refused it before sending for the reason the node would give),
or serve failed; 2 the command line could not be parsed.

Client commands find the node in --endpoints, else in $KSTORE_ENDPOINTS, else at
127.0.0.1:7450.`

func newRootCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "kstore",
		Short: "A replicated store for Kubernetes-style objects",
		Long:  rootLong,
		Example: `  kstore serve &
  kstore apply -f pod.yaml
  kstore get Pod.v1/web -n default
  kstore list Pod.v1 -n default -l app=web
  kstore status`,
		// report prints errors, and usage only when the command line is wrong.
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: runE(func(*cobra.Command, []string) error {
			_, err := g.level()
			return err
		}),
	}
	root.SetIn(g.in)
	root.SetOut(g.out)
	root.SetErr(g.errw)
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info",
		"log level: debug, info, warn or error. serve logs JSON to stderr at this level; client commands log nothing unless debug")
	root.AddCommand(
		newServeCmd(g),
		newWriteCmd(g, applyCmd),
		newWriteCmd(g, createCmd),
		newWriteCmd(g, replaceCmd),
		newPatchCmd(g),
		newDeleteCmd(g),
		newGetCmd(g),
		newListCmd(g),
		newStatusCmd(g),
		newMemberCmd(g),
		newHashKVCmd(g),
		newDoCmd(g),
		newWatchCmd(g),
		newControllersCmd(g),
	)
	return root
}
