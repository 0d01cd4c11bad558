package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/kstore/kstore/catalogactor/object"
	"github.com/kstore/kstore/messages"
)

func newGetCmd(g *globals) *cobra.Command {
	var (
		co     clientOptions
		r      refOptions
		cf     consistencyFlag
		files  []string
		output string
	)
	cmd := &cobra.Command{
		Use:   "get (REF | -f FILE|-)",
		Short: "Print an object, or the objects a file names",
		Long: `Print an object as stored, as one JSON line. REF is KIND.VERSION[.GROUP]/NAME, with
-n NAMESPACE for a namespaced object: without -n the object looked for is cluster-scoped.
-f prints instead the objects the files name (by apiVersion, kind, metadata.namespace and
metadata.name; the rest of each object is not read), one result each, in the files' order. The
files are read as apply reads them (` + "`kstore apply --help`" + `); the first object not found
stops the command (exit 1) after the ones before it were printed.

-o json prints the same line; -o yaml the object as YAML (documents separated by "---" lines
with -f), which kstore apply -f - reads back; -o name its REF, such as Pod.v1/web, without the
namespace (give -n again to pass it to get or delete).

A NotFound says what may be wrong when it can tell: a kind spelled otherwise than Kubernetes
spells it (pod.v1, Deployment.v1 for Deployment.v1.apps), or a REF without -n whose name exists
in some namespaces (they are named) or whose kind is namespaced. To print the objects of a type,
use kstore list TYPE.

With --resource-version N the object is read as it was at revision N (NotFound when it did not
exist then; Gone when N is older than the history the node keeps; a revision the node has not
reached yet is waited for a few seconds, then Timeout).

Without --resource-version the read is linearizable: it sees every write acknowledged before it
began, whichever member took the write, because the member first confirms with the leader how
far the log is committed (Unavailable when no leader confirms it: a member cut off from the
quorum serves no linearizable read). --consistency serializable reads the member's own state
without asking: possibly stale, but it works on a member without a quorum.`,
		Example: `  kstore get Pod.v1/web -n default
  kstore get Namespace.v1/default -o yaml
  kstore get Deployment.v1.apps/web -n default --resource-version 41
  kstore get -f objects.yaml -o name
  kstore get Pod.v1/web -n default -o yaml > web.yaml   # edit it, then: kstore apply -f web.yaml`,
		Args: refOrFiles(&files, "prints"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			format, err := parseOutput(output)
			if err != nil {
				return err
			}
			keys, err := targetKeys(args, files, g.in, func(ref string) (*messages.ResourceKey, error) { return parseGetRef(ref, r.namespace) })
			if err != nil {
				return err
			}
			consistency, err := cf.parse()
			if err != nil {
				return err
			}
			c, err := co.connect(cmd, g)
			if err != nil {
				return err
			}
			defer c.Close()
			for _, key := range keys {
				req := &messages.GetRequest{Key: key, ResourceVersion: r.resourceVersion, Consistency: consistency}
				res, err := c.client.Read(cmd.Context(), req)
				if err != nil {
					if messages.IsNotFound(err) && len(files) == 0 {
						return explainNotFound(cmd.Context(), c, req, err)
					}
					return err
				}
				if err := g.object(format, key, res.GetObject()); err != nil {
					return err
				}
			}
			return nil
		}),
	}
	f := cmd.Flags()
	f.Uint64Var(&r.resourceVersion, "resource-version", 0, "read the object as it was at this revision (0: the newest)")
	f.StringArrayVarP(&files, "filename", "f", nil, "print the objects this file names, - for stdin; may be given several times; not with a REF or -n")
	f.StringVarP(&output, "output", "o", "", "json (the default line), yaml (the object as YAML, which apply -f reads back) or name (the REF, such as Pod.v1/web)")
	cf.add(cmd)
	addNamespaceFlag(cmd, &r.namespace, refNamespaceHelp)
	cmd.MarkFlagsMutuallyExclusive("filename", "namespace")
	addClientFlags(cmd, &co, false)
	return cmd
}

// parseGetRef is parseRef, with a pointer to kstore list for a TYPE given where a REF belongs.
func parseGetRef(s, ns string) (*messages.ResourceKey, error) {
	key, err := parseRef(s, ns)
	if err != nil && !strings.Contains(s, "/") {
		if _, terr := parseType(s); terr == nil {
			list := "kstore list " + s
			if ns != "" {
				list += " -n " + ns
			}
			return nil, invalid("REF %q names a type, not an object: %s prints the objects of a type; get takes KIND.VERSION[.GROUP]/NAME, such as %s/web", s, list, s)
		}
	}
	return key, err
}

// hintNamespaces bounds the namespaces a NotFound names: the ones where the name exists.
const hintNamespaces = 5

// explainNotFound adds to get's NotFound what may be wrong, when it can tell: a type that
// Kubernetes spells otherwise (see typeSuggestion; for a kind not built in and starting with a
// lowercase letter, whether the node stores the capitalised kind), or, for a REF without -n, the
// namespaces that hold the name, or that the kind is namespaced. Its lists read the state the get
// read (the same revision and consistency); a list that fails leaves its hint out.
func explainNotFound(ctx context.Context, c *conn, req *messages.GetRequest, notFound error) error {
	key := req.GetKey()
	withHint := func(format string, args ...any) error {
		return messages.Errorf(messages.StatusReason_NOT_FOUND, "%s: %s", message(notFound), fmt.Sprintf(format, args...))
	}
	list := func(group, version, kind, fields string, limit int64) (*messages.ListResult, error) {
		return c.client.List(ctx, &messages.ListRequest{
			Group: group, Version: version, Kind: kind, FieldSelector: fields, Limit: limit,
			ResourceVersion: req.GetResourceVersion(), Consistency: req.GetConsistency(),
		})
	}
	nsFlag := func(namespaced bool) string {
		switch {
		case key.GetNamespace() != "":
			return " -n " + key.GetNamespace()
		case namespaced:
			return " -n NAMESPACE"
		}
		return ""
	}

	if s, why, ok := typeSuggestion(key); ok {
		ref := formatType(s.group, s.version, s.kind) + "/" + key.GetName()
		return withHint("%s: did you mean %s%s?", why, ref, nsFlag(s.namespaced))
	}
	if k := key.GetKind(); unicode.IsLower(rune(k[0])) {
		if _, known := builtinScope(key.GetGroup(), key.GetKind()); !known {
			upper := strings.ToUpper(k[:1]) + k[1:]
			typ := formatType(key.GetGroup(), key.GetVersion(), upper)
			if res, err := list(key.GetGroup(), key.GetVersion(), upper, "", 1); err == nil && len(res.GetItems()) > 0 {
				return withHint("kinds are case-sensitive, and objects of %s are stored: did you mean %s/%s%s?", typ, typ, key.GetName(), nsFlag(false))
			}
			return withHint(`kinds are case-sensitive, spelled as in the objects' "kind" field, such as Pod or ConfigMap`)
		}
	}
	if key.GetNamespace() != "" {
		return notFound
	}

	// A REF without -n: look for the name in every namespace.
	typ := formatType(key.GetGroup(), key.GetVersion(), key.GetKind())
	const cause = "no namespace was given (-n), so a cluster-scoped object was looked for"
	res, err := list(key.GetGroup(), key.GetVersion(), key.GetKind(), "metadata.name="+key.GetName(), hintNamespaces+1)
	searched := err == nil && res.GetContinue() == "" // every namespace was looked in
	var namespaces []string
	if err == nil {
		for _, it := range res.GetItems() {
			// Checked here too, for a node that does not filter by field.
			if k, err := object.KeyOf(it); err == nil && k.GetName() == key.GetName() && k.GetNamespace() != "" {
				namespaces = append(namespaces, k.GetNamespace())
			}
		}
	}
	quoted := func(ns []string) string {
		q := make([]string, len(ns))
		for i, n := range ns {
			q[i] = strconv.Quote(n)
		}
		return strings.Join(q, ", ")
	}
	switch n := len(namespaces); {
	case n == 1:
		return withHint("%s; there is a %s %q in namespace %q: add -n %s", cause, typ, key.GetName(), namespaces[0], namespaces[0])
	case n > hintNamespaces:
		return withHint("%s; there is a %s %q in namespaces %s and more: add -n NAMESPACE", cause, typ, key.GetName(), quoted(namespaces[:hintNamespaces]))
	case n > 1:
		return withHint("%s; there is a %s %q in namespaces %s and %q: add -n NAMESPACE", cause, typ, key.GetName(), quoted(namespaces[:n-1]), namespaces[n-1])
	}
	namespaced, known := builtinScope(key.GetGroup(), key.GetKind())
	if !known {
		// Not a built-in: namespaced when objects of the type are stored in namespaces.
		res, err := list(key.GetGroup(), key.GetVersion(), key.GetKind(), "metadata.namespace!=", 1)
		if err == nil {
			for _, it := range res.GetItems() {
				if k, err := object.KeyOf(it); err == nil && k.GetNamespace() != "" {
					namespaced = true
				}
			}
		}
	}
	if !namespaced {
		return notFound
	}
	if searched {
		return withHint("%s, and %s objects are namespaced: add -n NAMESPACE (no namespace holds one named %q either)", cause, typ, key.GetName())
	}
	return withHint("%s, and %s objects are namespaced: add -n NAMESPACE", cause, typ)
}

// listOutput is what list prints by default. Continue is left out on the last page, as
// Kubernetes leaves out metadata.continue.
type listOutput struct {
	ResourceVersion uint64            `json:"resource_version"`
	Items           []json.RawMessage `json:"items"`
	Continue        string            `json:"continue,omitempty"`
}

// kubeList is what list -o json and -o yaml print: a Kubernetes List, which apply reads back.
type kubeList struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   kubeListMeta      `json:"metadata"`
	Items      []json.RawMessage `json:"items"`
}

type kubeListMeta struct {
	ResourceVersion string `json:"resourceVersion"`
	Continue        string `json:"continue,omitempty"`
}

func newListCmd(g *globals) *cobra.Command {
	var (
		co            clientOptions
		req           messages.ListRequest
		cf            consistencyFlag
		allNamespaces bool
		output        string
	)
	cmd := &cobra.Command{
		Use:   "list TYPE",
		Short: "Print the objects of a type",
		Long: `Print the objects of one type, as one JSON line:
  {"resource_version":42,"items":[{...},{...}],"continue":"..."}
TYPE is KIND.VERSION[.GROUP]. Items are the stored objects, in key order (namespace, then name).

Without -n the list spans every namespace, cluster-scoped objects included (-A, or
--all-namespaces, says so explicitly; it does not go with -n); -n restricts it to one. -l filters
by labels (a=b, a!=b, a in (x,y), a notin (x,y), a, !a; comma means and); --field-selector by
metadata.name, metadata.namespace and spec.nodeName (=, ==, !=; comma means and; an object
without spec.nodeName has ""), as watch's does.

-o json prints a Kubernetes List on one line instead:
  {"apiVersion":"v1","kind":"List","metadata":{"resourceVersion":"42","continue":"..."},"items":[...]}
-o yaml prints that List as YAML, which kstore apply -f - reads back (NoOp for every unchanged
item). -o name prints the REF of each item, one per line, such as Pod.v1/web, without the
namespace (give -n to pass it to get or delete); it reads every page (of one snapshot), so it
takes neither --limit nor --continue.

--limit N returns at most N items and, when more remain, a "continue" token: pass it back with
--continue (and the same TYPE, -n, -l and --field-selector) for the next page. "continue" is left
out on the last page. Every page of one list is read at the same resource_version, the first
page's, so a paged list is a consistent snapshot; a token older than the history the node keeps
is Gone: start again. --resource-version lists the state at that revision (ignored with
--continue). A page also ends, with a token, when its objects reach 16 MiB.

Without --resource-version and --continue the list is linearizable, as get's read is;
--consistency serializable lists the member's own, possibly stale, state.`,
		Example: `  kstore list Pod.v1 -n default
  kstore list Pod.v1 -A -o name
  kstore list Deployment.v1.apps -l 'app=web,tier in (front,back)'
  kstore list Pod.v1 --field-selector metadata.name=web
  kstore list ConfigMap.v1 -n default -o yaml > backup.yaml   # restore: kstore apply -f backup.yaml
  kstore list Pod.v1 --limit 100
  kstore list Pod.v1 --limit 100 --continue eyJ2IjoxLC...`,
		Args: cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			t, err := parseType(args[0])
			if err != nil {
				return err
			}
			format, err := parseOutput(output)
			if err != nil {
				return err
			}
			if req.Limit < 0 {
				return invalid("--limit %d is negative: give a page size, or 0 for every item", req.Limit)
			}
			if format == outputName && (req.Limit != 0 || req.Continue != "") {
				return invalid("-o name prints every name, reading page after page, and has no place for a continue token: leave out --limit and --continue, or page with -o json")
			}
			req.Group, req.Version, req.Kind = t.group, t.version, t.kind
			if req.Consistency, err = cf.parse(); err != nil {
				return err
			}
			c, err := co.connect(cmd, g)
			if err != nil {
				return err
			}
			defer c.Close()
			if format == outputName {
				return listNames(cmd.Context(), g, c, &req)
			}
			res, err := c.client.List(cmd.Context(), &req)
			if err != nil {
				return err
			}
			items := make([]json.RawMessage, len(res.GetItems()))
			for i, it := range res.GetItems() {
				items[i] = it
			}
			if format == outputLine {
				g.line(marshalJSON(listOutput{ResourceVersion: res.GetResourceVersion(), Items: items, Continue: res.GetContinue()}))
				return nil
			}
			l := marshalJSON(kubeList{
				APIVersion: "v1", Kind: "List", Items: items,
				Metadata: kubeListMeta{ResourceVersion: strconv.FormatUint(res.GetResourceVersion(), 10), Continue: res.GetContinue()},
			})
			if format == outputYAML {
				return g.yamlDocument(l)
			}
			g.line(l)
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVarP(&req.Namespace, "namespace", "n", "", "list only this namespace (default: every namespace)")
	f.BoolVarP(&allNamespaces, "all-namespaces", "A", false, "list every namespace, cluster-scoped objects included, as without -n")
	cmd.MarkFlagsMutuallyExclusive("namespace", "all-namespaces")
	f.StringVarP(&req.LabelSelector, "selector", "l", "", "label selector, such as app=web,tier!=db")
	f.StringVar(&req.FieldSelector, "field-selector", "", "field selector on metadata.name, metadata.namespace and spec.nodeName, such as metadata.name=web")
	f.Int64Var(&req.Limit, "limit", 0, "items per page at most (0: every item)")
	f.StringVar(&req.Continue, "continue", "", "the continue token of the previous page")
	f.Uint64Var(&req.ResourceVersion, "resource-version", 0, "list the state at this revision (0: the newest)")
	f.StringVarP(&output, "output", "o", "", "json (a Kubernetes List), yaml (that List as YAML, which apply -f reads back) or name (a REF per item, such as Pod.v1/web)")
	cf.add(cmd)
	addClientFlags(cmd, &co, false)
	return cmd
}

// listNames prints the REF of every object req selects, page after page; every page is read at
// the first one's revision through its continue token, so the names are of one state.
func listNames(ctx context.Context, g *globals, c *conn, req *messages.ListRequest) error {
	for {
		res, err := c.client.List(ctx, req)
		if err != nil {
			return err
		}
		for _, it := range res.GetItems() {
			key, err := object.KeyOf(it)
			if err != nil {
				return messages.Errorf(messages.StatusReason_INTERNAL, "the node listed an object kstore cannot read: %v", message(err))
			}
			g.line([]byte(formatRef(key)))
		}
		if res.GetContinue() == "" {
			return nil
		}
		req.Continue = res.GetContinue()
	}
}

// statusOutput is what status prints.
type statusOutput struct {
	NodeID    uint64 `json:"node_id"`
	Leader    uint64 `json:"leader"`
	Term      uint64 `json:"term"`
	Commit    uint64 `json:"commit"`
	Applied   uint64 `json:"applied"`
	Compacted uint64 `json:"compacted"`
	Role      string `json:"role"`
	// Members are the cluster's members as the node knows them.
	Members []memberOutput `json:"members"`
	// Cluster is the actor cluster the node is in; absent when it is in none.
	Cluster *clusterOutput `json:"cluster,omitempty"`
	// Version and ProtocolVersion are the node's kstore release and wire-protocol version; ""
	// and 0 from a node older than them.
	Version         string `json:"version"`
	ProtocolVersion uint32 `json:"protocol_version"`
}

type clusterOutput struct {
	Name     string   `json:"name"`
	Provider string   `json:"provider"`
	Members  []string `json:"members"`
}

func membersOf(ms []*messages.Member) []memberOutput {
	out := make([]memberOutput, 0, len(ms))
	for _, m := range ms {
		out = append(out, memberOutput{ID: m.GetId(), Address: m.GetAddress(), Role: m.GetRole(), Leader: m.GetLeader()})
	}
	return out
}

type memberOutput struct {
	ID      uint64 `json:"id"`
	Address string `json:"address"`
	Role    string `json:"role"`
	Leader  bool   `json:"leader"`
}

func newStatusCmd(g *globals) *cobra.Command {
	var co clientOptions
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Print how a node is",
		Long: `Print the status of the node, the first in --endpoints that accepts a connection, as one
JSON line:
  {"node_id":1,"leader":1,"term":2,"commit":42,"applied":42,"compacted":1,"role":"leader",
   "members":[{"id":1,"address":"127.0.0.1:7450","role":"voter","leader":true}],
   "cluster":{"name":"kstore","provider":"automanaged","members":["127.0.0.1:7450"]},
   "version":"0.1.0-dev","protocol_version":1}
leader is the id of the node it believes leads, 0 while there is none (no write can succeed
then). commit and applied are Raft indexes: every write's resource_version is one. compacted is
the oldest revision still readable. role is the node's: leader, follower, candidate or learner.
members are the cluster's members as this node knows them (voters and learners). cluster is the
protoactor cluster the node is a member of: its name, provider, and the members (--listen
addresses) the node sees in it now. version and protocol_version are the node's kstore release
and wire-protocol version (kstore version --server adds this binary's).`,
		Example: `  kstore status
  kstore status --endpoints 10.0.0.5:7450 --timeout 1s`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			c, err := co.connect(cmd, g)
			if err != nil {
				return err
			}
			defer c.Close()
			st, err := c.client.Status(cmd.Context())
			if err != nil {
				return err
			}
			out := statusOutput{
				NodeID: st.GetNodeId(), Leader: st.GetLeader(), Term: st.GetTerm(),
				Commit: st.GetCommit(), Applied: st.GetApplied(), Compacted: st.GetCompacted(),
				Role: st.GetRole(), Members: membersOf(st.GetMembers()),
				Version: st.GetVersion(), ProtocolVersion: st.GetProtocolVersion(),
			}
			// The same node: the client stays on the endpoint that answered.
			if info, err := c.client.ClusterInfo(cmd.Context()); err == nil {
				out.Cluster = &clusterOutput{Name: info.GetName(), Provider: info.GetProvider(), Members: info.GetMembers()}
			} else if !messages.IsNotFound(err) {
				return err
			}
			g.line(marshalJSON(out))
			return nil
		}),
	}
	addClientFlags(cmd, &co, false)
	return cmd
}

// marshalJSON encodes v on one line without HTML escaping, so objects print as stored.
func marshalJSON(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only the fixed output types above, holding objects the node stored, are encoded.
		panic("kstore: encode output: " + err.Error())
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})
}
