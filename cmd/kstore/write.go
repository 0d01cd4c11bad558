package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/kstore/kstore/messages"
)

// writeOptions are the flags every write shares.
type writeOptions struct {
	client clientOptions
	reason string
	output string
}

func addWriteFlags(cmd *cobra.Command, o *writeOptions) {
	addClientFlags(cmd, &o.client, true)
	f := cmd.Flags()
	f.StringVar(&o.reason, "reason", "operator",
		"why the write is made, for the audit trail: operator, controller, garbage_collector, admission or scheduler")
	f.StringVarP(&o.output, "output", "o", "", writeOutputHelp)
}

const writeOutputHelp = `json adds the stored object to each result line: {"op":..,"resource_version":..,"object":{..}}; ` +
	`yaml prints that as YAML documents; name prints each object's REF, such as Pod.v1/web`

// parse checks the flags and returns the reason and the output format.
func (o *writeOptions) parse() (messages.Reason, string, error) {
	reason, err := messages.ParseReason(o.reason)
	if err != nil {
		return 0, "", prefixed("--reason", err)
	}
	format, err := parseOutput(o.output)
	if err != nil {
		return 0, "", err
	}
	return reason, format, nil
}

// fileWrite describes apply, create and replace: one command per object of a file.
type fileWrite struct {
	use, short, long, example string
	kind                      messages.CommandKind
}

const filesHelp = `Files are JSON (when they start with { or [) or YAML, and may hold several objects: YAML
documents separated by "---" lines, JSON objects one after another, or a List
({"kind":"List","items":[...]}, also PodList and the like); a JSON array is refused. Every object of every file is read and checked first, so a file with a bad
object anywhere is refused as a whole (Invalid or TooLarge) before anything is sent. Then one
command is sent per object, in order, and one result line printed per object:
  {"op":"Created","resource_version":42}
(-o json adds the stored object to it, -o yaml prints that as YAML, -o name the object's REF.)
The first refusal stops the command (exit 1): the objects before it were written, the ones
after it were not sent. A file may be what kstore get or list printed with -o yaml or -o json.`

var (
	applyCmd = fileWrite{
		use:   "apply",
		short: "Create or replace objects (put)",
		long: `Create each object, or replace it when it exists: an unconditional put, keyed by the
object's apiVersion, kind, metadata.namespace and metadata.name. The op is Created, Replaced, or
NoOp when the stored object already has this content.

` + filesHelp,
		example: `  kstore apply -f pod.yaml
  kstore apply -f deployment.json -f service.yaml --reason controller
  cat objects.yaml | kstore apply -f -`,
		kind: messages.CommandKind_PUT,
	}
	createCmd = fileWrite{
		use:   "create",
		short: "Create objects; AlreadyExists when one exists",
		long: `Create each object. An object that exists already is refused with AlreadyExists.
metadata.resourceVersion must not be set.

` + filesHelp,
		example: `  kstore create -f pod.yaml
  kstore create -f - <<'EOF'
  apiVersion: v1
  kind: ConfigMap
  metadata: {name: settings, namespace: default}
  data: {mode: fast}
  EOF`,
		kind: messages.CommandKind_CREATE,
	}
	replaceCmd = fileWrite{
		use:   "replace",
		short: "Replace existing objects (update), with optimistic concurrency",
		long: `Replace each object, which must exist (NotFound otherwise). When the object carries
metadata.resourceVersion, the stored object's must be the same, else Conflict: read, change and
replace again. Without it the replace is unconditional.

` + filesHelp,
		example: `  kstore get Pod.v1/web -n default > web.json   # edit web.json, keep its resourceVersion
  kstore replace -f web.json`,
		kind: messages.CommandKind_UPDATE,
	}
)

func newWriteCmd(g *globals, w fileWrite) *cobra.Command {
	var (
		o     writeOptions
		files []string
	)
	cmd := &cobra.Command{
		Use:     w.use + " -f FILE|-",
		Short:   w.short,
		Long:    w.long,
		Example: w.example,
		Args:    cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			reason, format, err := o.parse()
			if err != nil {
				return err
			}
			inputs, err := readInputs(files, g.in)
			if err != nil {
				return err
			}
			c, err := o.client.connect(cmd, g)
			if err != nil {
				return err
			}
			defer c.Close()
			for _, in := range inputs {
				res, err := c.client.Do(cmd.Context(), &messages.Command{Kind: w.kind, Key: in.key, Value: in.value, Reason: reason})
				if err != nil {
					return err
				}
				if err := g.result(format, in.key, res); err != nil {
					return err
				}
			}
			return nil
		}),
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "file to read the objects from, - for stdin; may be given several times")
	_ = cmd.MarkFlagRequired("filename")
	addWriteFlags(cmd, &o)
	return cmd
}

// refOptions are the flags of the commands that take a REF.
type refOptions struct {
	namespace       string
	resourceVersion uint64
}

func addNamespaceFlag(cmd *cobra.Command, ns *string, usage string) {
	cmd.Flags().StringVarP(ns, "namespace", "n", "", usage)
}

const refNamespaceHelp = "namespace of a namespaced object; without it the namespace is empty (a cluster-scoped object)"

func newPatchCmd(g *globals) *cobra.Command {
	var (
		o         writeOptions
		r         refOptions
		patchType string
		patch     string
	)
	cmd := &cobra.Command{
		Use:   "patch REF --type merge|json -p PATCH",
		Short: "Patch an object with a JSON merge patch or a JSON patch",
		Long: `Patch an existing object (NotFound otherwise). REF is KIND.VERSION[.GROUP]/NAME.

--type merge (the default) takes an RFC 7386 JSON merge patch: an object whose fields replace
the stored ones, null deleting a field, arrays replaced whole. --type json takes an RFC 6902
JSON patch: an array of operations (add, remove, replace, move, copy, test).

-p gives the patch itself, or @FILE to read it from a file (@- for stdin). With
--resource-version, the stored object's resourceVersion must be that one, else Conflict. A
patch that would change the object's apiVersion, kind, namespace or name is refused (Invalid).
Prints {"op":"Patched","resource_version":N}, or NoOp when the patch changes nothing; -o json
adds the object as stored after the patch, -o yaml prints that as YAML, -o name the REF.`,
		Example: `  kstore patch Deployment.v1.apps/web -n default -p '{"spec":{"replicas":3}}'
  kstore patch Pod.v1/web -n default --type json -p '[{"op":"add","path":"/metadata/labels/tier","value":"front"}]'
  kstore patch Node.v1/node-1 --resource-version 41 -p @taints.json`,
		Args: cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			reason, format, err := o.parse()
			if err != nil {
				return err
			}
			key, err := parseRef(args[0], r.namespace)
			if err != nil {
				return err
			}
			typ, err := messages.ParsePatchType(patchType)
			if err != nil {
				return prefixed("--type", err)
			}
			body, err := readPatch(patch, g.in)
			if err != nil {
				return err
			}
			c, err := o.client.connect(cmd, g)
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := c.client.Patch(cmd.Context(), key, typ, body, r.resourceVersion, reason)
			if err != nil {
				return err
			}
			return g.result(format, key, res)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&patchType, "type", "merge", "patch format: merge (RFC 7386 JSON merge patch) or json (RFC 6902 JSON patch)")
	f.StringVarP(&patch, "patch", "p", "", "the patch, or @FILE to read it from FILE (@- for stdin)")
	_ = cmd.MarkFlagRequired("patch")
	f.Uint64Var(&r.resourceVersion, "resource-version", 0, "precondition: the stored object's resourceVersion must be this one, else Conflict (0: none)")
	addNamespaceFlag(cmd, &r.namespace, refNamespaceHelp)
	addWriteFlags(cmd, &o)
	return cmd
}

// readPatch returns -p's patch: the text itself, or the content of @FILE (@- is stdin).
func readPatch(p string, stdin io.Reader) ([]byte, error) {
	var body []byte
	switch {
	case p == "@-":
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, invalid("cannot read the patch from stdin: %v", err)
		}
		body = b
	case len(p) > 1 && p[0] == '@':
		b, err := os.ReadFile(p[1:])
		if err != nil {
			return nil, invalid("cannot read the patch from %s: %v", p[1:], unwrapPath(err))
		}
		body = b
	default:
		body = []byte(p)
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, invalid(`the patch is empty: give -p '{"metadata":{"labels":{"a":"b"}}}' (merge) or -p '[{"op":...}]' (json)`)
	}
	return body, nil
}

func newDeleteCmd(g *globals) *cobra.Command {
	var (
		o     writeOptions
		r     refOptions
		files []string
	)
	cmd := &cobra.Command{
		Use:   "delete (REF | -f FILE|-)",
		Short: "Delete an object, or the objects a file names",
		Long: `Delete an object. REF is KIND.VERSION[.GROUP]/NAME, with -n NAMESPACE for a namespaced
object. Deleting an object that does not exist is not an error: it prints {"op":"NoOp",...}
(without -n a cluster-scoped object is meant, so a namespaced one is left alone: check the
REF when you expected Deleted). With --resource-version, the stored object's resourceVersion
must be that one, else Conflict. Prints {"op":"Deleted","resource_version":N}, N being the
revision of the delete; -o json adds the object as it was last stored, -o yaml prints that as
YAML, -o name prints the REF.

-f deletes instead the objects the files name (by apiVersion, kind, metadata.namespace and
metadata.name; the rest of each object, metadata.resourceVersion included, is not read), one
result each, in the files' order: the manifests an apply was given, or what get and list print
with -o yaml. The files are read as apply reads them, all of them before anything is sent; the
first refusal stops the command (exit 1).`,
		Example: `  kstore delete Pod.v1/web -n default
  kstore delete Namespace.v1/staging --resource-version 57
  kstore delete -f web.yaml
  kstore list Pod.v1 -n demo -l app=web -o yaml | kstore delete -f -`,
		Args: refOrFiles(&files, "deletes"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			reason, format, err := o.parse()
			if err != nil {
				return err
			}
			keys, err := targetKeys(args, files, g.in, func(ref string) (*messages.ResourceKey, error) { return parseRef(ref, r.namespace) })
			if err != nil {
				return err
			}
			c, err := o.client.connect(cmd, g)
			if err != nil {
				return err
			}
			defer c.Close()
			for _, key := range keys {
				res, err := c.client.Delete(cmd.Context(), key, r.resourceVersion, reason)
				if err != nil {
					return err
				}
				if err := g.result(format, key, res); err != nil {
					return err
				}
			}
			return nil
		}),
	}
	f := cmd.Flags()
	f.Uint64Var(&r.resourceVersion, "resource-version", 0, "precondition: the stored object's resourceVersion must be this one, else Conflict (0: none); not with -f")
	f.StringArrayVarP(&files, "filename", "f", nil, "delete the objects this file names, - for stdin; may be given several times; not with a REF, -n or --resource-version")
	addNamespaceFlag(cmd, &r.namespace, refNamespaceHelp)
	cmd.MarkFlagsMutuallyExclusive("filename", "namespace")
	cmd.MarkFlagsMutuallyExclusive("filename", "resource-version")
	addWriteFlags(cmd, &o)
	return cmd
}

func newDoCmd(g *globals) *cobra.Command {
	var (
		co     clientOptions
		file   string
		output string
		reason string
	)
	cmd := &cobra.Command{
		Use:   "do -f FILE|-",
		Short: "Send commands in kstore's JSON wire form, one per line",
		Long: `Send commands written in kstore's JSON wire form, one per line, and print one result
line per command as its result arrives (-o json adds the object, -o yaml prints that as YAML,
-o name the REF of the command's key). A line looks like
  {"kind":"put","key":{"group":"","version":"v1","kind":"Pod","namespace":"default","name":"web"},"value":{...},"reason":"operator"}
kind is put, create, update, patch or delete; a patch has "patch" and may have "patch_type"
("merge", the default, or "json"); patch and delete may have "resource_version" (a
precondition); "request_id" is echoed in the node's logs. A line without "reason" takes
--reason's (operator unless given), as every other command does. Empty lines and lines starting
with # are skipped.

Lines are read and sent one at a time, so -f - can be fed by a running program. The node checks
each command; the first line that is not a command, or the first refusal, stops kstore do
(exit 1): the commands before it were applied, the ones after it were not sent.`,
		Example: `  kstore do -f commands.jsonl
  printf '%s\n' '{"kind":"delete","key":{"group":"","version":"v1","kind":"Pod","namespace":"default","name":"web"},"reason":"garbage_collector"}' | kstore do -f -
  kstore do -f commands.jsonl --reason controller   # for the lines without a reason`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			format, err := parseOutput(output)
			if err != nil {
				return err
			}
			if _, err := messages.ParseReason(reason); err != nil {
				return prefixed("--reason", err)
			}
			var in io.Reader = g.in
			name := "stdin"
			if file != "-" {
				f, err := os.Open(file)
				if err != nil {
					return invalid("cannot read %s: %v", file, unwrapPath(err))
				}
				defer f.Close()
				in, name = f, file
			}
			c, err := co.connect(cmd, g)
			if err != nil {
				return err
			}
			defer c.Close()
			return doLines(cmd, g, c, bufio.NewReaderSize(in, 64<<10), name, reason, format)
		}),
	}
	cmd.Flags().StringVarP(&file, "filename", "f", "", "file of commands, one per line, - for stdin")
	_ = cmd.MarkFlagRequired("filename")
	cmd.Flags().StringVarP(&output, "output", "o", "", writeOutputHelp)
	cmd.Flags().StringVar(&reason, "reason", "operator",
		`the reason of the lines that give no "reason": operator, controller, garbage_collector, admission or scheduler`)
	addClientFlags(cmd, &co, true)
	return cmd
}

func doLines(cmd *cobra.Command, g *globals, c *conn, in *bufio.Reader, name, reason, format string) error {
	for n := 1; ; n++ {
		// ReadBytes, not a Scanner: a line holds an object of up to 1.5 MiB, and more as JSON.
		line, readErr := in.ReadBytes('\n')
		if readErr != nil && !errors.Is(readErr, io.EOF) {
			return invalid("cannot read %s: %v", name, readErr)
		}
		if text := bytes.TrimSpace(line); len(text) > 0 && text[0] != '#' {
			command, err := messages.UnmarshalCommandJSON(withReason(text, reason))
			if err != nil {
				return prefixed(fmt.Sprintf("%s, line %d", name, n), err)
			}
			res, err := c.client.Do(cmd.Context(), command)
			if err != nil {
				return err
			}
			if err := g.result(format, command.GetKey(), res); err != nil {
				return err
			}
		}
		if readErr != nil {
			return nil
		}
	}
}

// withReason returns the command line with "reason" set to reason when it has none. A line that
// is not a JSON object is returned as it is, for UnmarshalCommandJSON to refuse.
func withReason(line []byte, reason string) []byte {
	var probe struct {
		Reason json.RawMessage `json:"reason"`
	}
	if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &probe) != nil || probe.Reason != nil {
		return line
	}
	field := fmt.Appendf(nil, `{"reason":%q`, reason)
	if rest := bytes.TrimSpace(line[1:]); len(rest) > 0 && rest[0] != '}' {
		field = append(field, ',')
	}
	return append(field, line[1:]...)
}
