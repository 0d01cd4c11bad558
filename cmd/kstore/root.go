package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"sigs.k8s.io/yaml"

	"github.com/kstore/kstore/messages"
)

// globals is what every command shares: the process's standard streams and environment (passed
// in, so tests can run commands in process) and the flags of the root command.
type globals struct {
	in          io.Reader
	out, errw   io.Writer
	getenv      func(string) string
	stopSignals func() // restores default signal handling: a second SIGINT then ends the process
	logLevel    string
	documents   int // YAML documents written to stdout, for the "---" lines between them
}

// line writes b and a newline to stdout: one result per line.
func (g *globals) line(b []byte) {
	_, _ = g.out.Write(append(b, '\n'))
}

// Output formats, the values of -o.
const (
	outputLine = ""     // the default: one JSON line per result
	outputJSON = "json" // JSON on one line: the Kubernetes form of a list, the object of a write
	outputYAML = "yaml" // what json prints, as YAML documents
	outputName = "name" // one REF per object
)

// parseOutput checks -o.
func parseOutput(s string) (string, error) {
	switch s {
	case outputLine, outputJSON, outputYAML, outputName:
		return s, nil
	}
	return "", invalid("--output %q is not a format: give json, yaml or name, or leave -o out for one JSON line per result", s)
}

// yamlDocument writes the JSON j to stdout as a YAML document, after a "---" line when a
// document was written before it: a stream apply -f - reads back.
func (g *globals) yamlDocument(j []byte) error {
	y, err := yaml.JSONToYAML(j)
	if err != nil {
		return messages.Errorf(messages.StatusReason_INTERNAL, "cannot print the result as YAML: %v", err)
	}
	g.document(y)
	return nil
}

// document writes the YAML document y, with a "---" line before every document but the first.
func (g *globals) document(y []byte) {
	if g.documents > 0 {
		_, _ = io.WriteString(g.out, "---\n")
	}
	g.documents++
	_, _ = g.out.Write(y)
}

// object prints an object as stored (JSON), key being the one it is stored at, in format.
func (g *globals) object(format string, key *messages.ResourceKey, obj []byte) error {
	switch format {
	case outputYAML:
		return g.yamlDocument(obj)
	case outputName:
		g.line([]byte(formatRef(key)))
	default:
		g.line(obj)
	}
	return nil
}

// result prints a write's result, key being the written object's, in format.
func (g *globals) result(format string, key *messages.ResourceKey, res *messages.CommandResult) error {
	switch format {
	case outputJSON:
		g.line(messages.MarshalResultJSON(res, true))
	case outputYAML:
		y := fmt.Appendf(nil, "op: %s\nresource_version: %d\n", messages.OpJSON(res.GetOp()), res.GetResourceVersion())
		if obj := res.GetObject(); len(obj) > 0 {
			o, err := yaml.JSONToYAML(obj)
			if err != nil {
				return messages.Errorf(messages.StatusReason_INTERNAL, "cannot print the object as YAML: %v", err)
			}
			// The object's lines indented under "object:", so that op comes first.
			y = append(y, "object:\n"...)
			for _, l := range bytes.SplitAfter(bytes.TrimSuffix(o, []byte("\n")), []byte("\n")) {
				y = append(append(y, "  "...), l...)
			}
			y = append(y, '\n')
		}
		g.document(y)
	case outputName:
		g.line([]byte(formatRef(key)))
	default:
		g.line(messages.MarshalResultJSON(res, false))
	}
	return nil
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

Output: one JSON line per result on stdout. -o picks another form on get, list, the writes
(apply, create, replace, patch, delete) and do:
  -o json   get: the object's line, as without -o. list: a Kubernetes List on one line,
            {"apiVersion":"v1","kind":"List","metadata":{"resourceVersion":"42"},"items":[...]}.
            Writes and do: the result line with the stored object in it.
  -o yaml   what -o json prints, as YAML: one document per result, "---" between them. What
            get and list print this way, kstore apply -f - reads back (NoOp when unchanged).
  -o name   the REF of each object, such as Pod.v1/web, one per line: the namespace is left
            out, as in kubectl's -o name, so give -n again when passing it to get or delete.
Errors go to stderr as
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
  kstore status
  kstore version`,
		// report prints errors, and usage only when the command line is wrong.
		SilenceErrors: true,
		SilenceUsage:  true,
		// --version prints what `kstore version` prints without a node.
		Version: string(marshalJSON(clientVersion())),
		PersistentPreRunE: runE(func(*cobra.Command, []string) error {
			_, err := g.level()
			return err
		}),
	}
	root.SetVersionTemplate("{{.Version}}\n")
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
		newSnapshotCmd(g),
		newDoCmd(g),
		newWatchCmd(g),
		newControllersCmd(g),
		newVersionCmd(g),
		newCertsCmd(g),
	)
	return root
}
