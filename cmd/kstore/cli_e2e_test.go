package main

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/kstore/kstore/messages"
)

// The command line as kubectl and etcdctl users meet it: output formats, manifests given to get
// and delete, the hints of a NotFound, list -A and --field-selector, version, do's reason.

// cliObjects are what TestCLI's node holds from the start: pods cli/web, cli/db and other/web,
// and a custom kind in namespace cli.
const cliObjects = `apiVersion: v1
kind: Pod
metadata: {name: web, namespace: cli, labels: {app: web}}
spec: {containers: [{name: c, image: "nginx:1", args: ["two\nlines", "a: colon", "007"]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: cli}
spec: {containers: [{name: c, image: "postgres:16"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: other}
spec: {containers: [{name: c, image: "nginx:1"}]}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w, namespace: cli}
spec: {size: 3}
`

// kubeListResult is what list -o json prints.
type kubeListResult struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		ResourceVersion string `json:"resourceVersion"`
		Continue        string `json:"continue"`
	} `json:"metadata"`
	Items []json.RawMessage `json:"items"`
}

func parseKubeList(t *testing.T, s string) kubeListResult {
	t.Helper()
	var l kubeListResult
	if err := strictUnmarshal(s, &l); err != nil || l.APIVersion != "v1" || l.Kind != "List" || l.Items == nil {
		t.Fatalf("not a List: %q: %v", s, err)
	}
	if _, err := strconv.ParseUint(l.Metadata.ResourceVersion, 10, 64); err != nil {
		t.Fatalf("List's metadata.resourceVersion %q is not a revision", l.Metadata.ResourceVersion)
	}
	return l
}

func (l kubeListResult) names(t *testing.T) []string {
	t.Helper()
	return listResult{Items: l.Items}.names(t)
}

// fromYAML converts YAML output to JSON, failing the test when it is not YAML.
func fromYAML(t *testing.T, y string) string {
	t.Helper()
	j, err := yaml.YAMLToJSON([]byte(y))
	if err != nil {
		t.Fatalf("not YAML: %q: %v", y, err)
	}
	return string(j)
}

// sameJSON reports whether a and b hold the same JSON value, whatever their spacing and order.
func sameJSON(t *testing.T, a, b string) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal([]byte(a), &va); err != nil {
		t.Fatalf("not JSON: %q: %v", a, err)
	}
	if err := json.Unmarshal([]byte(b), &vb); err != nil {
		t.Fatalf("not JSON: %q: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

func lines(s string) []string {
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// usage runs a command line that must be refused as wrong: exit 2, nothing on stdout, and
// "Error: ..." with a pointer to --help on stderr. It returns the first line.
func (c *cli) usage(args ...string) string {
	c.t.Helper()
	r := c.run("", args...)
	if r.code != exitUsage || r.stdout != "" || !strings.HasPrefix(r.stderr, "Error: ") || !strings.Contains(r.stderr, "--help' for usage.") {
		c.t.Fatalf("want exit 2, no stdout and a usage error:\n%v", r)
	}
	first, _, _ := strings.Cut(r.stderr, "\n")
	return first
}

// TestCLI runs one node and drives the command line's formats, manifests, hints, list flags,
// version and do against it. The cases read the objects of cliObjects; those that write use
// objects of their own.
func TestCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the kstore binary")
	}
	bin := kstoreBinary(t)
	dir, addr := t.TempDir(), freeAddr(t)
	startServer(t, bin, dir, addr)
	k := &cli{t: t, bin: bin, endpoints: addr}
	k.waitLeader()
	if rs := results(t, k.ok(cliObjects, "apply", "-f", "-")); len(rs) != 4 {
		t.Fatalf("apply of the objects: %+v", rs)
	}
	on := func(t *testing.T) *cli { return &cli{t: t, bin: bin, endpoints: addr} }
	webLine := k.ok("", "get", "Pod.v1/web", "-n", "cli")
	web := parseObj(t, webLine)

	t.Run("get", func(t *testing.T) {
		tests := []struct {
			name string
			give []string
			want func(t *testing.T, k *cli, stdout string)
		}{
			{"default", []string{"get", "Pod.v1/web", "-n", "cli"}, func(t *testing.T, _ *cli, out string) {
				if o := parseObj(t, out); o.meta("name") != "web" || o.meta("namespace") != "cli" || strings.Count(out, "\n") != 1 {
					t.Errorf("want one line holding cli/web, got %q", out)
				}
			}},
			{"json is the default's line", []string{"get", "Pod.v1/web", "-n", "cli", "-o", "json"}, func(t *testing.T, _ *cli, out string) {
				if out != webLine {
					t.Errorf("-o json printed %q, want the default's %q", out, webLine)
				}
			}},
			{"yaml round-trips through apply", []string{"get", "Pod.v1/web", "-n", "cli", "-o", "yaml"}, func(t *testing.T, k *cli, out string) {
				if strings.HasPrefix(out, "{") || !sameJSON(t, fromYAML(t, out), webLine) {
					t.Fatalf("-o yaml printed %q, want the object %s as YAML", out, webLine)
				}
				got := result1(t, k.ok(out, "apply", "-f", "-"), "NoOp")
				if strconv.FormatUint(got.ResourceVersion, 10) != web.meta("resourceVersion") {
					t.Errorf("apply of get -o yaml: NoOp at %d, want the object's %s", got.ResourceVersion, web.meta("resourceVersion"))
				}
			}},
			{"name feeds get", []string{"get", "Pod.v1/web", "-n", "cli", "-o", "name"}, func(t *testing.T, k *cli, out string) {
				if out != "Pod.v1/web\n" {
					t.Fatalf("-o name printed %q, want %q", out, "Pod.v1/web\n")
				}
				if again := k.ok("", "get", strings.TrimSpace(out), "-n", "cli"); again != webLine {
					t.Errorf("get of -o name's REF printed %q, want %q", again, webLine)
				}
			}},
			{"a group with dots, as name", []string{"get", "Widget.v1.example.com/w", "-n", "cli", "-o", "name"}, func(t *testing.T, _ *cli, out string) {
				if out != "Widget.v1.example.com/w\n" {
					t.Errorf("-o name printed %q", out)
				}
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				k := on(t)
				tt.want(t, k, k.ok("", tt.give...))
			})
		}
		on(t).fail("Invalid", "", "get", "Pod.v1/web", "-n", "cli", "-o", "wide")
	})

	t.Run("list", func(t *testing.T) {
		tests := []struct {
			name string
			give []string
			want func(t *testing.T, k *cli, stdout string)
		}{
			{"default", []string{"list", "Pod.v1", "-n", "cli"}, func(t *testing.T, _ *cli, out string) {
				if got := parseList(t, out).names(t); !slices.Equal(got, []string{"cli/db", "cli/web"}) {
					t.Errorf("list -n cli: %v", got)
				}
			}},
			{"json is a List", []string{"list", "Pod.v1", "-n", "cli", "-o", "json"}, func(t *testing.T, _ *cli, out string) {
				l := parseKubeList(t, out)
				if got := l.names(t); !slices.Equal(got, []string{"cli/db", "cli/web"}) || l.Metadata.Continue != "" || strings.Count(out, "\n") != 1 {
					t.Errorf("list -o json: %v, continue %q, in %q", got, l.Metadata.Continue, out)
				}
			}},
			{"json pages carry continue", []string{"list", "Pod.v1", "-n", "cli", "-o", "json", "--limit", "1"}, func(t *testing.T, k *cli, out string) {
				first := parseKubeList(t, out)
				if got := first.names(t); !slices.Equal(got, []string{"cli/db"}) || first.Metadata.Continue == "" {
					t.Fatalf("first page: %v, continue %q", got, first.Metadata.Continue)
				}
				next := parseKubeList(t, k.ok("", "list", "Pod.v1", "-n", "cli", "-o", "json", "--limit", "1", "--continue", first.Metadata.Continue))
				if got := next.names(t); !slices.Equal(got, []string{"cli/web"}) || next.Metadata.Continue != "" || next.Metadata.ResourceVersion != first.Metadata.ResourceVersion {
					t.Errorf("second page: %v, continue %q, at %s (the first at %s)", got, next.Metadata.Continue, next.Metadata.ResourceVersion, first.Metadata.ResourceVersion)
				}
			}},
			{"yaml round-trips through apply", []string{"list", "Pod.v1", "-n", "cli", "-o", "yaml"}, func(t *testing.T, k *cli, out string) {
				l := parseKubeList(t, fromYAML(t, out))
				if got := l.names(t); !slices.Equal(got, []string{"cli/db", "cli/web"}) {
					t.Fatalf("list -o yaml: %v in %q", got, out)
				}
				if rs := results(t, k.ok(out, "apply", "-f", "-")); len(rs) != 2 || rs[0].Op != "NoOp" || rs[1].Op != "NoOp" {
					t.Errorf("apply of list -o yaml: %+v, want two NoOps", rs)
				}
			}},
			{"name feeds get", []string{"list", "Pod.v1", "-n", "cli", "-o", "name"}, func(t *testing.T, k *cli, out string) {
				refs := lines(out)
				if !slices.Equal(refs, []string{"Pod.v1/db", "Pod.v1/web"}) {
					t.Fatalf("list -o name: %q", out)
				}
				for _, ref := range refs {
					if o := parseObj(t, k.ok("", "get", ref, "-n", "cli")); "Pod.v1/"+o.meta("name") != ref {
						t.Errorf("get %s -n cli: %v", ref, o)
					}
				}
			}},
			{"name across namespaces", []string{"list", "Pod.v1", "-o", "name"}, func(t *testing.T, _ *cli, out string) {
				if got := lines(out); !slices.Equal(got, []string{"Pod.v1/db", "Pod.v1/web", "Pod.v1/web"}) {
					t.Errorf("list -o name: %q", out)
				}
			}},
			{"all namespaces", []string{"list", "Pod.v1", "-A"}, func(t *testing.T, k *cli, out string) {
				got := parseList(t, out).names(t)
				if !slices.Equal(got, []string{"cli/db", "cli/web", "other/web"}) {
					t.Errorf("list -A: %v", got)
				}
				if without := parseList(t, k.ok("", "list", "Pod.v1")).names(t); !slices.Equal(without, got) {
					t.Errorf("list without -n: %v, list -A: %v", without, got)
				}
			}},
			{"field selector on the name", []string{"list", "Pod.v1", "--field-selector", "metadata.name=web"}, func(t *testing.T, _ *cli, out string) {
				if got := parseList(t, out).names(t); !slices.Equal(got, []string{"cli/web", "other/web"}) {
					t.Errorf("list --field-selector metadata.name=web: %v", got)
				}
			}},
			{"field selector, negated", []string{"list", "Pod.v1", "-A", "--field-selector", "metadata.name!=web"}, func(t *testing.T, _ *cli, out string) {
				if got := parseList(t, out).names(t); !slices.Equal(got, []string{"cli/db"}) {
					t.Errorf("list --field-selector metadata.name!=web: %v", got)
				}
			}},
			{"field selector and -n", []string{"list", "Pod.v1", "-n", "other", "--field-selector", "metadata.name=web", "-o", "name"}, func(t *testing.T, _ *cli, out string) {
				if out != "Pod.v1/web\n" {
					t.Errorf("list -n other --field-selector metadata.name=web -o name: %q", out)
				}
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				k := on(t)
				tt.want(t, k, k.ok("", tt.give...))
			})
		}

		k := on(t)
		if first := k.usage("list", "Pod.v1", "-A", "-n", "cli"); !strings.Contains(first, "[namespace all-namespaces]") {
			t.Errorf("list -A -n: %q", first)
		}
		if msg := k.fail("Invalid", "", "list", "Pod.v1", "-o", "name", "--limit", "1"); !strings.Contains(msg, "-o name prints every name") {
			t.Errorf("list -o name --limit 1: %q", msg)
		}
		if msg := k.fail("Invalid", "", "list", "Pod.v1", "--field-selector", "spec.name=n1"); !strings.Contains(msg, `unknown field "spec.name"`) {
			t.Errorf("list --field-selector spec.name=n1: %q", msg)
		}
		// spec.nodeName, as a kubelet lists its Pods: a Pod without it has "".
		k.ok(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"bound","namespace":"nodes"},"spec":{"nodeName":"n1"}}`, "apply", "-f", "-")
		for sel, want := range map[string][]string{
			"spec.nodeName=n1":                        {"nodes/bound"},
			"spec.nodeName=n1,metadata.namespace=cli": nil,
			"spec.nodeName=,metadata.namespace=cli":   {"cli/db", "cli/web"},
			"spec.nodeName!=,metadata.name=bound":     {"nodes/bound"},
		} {
			if got := parseList(t, k.ok("", "list", "Pod.v1", "--field-selector", sel)).names(t); !slices.Equal(got, want) {
				t.Errorf("list --field-selector %s: %v, want %v", sel, got, want)
			}
		}
	})

	t.Run("manifests", func(t *testing.T) {
		k := on(t)
		// In the file's order, not the store's: db sorts before web.
		twoPods := "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: cli}\n---\n" +
			"apiVersion: v1\nkind: Pod\nmetadata: {name: db, namespace: cli}\n"
		got := lines(k.ok(twoPods, "get", "-f", "-"))
		if len(got) != 2 || got[0]+"\n" != webLine || parseObj(t, got[1]).meta("name") != "db" {
			t.Errorf("get -f of web and db: %q", got)
		}
		if out := k.ok(twoPods, "get", "-f", "-", "-o", "name"); out != "Pod.v1/web\nPod.v1/db\n" {
			t.Errorf("get -f -o name: %q", out)
		}
		y := k.ok(twoPods, "get", "-f", "-", "-o", "yaml")
		if docs := strings.Split(y, "\n---\n"); len(docs) != 2 || !sameJSON(t, fromYAML(t, docs[0]), webLine) {
			t.Errorf("get -f -o yaml: want two documents, web's first:\n%s", y)
		}
		r := k.run(twoPods+"---\napiVersion: v1\nkind: Pod\nmetadata: {name: nobody, namespace: cli}\n", "get", "-f", "-")
		if r.code != exitFailed || len(lines(r.stdout)) != 2 || r.stderr != "Error (NotFound): Pod.v1 \"cli/nobody\" not found\n" {
			t.Errorf("get -f whose third object does not exist: want two objects and NotFound:\n%v", r)
		}
		k.usage("get", "-f", "-", "-n", "cli")
		k.usage("get", "Pod.v1/web", "-f", "-")

		cms := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: cli}\ndata: {k: v}\n---\n" +
			"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b, namespace: cli}\n"
		results(t, k.ok(cms, "apply", "-f", "-"))
		if rs := results(t, k.ok(cms, "delete", "-f", "-")); len(rs) != 2 || rs[0].Op != "Deleted" || rs[1].Op != "Deleted" || rs[1].ResourceVersion <= rs[0].ResourceVersion {
			t.Errorf("delete -f: %+v, want a then b Deleted", rs)
		}
		k.fail("NotFound", "", "get", "ConfigMap.v1/a", "-n", "cli")
		if rs := results(t, k.ok(cms, "delete", "-f", "-")); len(rs) != 2 || rs[0].Op != "NoOp" || rs[1].Op != "NoOp" {
			t.Errorf("delete -f again: %+v, want two NoOps", rs)
		}
		// What list -o yaml prints, delete -f deletes.
		results(t, k.ok(cms, "apply", "-f", "-"))
		listed := k.ok("", "list", "ConfigMap.v1", "-n", "cli", "-o", "yaml")
		if out := k.ok(listed, "delete", "-f", "-", "-o", "name"); out != "ConfigMap.v1/a\nConfigMap.v1/b\n" {
			t.Errorf("delete -f of list -o yaml, -o name: %q", out)
		}
		if got := parseList(t, k.ok("", "list", "ConfigMap.v1", "-n", "cli")).Items; len(got) != 0 {
			t.Errorf("after delete -f of the list, ConfigMaps remain: %s", got)
		}
		k.usage("delete", "-f", "-", "--resource-version", "3")
		k.usage("delete", "-f", "-", "-n", "cli")
	})

	t.Run("hints", func(t *testing.T) {
		tests := []struct {
			give       []string
			wantReason string
			want       string // the whole message
		}{
			{[]string{"get", "Pod.v1"}, "Invalid",
				`REF "Pod.v1" names a type, not an object: kstore list Pod.v1 prints the objects of a type; get takes KIND.VERSION[.GROUP]/NAME, such as Pod.v1/web`},
			{[]string{"get", "Deployment.v1.apps", "-n", "cli"}, "Invalid",
				`REF "Deployment.v1.apps" names a type, not an object: kstore list Deployment.v1.apps -n cli prints the objects of a type; get takes KIND.VERSION[.GROUP]/NAME, such as Deployment.v1.apps/web`},
			{[]string{"get", "Pod.v1/web"}, "NotFound",
				`Pod.v1 "web" not found: no namespace was given (-n), so a cluster-scoped object was looked for; there is a Pod.v1 "web" in namespaces "cli" and "other": add -n NAMESPACE`},
			{[]string{"get", "Pod.v1/db"}, "NotFound",
				`Pod.v1 "db" not found: no namespace was given (-n), so a cluster-scoped object was looked for; there is a Pod.v1 "db" in namespace "cli": add -n cli`},
			{[]string{"get", "Pod.v1/nobody"}, "NotFound",
				`Pod.v1 "nobody" not found: no namespace was given (-n), so a cluster-scoped object was looked for, and Pod.v1 objects are namespaced: add -n NAMESPACE (no namespace holds one named "nobody" either)`},
			{[]string{"get", "Widget.v1.example.com/nobody"}, "NotFound",
				`Widget.v1.example.com "nobody" not found: no namespace was given (-n), so a cluster-scoped object was looked for, and Widget.v1.example.com objects are namespaced: add -n NAMESPACE (no namespace holds one named "nobody" either)`},
			{[]string{"get", "Namespace.v1/nobody"}, "NotFound", `Namespace.v1 "nobody" not found`},
			{[]string{"get", "Pod.v1/nobody", "-n", "cli"}, "NotFound", `Pod.v1 "cli/nobody" not found`},
			{[]string{"get", "pod.v1/web", "-n", "cli"}, "NotFound",
				`pod.v1 "cli/web" not found: kinds are case-sensitive, and Kubernetes spells this one Pod: did you mean Pod.v1/web -n cli?`},
			{[]string{"get", "configmap.v1/settings"}, "NotFound",
				`configmap.v1 "settings" not found: kinds are case-sensitive, and Kubernetes spells this one ConfigMap: did you mean ConfigMap.v1/settings -n NAMESPACE?`},
			{[]string{"get", "Deployment.v1/web", "-n", "cli"}, "NotFound",
				`Deployment.v1 "cli/web" not found: Kubernetes' Deployment is in the group apps: did you mean Deployment.v1.apps/web -n cli?`},
			{[]string{"get", "widget.v1.example.com/w", "-n", "cli"}, "NotFound",
				`widget.v1.example.com "cli/w" not found: kinds are case-sensitive, and objects of Widget.v1.example.com are stored: did you mean Widget.v1.example.com/w -n cli?`},
			{[]string{"get", "gadget.v1.example.com/g"}, "NotFound",
				`gadget.v1.example.com "g" not found: kinds are case-sensitive, spelled as in the objects' "kind" field, such as Pod or ConfigMap`},
		}
		for _, tt := range tests {
			t.Run(strings.Join(tt.give, " "), func(t *testing.T) {
				if got := on(t).fail(tt.wantReason, "", tt.give...); got != tt.want {
					t.Errorf("kstore %s:\n got %s\nwant %s", strings.Join(tt.give, " "), got, tt.want)
				}
			})
		}
	})

	t.Run("writes", func(t *testing.T) {
		k := on(t)
		var res struct {
			Op              string          `json:"op"`
			ResourceVersion uint64          `json:"resource_version"`
			Object          json.RawMessage `json:"object"`
		}
		out := k.ok(webLine, "apply", "-f", "-", "-o", "yaml")
		if err := strictUnmarshal(fromYAML(t, out), &res); err != nil || !strings.HasPrefix(out, "op: NoOp\n") || res.Op != "NoOp" || !sameJSON(t, string(res.Object), webLine) {
			t.Errorf("apply -o yaml: %q: %v", out, err)
		}
		if out := k.ok(webLine, "apply", "-f", "-", "-o", "name"); out != "Pod.v1/web\n" {
			t.Errorf("apply -o name: %q", out)
		}
		k.fail("Invalid", webLine, "apply", "-f", "-", "-o", "table")
	})

	t.Run("do defaults the reason", func(t *testing.T) {
		k := on(t)
		key := `{"group":"","version":"v1","kind":"ConfigMap","namespace":"cli","name":"do"}`
		put := `{"kind":"put","key":` + key + `,"value":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"do","namespace":"cli"}}}`
		result1(t, k.ok(put+"\n", "do", "-f", "-"), "Created")
		if out := k.ok(`{"kind":"delete","key":`+key+"}\n", "do", "-f", "-", "--reason", "garbage_collector", "-o", "name"); out != "ConfigMap.v1/do\n" {
			t.Errorf("do -o name: %q", out)
		}
		k.fail("NotFound", "", "get", "ConfigMap.v1/do", "-n", "cli")
		if msg := k.fail("Invalid", put+"\n", "do", "-f", "-", "--reason", "whim"); !strings.HasPrefix(msg, `--reason: unknown reason "whim"`) {
			t.Errorf("do --reason whim: %q", msg)
		}
		// A reason given is the line's own: an unknown one is refused, not replaced.
		if msg := k.fail("Invalid", strings.Replace(put, `{"kind"`, `{"reason":"whim","kind"`, 1)+"\n", "do", "-f", "-"); !strings.Contains(msg, `unknown reason "whim"`) {
			t.Errorf("do of a line with reason whim: %q", msg)
		}
	})

	t.Run("watch bookmark interval", func(t *testing.T) {
		k := on(t)
		st := k.status()
		start := time.Now()
		// A namespace nothing is written to: every line is a bookmark, whatever the revision.
		w := startWatch(t, k, "Pod.v1", "-n", "quiet", "--resource-version", fmt.Sprint(st.Applied), "--bookmarks", "--bookmark-interval", "1s")
		w.expect(t, "BOOKMARK", "")
		w.expect(t, "BOOKMARK", "")
		t.Logf("two bookmarks at --bookmark-interval 1s in %v (the node's interval: a minute)", time.Since(start).Round(time.Millisecond))
		for _, give := range [][]string{
			{"--bookmarks", "--bookmark-interval", "500ms"},
			{"--bookmarks", "--bookmark-interval", "11m"},
			{"--bookmark-interval", "5s"},
		} {
			if msg := k.fail("Invalid", "", append([]string{"watch", "Pod.v1"}, give...)...); !strings.Contains(msg, "--bookmark") {
				t.Errorf("watch %v: %q, want a sentence about the bookmark flags", give, msg)
			}
		}
	})
	t.Run("version", func(t *testing.T) {
		k := on(t)
		for _, give := range [][]string{{"version", "--server"}, {"version", "--endpoints", addr}} {
			var v versionOutput
			if err := strictUnmarshal(k.ok("", give...), &v); err != nil {
				t.Fatalf("kstore %s: %v", strings.Join(give, " "), err)
			}
			checkClientVersion(t, v)
			if want := (serverVersion{NodeID: 1, Version: messages.Version, ProtocolVersion: messages.ProtocolVersion}); v.Server == nil || *v.Server != want {
				t.Errorf("kstore %s: server %+v, want %+v", strings.Join(give, " "), v.Server, want)
			}
		}
		var st map[string]any
		if err := json.Unmarshal([]byte(k.ok("", "status")), &st); err != nil || st["version"] != messages.Version || st["protocol_version"] != float64(messages.ProtocolVersion) {
			t.Errorf("status: %v (%v), want version %q and protocol_version %d", st, err, messages.Version, messages.ProtocolVersion)
		}
	})
}

// TestCLIVersionOffline runs version and --version with no node: they ask none.
func TestCLIVersionOffline(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the kstore binary")
	}
	k := &cli{t: t, bin: kstoreBinary(t), endpoints: freeAddr(t)} // nothing listens there
	out := k.ok("", "version")
	var v versionOutput
	if err := strictUnmarshal(out, &v); err != nil || v.Server != nil {
		t.Fatalf("version printed %q: %v", out, err)
	}
	checkClientVersion(t, v)
	if again := k.ok("", "--version"); again != out {
		t.Errorf("--version printed %q, version %q", again, out)
	}
	if y := k.ok("", "version", "-o", "yaml"); !sameJSON(t, fromYAML(t, y), out) {
		t.Errorf("version -o yaml printed %q, want %q as YAML", y, out)
	}
	if msg := k.fail("Unavailable", "", "version", "--server", "--timeout", "1s"); !strings.Contains(msg, "no kstore node listens at "+k.endpoints) {
		t.Errorf("version --server with no node: %q", msg)
	}
}

var revision = regexp.MustCompile(`^[0-9a-f]{40}$`)

// checkClientVersion checks the binary's part of version against this test's build: the go
// command builds the binary with the toolchain that runs the test.
func checkClientVersion(t *testing.T, v versionOutput) {
	t.Helper()
	if v.Version != messages.Version || v.GoVersion != runtime.Version() || v.ProtocolVersion != messages.ProtocolVersion {
		t.Errorf("version %+v, want version %q, go_version %q, protocol_version %d", v, messages.Version, runtime.Version(), messages.ProtocolVersion)
	}
	// A checkout stamps the revision, unless GOFLAGS has -buildvcs=false.
	if v.Commit == "unknown" && v.Modified != nil || v.Commit != "unknown" && (!revision.MatchString(v.Commit) || v.Modified == nil) {
		t.Errorf("commit %q, modified %v: want a revision and modified, or unknown alone", v.Commit, v.Modified)
	}
}

func TestBuildCommit(t *testing.T) {
	yes, no := true, false
	rev := "75142a5f7d67e54492bf506925459429dd1f136a"
	tests := []struct {
		name         string
		give         *debug.BuildInfo
		ok           bool
		wantCommit   string
		wantModified *bool
	}{
		{name: "no build info", give: nil, ok: false, wantCommit: "unknown"},
		{name: "not from a checkout", give: &debug.BuildInfo{Settings: []debug.BuildSetting{{Key: "-tags", Value: "failpoints"}}}, ok: true, wantCommit: "unknown"},
		{name: "clean", give: &debug.BuildInfo{Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: "false"}}}, ok: true, wantCommit: rev, wantModified: &no},
		{name: "modified", give: &debug.BuildInfo{Settings: []debug.BuildSetting{{Key: "vcs.modified", Value: "true"}, {Key: "vcs.revision", Value: rev}}}, ok: true, wantCommit: rev, wantModified: &yes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			commit, modified := buildCommit(tt.give, tt.ok)
			if commit != tt.wantCommit || (modified == nil) != (tt.wantModified == nil) || modified != nil && *modified != *tt.wantModified {
				t.Errorf("buildCommit = %q, %v; want %q, %v", commit, modified, tt.wantCommit, tt.wantModified)
			}
		})
	}
}

func TestWithReason(t *testing.T) {
	tests := []struct {
		give, want string
	}{
		{give: `{"kind":"delete"}`, want: `{"reason":"operator","kind":"delete"}`},
		{give: `{ "kind" : "delete" }`, want: `{"reason":"operator", "kind" : "delete" }`},
		{give: `{}`, want: `{"reason":"operator"}`},
		{give: `{ }`, want: `{"reason":"operator" }`},
		{give: `{"kind":"delete","reason":"controller"}`, want: `{"kind":"delete","reason":"controller"}`},
		{give: `{"kind":"delete","reason":""}`, want: `{"kind":"delete","reason":""}`},
		{give: `{"kind":"delete","reason":null}`, want: `{"kind":"delete","reason":null}`},
		{give: `{"value":{"reason":"x"}}`, want: `{"reason":"operator","value":{"reason":"x"}}`},
		{give: `not json`, want: `not json`},
		{give: `{"kind":`, want: `{"kind":`},
	}
	for _, tt := range tests {
		if got := string(withReason([]byte(tt.give), "operator")); got != tt.want {
			t.Errorf("withReason(%s) = %s, want %s", tt.give, got, tt.want)
		}
	}
}
