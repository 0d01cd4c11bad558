package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kstore/kstore/catalogactor/object"
)

// TestEndToEnd runs a node and drives every command against it, then checks what bad input,
// a second node on the same data dir and a crash (SIGKILL in the middle of a burst of writes)
// do. Each step depends on the ones before it.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the kstore binary")
	}
	bin := kstoreBinary(t)
	dir, addr := t.TempDir(), freeAddr(t)
	srv := startServer(t, bin, dir, addr)
	k := &cli{t: t, bin: bin, endpoints: addr}
	k.waitLeader()
	tmp := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}

	// apply: Created, NoOp on the same content, Replaced on new content (YAML this time).
	web1 := pod("e2e", "web", "nginx:1", map[string]string{"app": "web"})
	created := result1(t, k.ok(web1, "apply", "-f", "-"), "Created")
	if again := result1(t, k.ok(web1, "apply", "-f", "-"), "NoOp"); again.ResourceVersion != created.ResourceVersion {
		t.Errorf("NoOp apply: resource_version %d, want the object's %d", again.ResourceVersion, created.ResourceVersion)
	}
	webYAML := "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: e2e\n  labels: {app: web}\nspec:\n  containers:\n  - {name: c, image: \"nginx:2\"}\n"
	replaced := result1(t, k.ok("", "apply", "-f", file("web.yaml", webYAML), "--reason", "controller"), "Replaced")
	if replaced.ResourceVersion <= created.ResourceVersion {
		t.Errorf("Replaced at %d, not after Created at %d", replaced.ResourceVersion, created.ResourceVersion)
	}

	// get, now and at the older revision.
	web := parseObj(t, k.ok("", "get", "Pod.v1/web", "-n", "e2e"))
	if web.image() != "nginx:2" || web.meta("resourceVersion") != strconv.FormatUint(replaced.ResourceVersion, 10) || web.meta("uid") == "" {
		t.Errorf("get after replace: %v", web)
	}
	old := parseObj(t, k.ok("", "get", "Pod.v1/web", "-n", "e2e", "--resource-version", strconv.FormatUint(created.ResourceVersion, 10)))
	if old.image() != "nginx:1" || old.meta("resourceVersion") != strconv.FormatUint(created.ResourceVersion, 10) {
		t.Errorf("get --resource-version %d: %v, want the first content", created.ResourceVersion, old)
	}
	// Without -n the get is of a cluster-scoped object; the refusal says where the name is.
	if msg := k.fail("NotFound", "", "get", "Pod.v1/web"); !strings.HasPrefix(msg, `Pod.v1 "web" not found: no namespace was given (-n)`) ||
		!strings.HasSuffix(msg, `there is a Pod.v1 "web" in namespace "e2e": add -n e2e`) {
		t.Errorf("get without -n names a cluster-scoped object; got %q", msg)
	}

	// create: AlreadyExists for web, Created for db; -o json adds the object.
	k.fail("AlreadyExists", web1, "create", "-f", "-")
	db := result1(t, k.ok(pod("e2e", "db", "postgres:16", map[string]string{"app": "db"}), "create", "-f", "-", "-o", "json"), "Created")
	if o := parseObj(t, string(db.Object)); o.meta("name") != "db" || o.meta("resourceVersion") != strconv.FormatUint(db.ResourceVersion, 10) {
		t.Errorf("create -o json: object %s", db.Object)
	}

	// replace: a stale metadata.resourceVersion is a Conflict; the current one replaces.
	stale := strings.Replace(web1, `"namespace":"e2e"`, fmt.Sprintf(`"namespace":"e2e","resourceVersion":"%d"`, created.ResourceVersion), 1)
	k.fail("Conflict", stale, "replace", "-f", "-")
	current := strings.Replace(stale, fmt.Sprintf(`"resourceVersion":"%d"`, created.ResourceVersion), fmt.Sprintf(`"resourceVersion":"%d"`, replaced.ResourceVersion), 1)
	if rv := result1(t, k.ok(current, "replace", "-f", "-"), "Replaced").ResourceVersion; rv <= replaced.ResourceVersion {
		t.Errorf("replace at %d, not after the apply at %d", rv, replaced.ResourceVersion)
	}
	k.fail("NotFound", pod("e2e", "nobody", "x", nil), "replace", "-f", "-")

	// patch: merge and json (from a file), preconditions, and the refusals.
	rv := result1(t, k.ok("", "patch", "Pod.v1/web", "-n", "e2e", "-p", `{"metadata":{"labels":{"tier":"front"}}}`), "Patched").ResourceVersion
	jsonPatch := file("patch.json", `[{"op":"replace","path":"/spec/containers/0/image","value":"nginx:3"}]`)
	k.fail("Conflict", "", "patch", "Pod.v1/web", "-n", "e2e", "--type", "json", "-p", "@"+jsonPatch, "--resource-version", strconv.FormatUint(rv-1, 10))
	rv = result1(t, k.ok("", "patch", "Pod.v1/web", "-n", "e2e", "--type", "json", "-p", "@"+jsonPatch, "--resource-version", strconv.FormatUint(rv, 10)), "Patched").ResourceVersion
	web = parseObj(t, k.ok("", "get", "Pod.v1/web", "-n", "e2e"))
	if web.image() != "nginx:3" || web.label("tier") != "front" || web.label("app") != "web" || web.meta("resourceVersion") != strconv.FormatUint(rv, 10) {
		t.Errorf("after the patches: %v", web)
	}
	if msg := k.fail("Invalid", "", "patch", "Pod.v1/web", "-n", "e2e", "-p", `{"metadata":{"name":"other"}}`); !strings.Contains(msg, "name") {
		t.Errorf("a patch renaming the object: %q", msg)
	}
	k.fail("Invalid", "", "patch", "Pod.v1/web", "-n", "e2e", "--type", "strategic", "-p", `{}`)
	k.fail("NotFound", "", "patch", "Pod.v1/nobody", "-n", "e2e", "-p", `{"metadata":{"labels":{"a":"b"}}}`)

	// Several objects per file: YAML documents and a List, one line each, in order; the first
	// refusal stops the rest.
	multi := file("multi.yaml", "# two pods\n---\n"+
		"apiVersion: v1\nkind: Pod\nmetadata: {name: m1, namespace: e2e}\n---\n"+
		"apiVersion: v1\nkind: Pod\nmetadata: {name: m2, namespace: e2e}\n")
	if rs := results(t, k.ok("", "apply", "-f", multi)); len(rs) != 2 || rs[0].Op != "Created" || rs[1].Op != "Created" || rs[1].ResourceVersion <= rs[0].ResourceVersion {
		t.Errorf("multi-document apply: %+v", rs)
	}
	list := fmt.Sprintf(`{"apiVersion":"v1","kind":"List","items":[%s,%s]}`, pod("e2e", "l1", "x", nil), pod("e2e", "m1", "x", nil))
	if rs := results(t, k.ok(list, "apply", "-f", "-")); len(rs) != 2 || rs[0].Op != "Created" || rs[1].Op != "Replaced" {
		t.Errorf("List apply: %+v", rs)
	}
	stream := pod("e2e", "s1", "x", nil) + "\n" + web1 + "\n" + pod("e2e", "s2", "x", nil)
	r := k.run(stream, "create", "-f", "-")
	if r.code != exitFailed || len(results(t, r.stdout)) != 1 || !strings.HasPrefix(r.stderr, `Error (AlreadyExists): Pod.v1 "e2e/web" already exists`) {
		t.Errorf("create of a stream whose second object exists: want one result and AlreadyExists:\n%v", r)
	}
	k.fail("NotFound", "", "get", "Pod.v1/s2", "-n", "e2e")

	// A group with dots.
	ingress := `{"apiVersion":"networking.k8s.io/v1","kind":"Ingress","metadata":{"name":"x","namespace":"e2e"},"spec":{}}`
	result1(t, k.ok(ingress, "apply", "-f", "-"), "Created")
	if o := parseObj(t, k.ok("", "get", "Ingress.v1.networking.k8s.io/x", "-n", "e2e")); o["apiVersion"] != "networking.k8s.io/v1" {
		t.Errorf("get Ingress: %v", o)
	}

	// list: a label selector, and paging through a consistent snapshot.
	if got := parseList(t, k.ok("", "list", "Pod.v1", "-n", "e2e", "-l", "app in (web,db)")).names(t); !slices.Equal(got, []string{"e2e/db", "e2e/web"}) {
		t.Errorf("list -l 'app in (web,db)': %v", got)
	}
	if got := parseList(t, k.ok("", "list", "Pod.v1", "-l", "tier=front")).names(t); !slices.Equal(got, []string{"e2e/web"}) {
		t.Errorf("list -l tier=front across namespaces: %v", got)
	}
	var want []string
	for i := range 5 {
		result1(t, k.ok(pod("paging", fmt.Sprintf("p%d", i), "x", nil), "apply", "-f", "-"), "Created")
		want = append(want, fmt.Sprintf("paging/p%d", i))
	}
	var seen []string
	first := parseList(t, k.ok("", "list", "Pod.v1", "-n", "paging", "--limit", "2"))
	page := first
	for pages := 1; ; pages++ {
		if page.ResourceVersion != first.ResourceVersion {
			t.Errorf("page %d at resource_version %d, the first at %d", pages, page.ResourceVersion, first.ResourceVersion)
		}
		if len(page.Items) > 2 {
			t.Errorf("page %d has %d items, over --limit 2", pages, len(page.Items))
		}
		seen = append(seen, page.names(t)...)
		if page.Continue == "" {
			break
		}
		if pages == 1 {
			// A write between pages is not in this list: every page reads the first's revision.
			result1(t, k.ok(pod("paging", "p9", "x", nil), "apply", "-f", "-"), "Created")
		}
		if pages > 5 {
			t.Fatalf("more than 5 pages for 5 items: %v", seen)
		}
		page = parseList(t, k.ok("", "list", "Pod.v1", "-n", "paging", "--limit", "2", "--continue", page.Continue))
	}
	if !slices.Equal(seen, want) {
		t.Errorf("paged list saw %v, want each of %v once", seen, want)
	}
	if raw := k.ok("", "list", "Pod.v1", "-n", "paging"); strings.Contains(raw, `"continue"`) {
		t.Errorf("an unpaged list has a continue field: %s", raw)
	}
	k.fail("Invalid", "", "list", "Pod.v1", "-n", "paging", "--limit", "2", "--continue", "garbage")

	// delete: Deleted, then NoOp; get is NotFound; a stale precondition is a Conflict.
	k.fail("Conflict", "", "delete", "Pod.v1/db", "-n", "e2e", "--resource-version", strconv.FormatUint(db.ResourceVersion+1000, 10))
	deleted := result1(t, k.ok("", "delete", "Pod.v1/db", "-n", "e2e", "--reason", "garbage_collector"), "Deleted")
	result1(t, k.ok("", "delete", "Pod.v1/db", "-n", "e2e"), "NoOp")
	if msg := k.fail("NotFound", "", "get", "Pod.v1/db", "-n", "e2e"); msg != `Pod.v1 "e2e/db" not found` {
		t.Errorf("get after delete: %q", msg)
	}

	// status.
	st := k.status()
	if st.NodeID != 1 || st.Leader != 1 || st.Term == 0 || st.Commit < deleted.ResourceVersion || st.Applied > st.Commit {
		t.Errorf("status: %+v (last write at %d)", st, deleted.ResourceVersion)
	}

	// do: commands in the wire form, from a file and from stdin.
	cmds := file("cmds.jsonl", "# set up\n"+
		putCommand("e2e", "d1", pod("e2e", "d1", "x", nil))+"\n\n"+
		`{"kind":"create","key":{"group":"","version":"v1","kind":"Pod","namespace":"e2e","name":"d2"},"value":`+pod("e2e", "d2", "x", nil)+`,"reason":"scheduler"}`+"\n"+
		`{"kind":"patch","key":{"group":"","version":"v1","kind":"Pod","namespace":"e2e","name":"d2"},"patch":[{"op":"add","path":"/metadata/labels","value":{"a":"b"}}],"patch_type":"json","reason":"controller"}`+"\n"+
		`{"kind":"delete","key":{"group":"","version":"v1","kind":"Pod","namespace":"e2e","name":"d1"},"reason":"garbage_collector"}`)
	var ops []string
	for _, r := range results(t, k.ok("", "do", "-f", cmds)) {
		ops = append(ops, r.Op)
	}
	if !slices.Equal(ops, []string{"Created", "Created", "Patched", "Deleted"}) {
		t.Errorf("do -f: ops %v", ops)
	}
	result1(t, k.ok(putCommand("e2e", "d1", pod("e2e", "d1", "x", nil)), "do", "-f", "-"), "Created")
	r = k.run(putCommand("e2e", "d3", pod("e2e", "d3", "x", nil))+"\nnot json\n"+putCommand("e2e", "d4", pod("e2e", "d4", "x", nil)), "do", "-f", "-")
	if r.code != exitFailed || len(results(t, r.stdout)) != 1 || !strings.HasPrefix(r.stderr, "Error (Invalid): stdin, line 2: command is not valid JSON") {
		t.Errorf("do with a bad second line: want the first result, then Invalid naming line 2:\n%v", r)
	}
	k.fail("NotFound", "", "get", "Pod.v1/d4", "-n", "e2e")

	// Endpoints: a closed port is refused at once; the next endpoint is used.
	closed := freeAddr(t)
	start := time.Now()
	k.fail("Unavailable", "", "status", "--endpoints", closed)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("status of a closed port took %v", d)
	}
	k.ok("", "status", "--endpoints", closed+","+addr)

	t.Run("bad input changes nothing", func(t *testing.T) {
		k := &cli{t: t, bin: bin, endpoints: addr}
		before := k.snapshot()
		big := fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"big","namespace":"e2e"},"data":{"x":%q}}`, strings.Repeat("x", object.MaxSize))
		tests := []struct {
			name   string
			reason string
			stdin  string
			args   []string
		}{
			{"invalid JSON", "Invalid", `{"apiVersion":"v1","kind":"Pod",`, []string{"apply", "-f", "-"}},
			{"invalid YAML", "Invalid", "apiVersion: v1\nkind: Pod\n metadata: {name: x}\n", []string{"apply", "-f", "-"}},
			{"JSON array", "Invalid", "[" + pod("e2e", "arr", "x", nil) + "]", []string{"apply", "-f", "-"}},
			{"missing apiVersion", "Invalid", `{"kind":"Pod","metadata":{"name":"x","namespace":"e2e"}}`, []string{"apply", "-f", "-"}},
			{"missing kind", "Invalid", `{"apiVersion":"v1","metadata":{"name":"x","namespace":"e2e"}}`, []string{"apply", "-f", "-"}},
			{"missing metadata.name", "Invalid", `{"apiVersion":"v1","kind":"Pod","metadata":{"namespace":"e2e"}}`, []string{"create", "-f", "-"}},
			{"bad name", "Invalid", pod("e2e", "Bad_Name", "x", nil), []string{"apply", "-f", "-"}},
			{"a bad object after a good one", "Invalid", pod("e2e", "good", "x", nil) + "\n" + pod("e2e", "Bad_Name", "x", nil), []string{"apply", "-f", "-"}},
			{"over 1.5 MiB", "TooLarge", big, []string{"apply", "-f", "-"}},
			{"unknown patch type", "Invalid", "", []string{"patch", "Pod.v1/web", "-n", "e2e", "--type", "strategic", "-p", `{"metadata":{"labels":{"a":"b"}}}`}},
			{"merge patch not an object", "Invalid", "", []string{"patch", "Pod.v1/web", "-n", "e2e", "-p", `[1]`}},
			{"malformed REF", "Invalid", "", []string{"delete", "Pod/web", "-n", "e2e"}},
			// Through kstore do the node itself checks: nothing is validated on the way.
			{"node: bad name", "Invalid", putCommand("e2e", "Bad_Name", pod("e2e", "Bad_Name", "x", nil)), []string{"do", "-f", "-"}},
			{"node: missing apiVersion", "Invalid", putCommand("e2e", "x", `{"kind":"Pod","metadata":{"name":"x","namespace":"e2e"}}`), []string{"do", "-f", "-"}},
			{"node: key and object disagree", "Invalid", putCommand("e2e", "x", pod("e2e", "y", "x", nil)), []string{"do", "-f", "-"}},
			{"node: value is an array", "Invalid", putCommand("e2e", "x", `[1]`), []string{"do", "-f", "-"}},
			{"node: over 1.5 MiB", "TooLarge", `{"kind":"put","key":{"group":"","version":"v1","kind":"ConfigMap","namespace":"e2e","name":"big"},"value":` + big + `,"reason":"operator"}`, []string{"do", "-f", "-"}},
			{"node: JSON patch with a bad op", "Invalid", `{"kind":"patch","key":{"group":"","version":"v1","kind":"Pod","namespace":"e2e","name":"web"},"patch":[{"op":"frob","path":"/x"}],"patch_type":"json","reason":"operator"}`, []string{"do", "-f", "-"}},
		}
		for _, tt := range tests {
			msg := k.fail(tt.reason, tt.stdin, tt.args...)
			t.Logf("%s: %s", tt.name, msg)
			if after := k.snapshot(); after != before {
				t.Fatalf("%s changed the store:\nbefore %s\nafter  %s", tt.name, before, after)
			}
		}
	})

	t.Run("a second node on the same data dir or address fails at once", func(t *testing.T) {
		k := &cli{t: t, bin: bin, endpoints: addr}
		start := time.Now()
		r := k.run("", "serve", "--data-dir", dir, "--listen", "127.0.0.1:0")
		if r.code != exitFailed || !strings.HasPrefix(r.stderr, "Error: ") || !strings.Contains(r.stderr, "data dir "+dir+" is in use by another kstore node") || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("second node on the data dir:\n%v", r)
		}
		r = k.run("", "serve", "--data-dir", t.TempDir(), "--listen", addr)
		if r.code != exitFailed || !strings.HasPrefix(r.stderr, "Error: ") || !strings.Contains(r.stderr, "cannot listen on "+addr+": ") || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("second node on the address:\n%v", r)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("the two refusals took %v", d)
		}
		k.status() // the first node is unharmed
	})

	// Crash safety: SIGKILL the node in the middle of a burst of writes; every acknowledged
	// write must be there after a restart, at the resource_version it was acknowledged with.
	before := parseList(t, k.ok("", "list", "Pod.v1", "-n", "e2e")).Items
	acked := crashBurst(t, k, srv)
	if code := srv.wait(t, 10*time.Second); code != -1 {
		t.Errorf("the killed node exited with %d", code)
	}
	srv = startServer(t, bin, dir, addr)
	k.waitLeader()
	stored := map[string]string{}
	for _, it := range parseList(t, k.ok("", "list", "Pod.v1", "-n", "crash")).Items {
		o := parseObj(t, string(it))
		stored[o.meta("name")] = o.meta("resourceVersion")
	}
	for _, a := range acked {
		if got := stored[a.name]; got != strconv.FormatUint(a.ResourceVersion, 10) || a.Op != "Created" {
			t.Errorf("acknowledged %s %s at %d; after the restart: resourceVersion %q", a.name, a.Op, a.ResourceVersion, got)
		}
	}
	streamedAcks := 0
	for _, a := range acked {
		if strings.HasPrefix(a.name, "d") {
			streamedAcks++
		}
	}
	t.Logf("%d writes acknowledged before the kill (%d by apply, %d by do), %d objects after the restart",
		len(acked), len(acked)-streamedAcks, streamedAcks, len(stored))
	if after := parseList(t, k.ok("", "list", "Pod.v1", "-n", "e2e")).Items; !slices.EqualFunc(after, before, slices.Equal) {
		t.Errorf("namespace e2e changed across the crash:\nbefore %s\nafter  %s", before, after)
	}

	// SIGTERM stops the node cleanly.
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := srv.wait(t, 20*time.Second); code != 0 {
		t.Errorf("kstore serve exited %d on SIGTERM:\n%s", code, srv.log)
	}
	if log := srv.log.String(); hasKstoreRace(log) || strings.Contains(log, `"level":"error"`) {
		t.Errorf("the node logged errors or races:\n%s", log)
	}
}

type ack struct {
	writeResult
	name string
}

// crashBurst writes distinct Pods in namespace crash from 8 apply loops and one kstore do
// stream at once, SIGKILLs the node once killAfter writes are acknowledged, and returns every
// acknowledged write.
func crashBurst(t *testing.T, k *cli, srv *server) []ack {
	const (
		appliers      = 8
		applyEach     = 50
		streamed      = 1000
		killAfter     = 300
		clientTimeout = "2s"
	)
	var (
		mu     sync.Mutex
		acked  []ack
		errs   []string
		killed = make(chan struct{})
		kill   sync.Once
		wg     sync.WaitGroup
	)
	record := func(name, line string) bool {
		var r writeResult
		if err := json.Unmarshal([]byte(line), &r); err != nil || r.Op == "" {
			mu.Lock()
			errs = append(errs, fmt.Sprintf("%s: result %q", name, line))
			mu.Unlock()
			return false
		}
		mu.Lock()
		acked = append(acked, ack{r, name})
		if len(acked) >= killAfter {
			kill.Do(func() { close(killed) })
		}
		mu.Unlock()
		return true
	}
	for g := range appliers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range applyEach {
				name := fmt.Sprintf("a%d-%02d", g, i)
				r, err := k.exec(pod("crash", name, "x", nil), "apply", "-f", "-", "--timeout", clientTimeout)
				if err != nil || r.code != 0 {
					// Refused or cut off by the kill: not acknowledged, and nothing more to do.
					return
				}
				if !record(name, strings.TrimSpace(r.stdout)) {
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		cmd := exec.Command(k.bin, "do", "-f", "-", "--timeout", clientTimeout)
		cmd.Env = k.env()
		stdin, err := cmd.StdinPipe()
		if err != nil {
			panic(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			panic(err)
		}
		if err := cmd.Start(); err != nil {
			mu.Lock()
			errs = append(errs, "start kstore do: "+err.Error())
			mu.Unlock()
			return
		}
		results := bufio.NewScanner(stdout)
		for i := range streamed {
			name := fmt.Sprintf("d%04d", i)
			if _, err := io.WriteString(stdin, putCommand("crash", name, pod("crash", name, "x", nil))+"\n"); err != nil {
				break
			}
			// One command at a time: its result is read as it comes, before the next is sent.
			if !results.Scan() || !record(name, results.Text()) {
				break
			}
		}
		stdin.Close()
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
	}()

	finished := make(chan struct{})
	go func() {
		wg.Wait()
		close(finished)
	}()
	select {
	case <-killed:
	case <-finished:
		t.Fatalf("the burst ended before %d writes were acknowledged: %d acknowledged, errors %v", killAfter, len(acked), errs)
	case <-time.After(60 * time.Second):
		t.Fatalf("fewer than %d writes acknowledged within 60s", killAfter)
	}
	if err := srv.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-finished:
	case <-time.After(commandTimeout + 5*time.Second):
		t.Fatal("the writers did not give up after the kill")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(errs) > 0 {
		t.Errorf("unexpected output during the burst: %v", errs)
	}
	return slices.Clone(acked)
}
