package main

import (
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/kstore/kstore/messages"
)

// versionOutput is what version prints: this binary's versions, and the node's when asked.
type versionOutput struct {
	Version   string `json:"version"`
	GoVersion string `json:"go_version"`
	// Commit is the revision the binary was built from, "unknown" when it was not built from a
	// checkout (go install of a module, a build with -buildvcs=false); Modified is then absent.
	Commit          string         `json:"commit"`
	Modified        *bool          `json:"modified,omitempty"`
	ProtocolVersion uint32         `json:"protocol_version"`
	Server          *serverVersion `json:"server,omitempty"`
}

// serverVersion is the node's part of version. A node older than NodeStatus's version fields
// has "" and 0 there.
type serverVersion struct {
	NodeID          uint64 `json:"node_id"`
	Version         string `json:"version"`
	ProtocolVersion uint32 `json:"protocol_version"`
}

// clientVersion is this binary's part of version.
func clientVersion() versionOutput {
	info, ok := debug.ReadBuildInfo()
	commit, modified := buildCommit(info, ok)
	return versionOutput{
		Version:         messages.Version,
		GoVersion:       runtime.Version(),
		Commit:          commit,
		Modified:        modified,
		ProtocolVersion: messages.ProtocolVersion,
	}
}

// buildCommit reads the revision the go command stamped into the binary (vcs.revision and
// vcs.modified), or "unknown" and nil when there is none.
func buildCommit(info *debug.BuildInfo, ok bool) (string, *bool) {
	if !ok || info == nil {
		return "unknown", nil
	}
	commit := ""
	var modified *bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			commit = s.Value
		case "vcs.modified":
			m := s.Value == "true"
			modified = &m
		}
	}
	if commit == "" {
		return "unknown", nil
	}
	return commit, modified
}

func newVersionCmd(g *globals) *cobra.Command {
	var (
		co     clientOptions
		server bool
		output string
	)
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print kstore's version, and the node's",
		Long: `Print the version of this kstore binary as one JSON line:
  {"version":"0.1.0-dev","go_version":"go1.24.4","commit":"4f2a...","modified":false,"protocol_version":1}
version is the kstore release; go_version the Go release it was built with; commit the
revision of the checkout it was built from, and modified whether that checkout had changes
("unknown", and no modified, for a binary not built from a checkout); protocol_version is the
version of the wire protocol between clients and nodes, which changes only when a message
changes in a way an older peer would misread.

Without a flag no node is asked, so it works with none running; kstore --version prints the
same line. With --server, or with --endpoints given, the node (found as every client command
finds it: --endpoints, else $KSTORE_ENDPOINTS, else 127.0.0.1:7450) is asked too, and its part
is added:
  {...,"server":{"node_id":1,"version":"0.1.0-dev","protocol_version":1}}
-o yaml prints the same as YAML.`,
		Example: `  kstore version
  kstore --version
  kstore version --server
  kstore version --endpoints 10.0.0.5:7450 -o yaml`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			format, err := parseOutput(output)
			if err != nil {
				return err
			}
			if format == outputName {
				return invalid("--output name: a version has no REF; give json or yaml, or leave -o out")
			}
			out := clientVersion()
			if server || cmd.Flags().Changed("endpoints") {
				c, err := co.connect(cmd, g)
				if err != nil {
					return err
				}
				defer c.Close()
				st, err := c.client.Status(cmd.Context())
				if err != nil {
					return err
				}
				out.Server = &serverVersion{NodeID: st.GetNodeId(), Version: st.GetVersion(), ProtocolVersion: st.GetProtocolVersion()}
			}
			if format == outputYAML {
				return g.yamlDocument(marshalJSON(out))
			}
			g.line(marshalJSON(out))
			return nil
		}),
	}
	f := cmd.Flags()
	f.BoolVar(&server, "server", false, "ask the node for its version too (implied by --endpoints)")
	f.StringVarP(&output, "output", "o", "", "yaml prints the same as YAML; json is the default line")
	addClientFlags(cmd, &co, false)
	return cmd
}
