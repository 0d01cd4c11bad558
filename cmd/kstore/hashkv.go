package main

import (
	"github.com/spf13/cobra"

	"github.com/kstore/kstore/messages"
)

func newHashKVCmd(g *globals) *cobra.Command {
	var (
		co  clientOptions
		req messages.HashKVRequest
	)
	cmd := &cobra.Command{
		Use:   "hashkv",
		Short: "Print a digest of a node's catalog, to compare members",
		Long: `Print a digest of the catalog of the first node in --endpoints that answers, as etcdctl
endpoint hashkv does, as one JSON line:
  {"node_id":2,"revision":420,"from":1,"hash":"9f86d0..."}
The hash covers every key, version and value a read at a revision from "from" to "revision" can
see. Members that applied the same log give the same hash for the same revisions, whether they
applied it entry by entry or installed a snapshot of it. Members compact their history at
slightly different revisions: give every member the same --from, the largest "from" any of them
printed.`,
		Example: `  kstore hashkv --endpoints 127.0.0.1:7451 --revision 420 --from 100`,
		Args:    cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			c, err := co.connect(cmd, g)
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := c.client.HashKV(cmd.Context(), &req)
			if err != nil {
				return err
			}
			g.line(marshalJSON(struct {
				NodeID   uint64 `json:"node_id"`
				Revision uint64 `json:"revision"`
				From     uint64 `json:"from"`
				Hash     string `json:"hash"`
			}{res.GetNodeId(), res.GetRevision(), res.GetFrom(), res.GetHash()}))
			return nil
		}),
	}
	f := cmd.Flags()
	f.Uint64Var(&req.Revision, "revision", 0, "the newest revision covered (0: the node's applied index; a revision it has not reached is waited for a few seconds)")
	f.Uint64Var(&req.From, "from", 0, "the oldest revision covered (0: the node's compacted revision)")
	addClientFlags(cmd, &co, false)
	return cmd
}
