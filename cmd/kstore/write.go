package main

import (
	"bufio"
	"bytes"
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
	f.StringVarP(&o.output, "output", "o", "",
		`"json" adds the stored object to each result line: {"op":..,"resource_version":..,"object":{..}}`)
}

// parse checks the flags and returns the reason and whether to print objects.
func (o *writeOptions) parse() (messages.Reason, bool, error) {
	reason, err := messages.ParseReason(o.reason)
	if err != nil {
		return 0, false, prefixed("--reason", err)
	}
	switch o.output {
	case "":
		return reason, false, nil
	case "json":
		return reason, true, nil
	}
	return 0, false, invalid("--output %q is not a format: leave it out for {\"op\":..,\"resource_version\":..}, or give json to add the object", o.output)
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
The first refusal stops the command (exit 1): the objects before it were written, the ones
after it were not sent.`

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
			reason, withObject, err := o.parse()
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
				g.line(messages.MarshalResultJSON(res, withObject))
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
Prints {"op":"Patched","resource_version":N}, or NoOp when the patch changes nothing.`,
		Example: `  kstore patch Deployment.v1.apps/web -n default -p '{"spec":{"replicas":3}}'
  kstore patch Pod.v1/web -n default --type json -p '[{"op":"add","path":"/metadata/labels/tier","value":"front"}]'
  kstore patch Node.v1/node-1 --resource-version 41 -p @taints.json`,
		Args: cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			reason, withObject, err := o.parse()
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
			g.line(messages.MarshalResultJSON(res, withObject))
			return nil
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
		o writeOptions
		r refOptions
	)
	cmd := &cobra.Command{
		Use:   "delete REF",
		Short: "Delete an object",
		Long: `Delete an object. REF is KIND.VERSION[.GROUP]/NAME. Deleting an object that does not
exist is not an error: it prints {"op":"NoOp",...}. With --resource-version, the stored object's
resourceVersion must be that one, else Conflict. Prints {"op":"Deleted","resource_version":N},
N being the revision of the delete; -o json adds the object as it was last stored.`,
		Example: `  kstore delete Pod.v1/web -n default
  kstore delete Namespace.v1/staging --resource-version 57`,
		Args: cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			reason, withObject, err := o.parse()
			if err != nil {
				return err
			}
			key, err := parseRef(args[0], r.namespace)
			if err != nil {
				return err
			}
			c, err := o.client.connect(cmd, g)
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := c.client.Delete(cmd.Context(), key, r.resourceVersion, reason)
			if err != nil {
				return err
			}
			g.line(messages.MarshalResultJSON(res, withObject))
			return nil
		}),
	}
	cmd.Flags().Uint64Var(&r.resourceVersion, "resource-version", 0, "precondition: the stored object's resourceVersion must be this one, else Conflict (0: none)")
	addNamespaceFlag(cmd, &r.namespace, refNamespaceHelp)
	addWriteFlags(cmd, &o)
	return cmd
}

func newDoCmd(g *globals) *cobra.Command {
	var (
		co     clientOptions
		file   string
		output string
	)
	cmd := &cobra.Command{
		Use:   "do -f FILE|-",
		Short: "Send commands in kstore's JSON wire form, one per line",
		Long: `Send commands written in kstore's JSON wire form, one per line, and print one result
line per command as its result arrives. A line looks like
  {"kind":"put","key":{"group":"","version":"v1","kind":"Pod","namespace":"default","name":"web"},"value":{...},"reason":"operator"}
kind is put, create, update, patch or delete; a patch has "patch" and may have "patch_type"
("merge", the default, or "json"); patch and delete may have "resource_version" (a
precondition); "request_id" is echoed in the node's logs. Empty lines and lines starting with #
are skipped.

Lines are read and sent one at a time, so -f - can be fed by a running program. The node checks
each command; the first line that is not a command, or the first refusal, stops kstore do
(exit 1): the commands before it were applied, the ones after it were not sent.`,
		Example: `  kstore do -f commands.jsonl
  printf '%s\n' '{"kind":"delete","key":{"group":"","version":"v1","kind":"Pod","namespace":"default","name":"web"},"reason":"garbage_collector"}' | kstore do -f -`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			withObject := false
			switch output {
			case "":
			case "json":
				withObject = true
			default:
				return invalid("--output %q is not a format: leave it out, or give json to add the object", output)
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
			return doLines(cmd, g, c, bufio.NewReaderSize(in, 64<<10), name, withObject)
		}),
	}
	cmd.Flags().StringVarP(&file, "filename", "f", "", "file of commands, one per line, - for stdin")
	_ = cmd.MarkFlagRequired("filename")
	cmd.Flags().StringVarP(&output, "output", "o", "", `"json" adds the stored object to each result line`)
	addClientFlags(cmd, &co, true)
	return cmd
}

func doLines(cmd *cobra.Command, g *globals, c *conn, in *bufio.Reader, name string, withObject bool) error {
	for n := 1; ; n++ {
		// ReadBytes, not a Scanner: a line holds an object of up to 1.5 MiB, and more as JSON.
		line, readErr := in.ReadBytes('\n')
		if readErr != nil && !errors.Is(readErr, io.EOF) {
			return invalid("cannot read %s: %v", name, readErr)
		}
		if text := bytes.TrimSpace(line); len(text) > 0 && text[0] != '#' {
			command, err := messages.UnmarshalCommandJSON(text)
			if err != nil {
				return prefixed(fmt.Sprintf("%s, line %d", name, n), err)
			}
			res, err := c.client.Do(cmd.Context(), command)
			if err != nil {
				return err
			}
			g.line(messages.MarshalResultJSON(res, withObject))
		}
		if readErr != nil {
			return nil
		}
	}
}
