package main

import (
	"github.com/spf13/cobra"
)

func newMemberCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "member",
		Short: "Show the cluster's members",
		Long: `Show the members of the cluster, as etcdctl member does.

A cluster's members are fixed when it is created (kstore serve --initial-cluster).`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newMemberListCmd(g))
	return cmd
}

func newMemberListCmd(g *globals) *cobra.Command {
	var co clientOptions
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Print the cluster's members",
		Long: `Print the cluster's members as one JSON line, as the first node in --endpoints that
answers knows them:
  {"members":[{"id":1,"address":"127.0.0.1:7451","role":"voter","leader":true},...]}
role is voter or learner; leader is set on the member that node believes leads.`,
		Example: `  kstore member list --endpoints 127.0.0.1:7451,127.0.0.1:7452,127.0.0.1:7453`,
		Args:    cobra.NoArgs,
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
			g.line(marshalJSON(struct {
				Members []memberOutput `json:"members"`
			}{membersOf(st)}))
			return nil
		}),
	}
	addClientFlags(cmd, &co, false)
	return cmd
}
