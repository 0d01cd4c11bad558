package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// runInProcess runs a command line that fails or ends before it would connect to a node: tests
// keep to one protoactor remote per process, and the end-to-end test runs the binary.
func runInProcess(stdin string, env map[string]string, args ...string) (stdout, stderr string, code int) {
	var out, errw bytes.Buffer
	code = run(args, strings.NewReader(stdin), &out, &errw, func(k string) string { return env[k] })
	return out.String(), errw.String(), code
}

// TestHelpOfEveryCommand checks that every command documents itself: a short line, an example,
// and a --help that exits 0 and shows them.
func TestHelpOfEveryCommand(t *testing.T) {
	root := newRootCmd(&globals{getenv: func(string) string { return "" }})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if c.Name() == "help" || c.HasParent() && c.Parent().Name() == "completion" || c.Name() == "completion" {
			return // cobra's own
		}
		t.Run(c.CommandPath(), func(t *testing.T) {
			if c.Short == "" || c.Example == "" {
				t.Errorf("%s: Short %q, Example %q: both must be set", c.CommandPath(), c.Short, c.Example)
			}
			args := append(strings.Fields(c.CommandPath())[1:], "--help")
			stdout, stderr, code := runInProcess("", nil, args...)
			if code != exitOK || !strings.Contains(stdout, "Examples:") || stderr != "" {
				t.Errorf("kstore %s: exit %d, stderr %q, stdout without Examples:\n%s", strings.Join(args, " "), code, stderr, stdout)
			}
		})
	}
	walk(root)
}

func TestHelpTellsDefaults(t *testing.T) {
	tests := []struct {
		give []string
		want []string
	}{
		{give: []string{"serve", "--help"}, want: []string{`--data-dir string`, `(default "kstore-data")`, `(default "127.0.0.1:7450")`, `--node-id uint`, `(default 1)`, `(default 100000)`, `--log-level string`, `(default "info")`}},
		{give: []string{"apply", "--help"}, want: []string{`-f, --filename`, `$KSTORE_ENDPOINTS`, `(default "127.0.0.1:7450")`, `--timeout duration`, `(default 5s)`, `(default "operator")`, `-o, --output`}},
		{give: []string{"list", "--help"}, want: []string{`-l, --selector`, `--limit int`, `--continue string`, `--resource-version uint`, `-n, --namespace`}},
		{give: []string{"patch", "--help"}, want: []string{`--type string`, `(default "merge")`, `-p, --patch`, `@FILE`}},
	}
	for _, tt := range tests {
		stdout, _, code := runInProcess("", nil, tt.give...)
		for _, w := range tt.want {
			if code != exitOK || !strings.Contains(stdout, w) {
				t.Errorf("kstore %s: exit %d, want %q in:\n%s", strings.Join(tt.give, " "), code, w, stdout)
			}
		}
	}
}

// TestExitCodes covers the failures found before any request is sent.
func TestExitCodes(t *testing.T) {
	tests := []struct {
		give       []string
		stdin      string
		env        map[string]string
		wantCode   int
		wantStderr string // the whole first line
	}{
		{give: []string{"get"}, wantCode: exitUsage, wantStderr: "Error: accepts 1 arg(s), received 0"},
		{give: []string{"get", "Pod.v1/a", "--bogus"}, wantCode: exitUsage, wantStderr: "Error: unknown flag: --bogus"},
		{give: []string{"frob"}, wantCode: exitUsage, wantStderr: `Error: unknown command "frob" for "kstore"`},
		{give: []string{"apply"}, wantCode: exitUsage, wantStderr: `Error: required flag(s) "filename" not set`},
		{give: []string{"list", "Pod.v1", "--limit", "x"}, wantCode: exitUsage, wantStderr: `Error: invalid argument "x" for "--limit" flag: strconv.ParseInt: parsing "x": invalid syntax`},
		{give: []string{"get", "Pod/web"}, wantCode: exitFailed,
			wantStderr: `Error (Invalid): REF "Pod/web" is not KIND.VERSION[.GROUP]/NAME, such as Pod.v1/web, Deployment.v1.apps/web or Ingress.v1.networking.k8s.io/web`},
		{give: []string{"list", "pods"}, wantCode: exitFailed,
			wantStderr: `Error (Invalid): TYPE "pods" is not KIND.VERSION[.GROUP], such as Pod.v1, Deployment.v1.apps or Ingress.v1.networking.k8s.io`},
		{give: []string{"apply", "-f", "-"}, stdin: `[]`, wantCode: exitFailed,
			wantStderr: `Error (Invalid): stdin: a JSON array is not an object: give objects one after another, or a {"kind":"List","items":[...]}`},
		{give: []string{"patch", "Pod.v1/a", "--type", "strategic", "-p", "{}"}, wantCode: exitFailed,
			wantStderr: `Error (Invalid): --type: unknown patch type "strategic": use merge (RFC 7386) or json (RFC 6902)`},
		{give: []string{"delete", "Pod.v1/a", "--reason", "whim"}, wantCode: exitFailed,
			wantStderr: `Error (Invalid): --reason: unknown reason "whim": use one of operator, controller, garbage_collector, admission, scheduler`},
		{give: []string{"status", "--log-level", "loud"}, wantCode: exitFailed,
			wantStderr: `Error (Invalid): --log-level "loud" is not a level: use debug, info, warn or error`},
		{give: []string{"status"}, env: map[string]string{endpointsEnv: "nohost"}, wantCode: exitFailed,
			wantStderr: `Error (Invalid): $KSTORE_ENDPOINTS: endpoint "nohost" is not host:port, such as 127.0.0.1:7450`},
		{give: []string{"status", "--endpoints", " , "}, wantCode: exitFailed,
			wantStderr: `Error (Invalid): --endpoints is empty: give host:port[,host:port], such as 127.0.0.1:7450`},
		{give: []string{"serve", "--node-id", "0"}, wantCode: exitFailed, wantStderr: `Error (Invalid): --node-id must be non-zero`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.give, " "), func(t *testing.T) {
			stdout, stderr, code := runInProcess(tt.stdin, tt.env, tt.give...)
			first, _, _ := strings.Cut(stderr, "\n")
			if code != tt.wantCode || first != tt.wantStderr || stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr %q\nwant exit %d, stderr %q", code, stdout, stderr, tt.wantCode, tt.wantStderr)
			}
			if strings.Contains(stderr, "Usage:") {
				t.Errorf("stderr shows the usage block:\n%s", stderr)
			}
		})
	}
}
