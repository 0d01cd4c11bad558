package main

import (
	"fmt"
	"net"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/kstore/kstore/messages"
)

func newMemberCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "member",
		Short: "List and change the cluster's members",
		Long: `List and change the members of the cluster, one change at a time, as etcdctl member does.

A new member joins as a learner: it replicates the log but does not vote, so a member that is
still catching up cannot cost the cluster its quorum. Once it has caught up, promote it:

  kstore member add 4 127.0.0.1:7454                       # on the running cluster
  kstore serve --node-id 4 --listen 127.0.0.1:7454 --join 127.0.0.1:7451,127.0.0.1:7452
  kstore member promote 4                                  # refused while it is far behind

A removed member stops serving and exits. A member whose data dir was lost cannot come back
under its old id (it forgot its votes): remove it, delete its data dir, and add it again.`,
		Example: `  kstore member list
  kstore member add 4 127.0.0.1:7454
  kstore member promote 4
  kstore member remove 4`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newMemberListCmd(g), newMemberChangeCmd(g, "add ID HOST:PORT", messages.MemberOp_MEMBER_ADD,
		"Add a learner: a member that replicates the log without voting",
		`Add member ID, listening on HOST:PORT, as a learner, and print the members once the change is
committed. Then start it with kstore serve --node-id ID --listen HOST:PORT --join (the addresses
of running members). Refused with AlreadyExists when ID is a member, with Conflict while another
change is under way.`),
		newMemberChangeCmd(g, "promote ID", messages.MemberOp_MEMBER_PROMOTE,
			"Make a learner that has caught up a voter",
			`Make learner ID a voter. Refused with Unavailable while the learner is more than 1,000 entries
behind the leader or has not answered lately: wait, then try again.`),
		newMemberChangeCmd(g, "remove ID", messages.MemberOp_MEMBER_REMOVE,
			"Remove a member; it stops serving",
			`Remove member ID. The removed node stops serving and exits, saying it was removed. The last
voter cannot be removed.`))
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
			printMembers(g, st.GetMembers())
			return nil
		}),
	}
	addClientFlags(cmd, &co, false)
	return cmd
}

func printMembers(g *globals, ms []*messages.Member) {
	out := membersOf(ms)
	g.line(marshalJSON(struct {
		Members []memberOutput `json:"members"`
	}{out}))
}

func newMemberChangeCmd(g *globals, use string, op messages.MemberOp, short, long string) *cobra.Command {
	var co clientOptions
	nargs := 1
	if op == messages.MemberOp_MEMBER_ADD {
		nargs = 2
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args:  cobra.ExactArgs(nargs),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil || id == 0 {
				return invalid("member id %q is not a non-zero number", args[0])
			}
			req := &messages.MemberRequest{Op: op, Id: id}
			if op == messages.MemberOp_MEMBER_ADD {
				if host, port, err := net.SplitHostPort(args[1]); err != nil || host == "" || port == "" || port == "0" {
					return invalid("member address %q is not HOST:PORT with a fixed port, such as 127.0.0.1:7454", args[1])
				}
				req.Address = args[1]
			}
			c, err := co.connect(cmd, g)
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := c.client.ChangeMembers(cmd.Context(), req)
			if err != nil {
				return err
			}
			printMembers(g, res.GetMembers())
			return nil
		}),
	}
	cmd.Example = fmt.Sprintf("  kstore member %s", map[messages.MemberOp]string{
		messages.MemberOp_MEMBER_ADD: "add 4 127.0.0.1:7454", messages.MemberOp_MEMBER_PROMOTE: "promote 4", messages.MemberOp_MEMBER_REMOVE: "remove 4"}[op])
	addClientFlags(cmd, &co, true)
	return cmd
}
