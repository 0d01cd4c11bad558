package main

import (
	"bytes"
	"encoding/json"

	"github.com/spf13/cobra"

	"github.com/kstore/kstore/messages"
)

func newGetCmd(g *globals) *cobra.Command {
	var (
		co clientOptions
		r  refOptions
		cf consistencyFlag
	)
	cmd := &cobra.Command{
		Use:   "get REF",
		Short: "Print an object",
		Long: `Print an object as stored, as one JSON line. REF is KIND.VERSION[.GROUP]/NAME.

With --resource-version N the object is read as it was at revision N (NotFound when it did not
exist then; Gone when N is older than the history the node keeps; a revision the node has not
reached yet is waited for a few seconds, then Timeout).

Without --resource-version the read is linearizable: it sees every write acknowledged before it
began, whichever member took the write, because the member first confirms with the leader how
far the log is committed (Unavailable when no leader confirms it: a member cut off from the
quorum serves no linearizable read). --consistency serializable reads the member's own state
without asking: possibly stale, but it works on a member without a quorum.`,
		Example: `  kstore get Pod.v1/web -n default
  kstore get Namespace.v1/default
  kstore get Deployment.v1.apps/web -n default --resource-version 41`,
		Args: cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			key, err := parseRef(args[0], r.namespace)
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
			res, err := c.client.Read(cmd.Context(), &messages.GetRequest{Key: key, ResourceVersion: r.resourceVersion, Consistency: consistency})
			if err != nil {
				return err
			}
			g.line(res.GetObject())
			return nil
		}),
	}
	cmd.Flags().Uint64Var(&r.resourceVersion, "resource-version", 0, "read the object as it was at this revision (0: the newest)")
	cf.add(cmd)
	addNamespaceFlag(cmd, &r.namespace, refNamespaceHelp)
	addClientFlags(cmd, &co, false)
	return cmd
}

// listOutput is what list prints. Continue is left out on the last page, as Kubernetes leaves
// out metadata.continue.
type listOutput struct {
	ResourceVersion uint64            `json:"resource_version"`
	Items           []json.RawMessage `json:"items"`
	Continue        string            `json:"continue,omitempty"`
}

func newListCmd(g *globals) *cobra.Command {
	var (
		co  clientOptions
		req messages.ListRequest
		cf  consistencyFlag
	)
	cmd := &cobra.Command{
		Use:   "list TYPE",
		Short: "Print the objects of a type",
		Long: `Print the objects of one type, as one JSON line:
  {"resource_version":42,"items":[{...},{...}],"continue":"..."}
TYPE is KIND.VERSION[.GROUP]. Items are the stored objects, in key order (namespace, then name).

Without -n the list spans every namespace, cluster-scoped objects included; -n restricts it to
one. -l filters by labels (a=b, a!=b, a in (x,y), a notin (x,y), a, !a; comma means and).

--limit N returns at most N items and, when more remain, a "continue" token: pass it back with
--continue (and the same TYPE, -n and -l) for the next page. "continue" is left out on the last
page. Every page of one list is read at the same resource_version, the first page's, so a
paged list is a consistent snapshot; a token older than the history the node keeps is Gone:
start again. --resource-version lists the state at that revision (ignored with --continue).

Without --resource-version and --continue the list is linearizable, as get's read is;
--consistency serializable lists the member's own, possibly stale, state.`,
		Example: `  kstore list Pod.v1 -n default
  kstore list Deployment.v1.apps -l 'app=web,tier in (front,back)'
  kstore list Pod.v1 --limit 100
  kstore list Pod.v1 --limit 100 --continue eyJ2IjoxLC...`,
		Args: cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			t, err := parseType(args[0])
			if err != nil {
				return err
			}
			if req.Limit < 0 {
				return invalid("--limit %d is negative: give a page size, or 0 for every item", req.Limit)
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
			res, err := c.client.List(cmd.Context(), &req)
			if err != nil {
				return err
			}
			out := listOutput{ResourceVersion: res.GetResourceVersion(), Items: make([]json.RawMessage, len(res.GetItems())), Continue: res.GetContinue()}
			for i, it := range res.GetItems() {
				out.Items[i] = it
			}
			g.line(marshalJSON(out))
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVarP(&req.Namespace, "namespace", "n", "", "list only this namespace (default: every namespace)")
	f.StringVarP(&req.LabelSelector, "selector", "l", "", "label selector, such as app=web,tier!=db")
	f.Int64Var(&req.Limit, "limit", 0, "items per page at most (0: every item)")
	f.StringVar(&req.Continue, "continue", "", "the continue token of the previous page")
	f.Uint64Var(&req.ResourceVersion, "resource-version", 0, "list the state at this revision (0: the newest)")
	cf.add(cmd)
	addClientFlags(cmd, &co, false)
	return cmd
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
   "cluster":{"name":"kstore","provider":"automanaged","members":["127.0.0.1:7450"]}}
leader is the id of the node it believes leads, 0 while there is none (no write can succeed
then). commit and applied are Raft indexes: every write's resource_version is one. compacted is
the oldest revision still readable. role is the node's: leader, follower, candidate or learner.
members are the cluster's members as this node knows them (voters and learners). cluster is the
protoactor cluster the node is a member of: its name, provider, and the members (--listen
addresses) the node sees in it now.`,
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
