package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/kstore/kstore/actors"
	"github.com/kstore/kstore/messages"
)

func newWatchCmd(g *globals) *cobra.Command {
	var (
		co       clientOptions
		req      messages.WatchRequest
		retryFor time.Duration
		// --bookmark-interval
		bookmarkEvery time.Duration
		cf            consistencyFlag
	)
	cmd := &cobra.Command{
		Use:   "watch [TYPE]",
		Short: "Print changes as they happen",
		Long: `Print watch events, one JSON line each, until Ctrl-C:
  {"type":"MODIFIED","object":{...},"key":{...},"resource_version":42}
TYPE is KIND.VERSION[.GROUP]; without it every type is watched.

Without --resource-version the watch starts with the current state: an ADDED per matching
object (each at the revision R the state was read at), then a BOOKMARK at R, then every change
after R. With --resource-version N it prints every matching change after N. R is linearizable
(the state holds every write acknowledged before the watch began, on any member) unless
--consistency serializable, which starts from the member's own state. Every member sends the
same events, in the same order, with the same resource_version.

An object relabelled out of -l is a DELETED, relabelled into it an ADDED. --bookmarks adds a
BOOKMARK at the current revision every bookmark interval (the node's --bookmark-interval, a
minute by default, or --bookmark-interval), so a script's resume point stays fresh.

The watch resumes by itself from the last event it printed when its stream breaks (a lost
message, a node restart, a failed endpoint), for up to --retry-for; with several --endpoints it
resumes on the next one, with no event missed or repeated. It exits 1 with
"Error (Reason): ..." when it cannot: Gone (the revision was compacted away: list again and
watch from the list's resource_version), Timeout (a --resource-version ahead of the node that
did not arrive in time), Invalid, or Unavailable after --retry-for. Ctrl-C ends it with exit 0.`,
		Example: `  kstore watch Pod.v1 -n default
  kstore watch Deployment.v1.apps -l app=web --resource-version 41
  kstore watch --bookmarks --bookmark-interval 10s`,
		Args: cobra.MaximumNArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				t, err := parseType(args[0])
				if err != nil {
					return err
				}
				req.Group, req.Version, req.Kind = t.group, t.version, t.kind
			}
			var err error
			if req.Consistency, err = cf.parse(); err != nil {
				return err
			}
			if bookmarkEvery != 0 {
				if !req.Bookmarks {
					return invalid("--bookmark-interval %v needs --bookmarks: give both, or leave the interval out", bookmarkEvery)
				}
				if bookmarkEvery < time.Second || bookmarkEvery > 10*time.Minute {
					return invalid("--bookmark-interval %v is outside [1s, 10m]: give whole seconds in that range, or 0 for the node's interval", bookmarkEvery)
				}
				req.BookmarkIntervalMs = uint64(bookmarkEvery.Milliseconds())
			}
			c, err := co.connect(cmd, g)
			if err != nil {
				return err
			}
			defer c.Close()
			w := c.client.Watch(context.Background(), &req, actors.WatchOptions{GiveUpAfter: retryFor})
			defer w.Stop()
			for {
				select {
				case ev, ok := <-w.Events():
					if !ok {
						return w.Err()
					}
					g.line(messages.MarshalEventJSON(ev))
				case <-cmd.Context().Done():
					return nil // Ctrl-C: a clean end
				}
			}
		}),
	}
	cf.add(cmd)
	f := cmd.Flags()
	f.StringVarP(&req.Namespace, "namespace", "n", "", "watch only this namespace (default: every namespace)")
	f.StringVarP(&req.LabelSelector, "selector", "l", "", "label selector, such as app=web,tier!=db")
	f.StringVar(&req.FieldSelector, "field-selector", "", "field selector on metadata.name, metadata.namespace and spec.nodeName, such as spec.nodeName=node-1 (a Pod bound to the node is ADDED, one moved off it DELETED)")
	f.Uint64Var(&req.ResourceVersion, "resource-version", 0, "print the changes after this revision (0: the current state first)")
	f.BoolVar(&req.Bookmarks, "bookmarks", false, "print a BOOKMARK at the current revision every bookmark interval")
	f.DurationVar(&bookmarkEvery, "bookmark-interval", 0, "with --bookmarks, how often (whole seconds, 1s to 10m; 0: the node's --bookmark-interval)")
	f.DurationVar(&retryFor, "retry-for", time.Minute, "how long to keep trying to resume a broken watch before giving up")
	addClientFlags(cmd, &co, false)
	return cmd
}
