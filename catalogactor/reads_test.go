package catalogactor

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/kstore/kstore/catalogactor/object"
	"github.com/kstore/kstore/messages"
)

// readsFixture is a catalog holding pods in three namespaces whose names share prefixes, a
// PodTemplate and a Pod of another group (which share the pods' key prefix up to a byte), and
// a short history: default/a patched at 12, default/e deleted at 13.
func readsFixture(t *testing.T) *catalog {
	t.Helper()
	c := newTestCatalog(t, 1_000_000)
	pod := func(ns, name, labels string) []byte { return podValue(ns, name, labels, "") }
	var entries []*raftpb.Entry
	for i, p := range []struct{ ns, name, labels string }{
		{"default", "a", `{"app":"web","tier":"front"}`}, // 2
		{"default", "b", `{"app":"db","tier":"front"}`},  // 3
		{"default", "c", `{"app":"web"}`},                // 4
		{"default", "d", `{"app":"db"}`},                 // 5
		{"default", "e", `{"app":"web"}`},                // 6
		{"kube-system", "a", `{"app":"web"}`},            // 7
		{"kube-system", "z", ``},                         // 8
		{"defaultx", "a", `{"app":"web"}`},               // 9
	} {
		entries = append(entries, entry(t, uint64(2+i), putCmd(podKey(p.ns, p.name), pod(p.ns, p.name, p.labels))))
	}
	tmpl := &messages.ResourceKey{Version: "v1", Kind: "PodTemplate", Namespace: "default", Name: "a"}
	other := &messages.ResourceKey{Group: "example.com", Version: "v1", Kind: "Pod", Namespace: "default", Name: "a"}
	entries = append(entries,
		entry(t, 10, putCmd(tmpl, []byte(`{"apiVersion":"v1","kind":"PodTemplate","metadata":{"name":"a","namespace":"default"}}`))),
		entry(t, 11, putCmd(other, []byte(`{"apiVersion":"example.com/v1","kind":"Pod","metadata":{"labels":{"app":"web"},"name":"a","namespace":"default"}}`))),
		entry(t, 12, mergePatchCmd(podKey("default", "a"), `{"spec":{"n":1}}`)),
		entry(t, 13, deleteCmd(podKey("default", "e"))),
	)
	mustApply(t, c, entries...)
	return c
}

func TestReadGet(t *testing.T) {
	c := readsFixture(t)
	tests := []struct {
		name    string
		give    *messages.GetRequest
		ts      uint64
		wantRV  uint64 // 0: NotFound
		wantMsg string
	}{
		{"latest", &messages.GetRequest{Key: podKey("default", "a")}, 13, 12, ""},
		{"before the patch", &messages.GetRequest{Key: podKey("default", "a"), ResourceVersion: 11}, 11, 2, ""},
		{"at its creation", &messages.GetRequest{Key: podKey("default", "a"), ResourceVersion: 2}, 2, 2, ""},
		{"before its creation", &messages.GetRequest{Key: podKey("default", "b"), ResourceVersion: 2}, 2, 0, `Pod.v1 "default/b" not found at resourceVersion 2`},
		{"deleted, at the latest revision", &messages.GetRequest{Key: podKey("default", "e")}, 13, 0, `Pod.v1 "default/e" not found`},
		{"deleted, before the deletion", &messages.GetRequest{Key: podKey("default", "e"), ResourceVersion: 12}, 12, 6, ""},
		{"deleted, at the deletion", &messages.GetRequest{Key: podKey("default", "e"), ResourceVersion: 13}, 13, 0, "not found at resourceVersion 13"},
		{"never existed", &messages.GetRequest{Key: podKey("default", "nope")}, 13, 0, "not found"},
		{"same name, other namespace", &messages.GetRequest{Key: podKey("kube-system", "z")}, 13, 8, ""},
		{"same name, other group", &messages.GetRequest{Key: &messages.ResourceKey{Group: "example.com", Version: "v1", Kind: "Pod", Namespace: "default", Name: "a"}}, 13, 11, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := readGet(c.db, tt.give, tt.ts)
			if tt.wantRV == 0 {
				if got.GetStatus().GetReason() != messages.StatusReason_NOT_FOUND || !strings.Contains(got.GetStatus().GetMessage(), tt.wantMsg) {
					t.Fatalf("readGet = %v, want NotFound saying %q", got, tt.wantMsg)
				}
				if tt.give.GetResourceVersion() == 0 && strings.Contains(got.GetStatus().GetMessage(), "resourceVersion") {
					t.Errorf("a read at the latest revision names a resourceVersion: %q", got.GetStatus().GetMessage())
				}
				return
			}
			if got.GetStatus() != nil {
				t.Fatalf("readGet: %v", got.GetStatus())
			}
			o, err := object.Decode(got.GetObject())
			if err != nil {
				t.Fatal(err)
			}
			if got.GetResourceVersion() != tt.wantRV || o.ResourceVersion() != fmt.Sprint(tt.wantRV) {
				t.Errorf("readGet: resourceVersion %d, object's %s, want %d", got.GetResourceVersion(), o.ResourceVersion(), tt.wantRV)
			}
			if !proto.Equal(o.Key(), tt.give.GetKey()) {
				t.Errorf("readGet returned %s, want %s", object.FormatKey(o.Key()), object.FormatKey(tt.give.GetKey()))
			}
		})
	}
}

// list plans and reads one page the way the actor does: at the token's or the request's
// resourceVersion, else at the applied index.
func list(c *catalog, req *messages.ListRequest) *messages.ListResult {
	p, err := planList(req)
	if err != nil {
		return &messages.ListResult{Status: messages.StatusOf(err)}
	}
	if p.ts == 0 {
		p.ts = c.applied
	}
	return readList(c.db, p)
}

// names lists "namespace/name@resourceVersion" of the items of a page.
func names(t *testing.T, items [][]byte) []string {
	t.Helper()
	var out []string
	for _, b := range items {
		o, err := object.Decode(b)
		if err != nil {
			t.Fatalf("item %s: %v", b, err)
		}
		out = append(out, o.Namespace()+"/"+o.Name()+"@"+o.ResourceVersion())
	}
	return out
}

// listAll follows continue tokens to the end, checking that every page is at most limit items
// and at the first page's resourceVersion.
func listAll(t *testing.T, c *catalog, req *messages.ListRequest) ([]string, int) {
	t.Helper()
	var all []string
	pages := 0
	var rv uint64
	for {
		res := list(c, req)
		if res.GetStatus() != nil {
			t.Fatalf("list %v: %v", req, res.GetStatus())
		}
		pages++
		if pages == 1 {
			rv = res.GetResourceVersion()
		} else if res.GetResourceVersion() != rv {
			t.Errorf("page %d at resourceVersion %d, the first at %d", pages, res.GetResourceVersion(), rv)
		}
		if req.GetLimit() > 0 && int64(len(res.GetItems())) > req.GetLimit() {
			t.Errorf("page %d has %d items, limit %d", pages, len(res.GetItems()), req.GetLimit())
		}
		all = append(all, names(t, res.GetItems())...)
		if res.GetContinue() == "" {
			return all, pages
		}
		if pages > 100 {
			t.Fatal("more than 100 pages")
		}
		next := cloneList(req)
		next.Continue = res.GetContinue()
		req = next
	}
}

func TestReadList(t *testing.T) {
	c := readsFixture(t)
	pods := func(ns, sel string, limit int64) *messages.ListRequest {
		return &messages.ListRequest{Version: "v1", Kind: "Pod", Namespace: ns, LabelSelector: sel, Limit: limit}
	}
	fields := func(ns, sel string) *messages.ListRequest {
		return &messages.ListRequest{Version: "v1", Kind: "Pod", Namespace: ns, FieldSelector: sel}
	}
	all := []string{"default/a@12", "default/b@3", "default/c@4", "default/d@5", "defaultx/a@9", "kube-system/a@7", "kube-system/z@8"}
	tests := []struct {
		name string
		give *messages.ListRequest
		want []string
	}{
		{"every namespace", pods("", "", 0), all},
		{"one namespace", pods("default", "", 0), all[:4]},
		{"a namespace that prefixes another", pods("defaultx", "", 0), []string{"defaultx/a@9"}},
		{"other kind", &messages.ListRequest{Version: "v1", Kind: "PodTemplate"}, []string{"default/a@10"}},
		{"other group", &messages.ListRequest{Group: "example.com", Version: "v1", Kind: "Pod"}, []string{"default/a@11"}},
		{"empty type", &messages.ListRequest{Version: "v1", Kind: "Service"}, nil},
		{"at an older revision", &messages.ListRequest{Version: "v1", Kind: "Pod", Namespace: "default", ResourceVersion: 6}, []string{"default/a@2", "default/b@3", "default/c@4", "default/d@5", "default/e@6"}},
		{"at a revision before any pod", &messages.ListRequest{Version: "v1", Kind: "Pod", ResourceVersion: 1}, nil},
		{"equality", pods("", "app=web", 0), []string{"default/a@12", "default/c@4", "defaultx/a@9", "kube-system/a@7"}},
		{"inequality matches a missing label", pods("", "app!=web", 0), []string{"default/b@3", "default/d@5", "kube-system/z@8"}},
		{"exists", pods("", "tier", 0), []string{"default/a@12", "default/b@3"}},
		{"set and not exists", pods("", "app in (web,db),!tier", 0), []string{"default/c@4", "default/d@5", "defaultx/a@9", "kube-system/a@7"}},
		{"selector in a namespace", pods("default", "app=db", 0), []string{"default/b@3", "default/d@5"}},
		{"matches nothing", pods("", "app=none", 0), nil},
		{"field: a name", fields("", "metadata.name=a"), []string{"default/a@12", "defaultx/a@9", "kube-system/a@7"}},
		{"field: not a name", fields("", "metadata.name!=a"), []string{"default/b@3", "default/c@4", "default/d@5", "kube-system/z@8"}},
		{"field: a namespace", fields("", "metadata.namespace=kube-system"), []string{"kube-system/a@7", "kube-system/z@8"}},
		{"field: a name in a namespace", fields("default", "metadata.name=c"), []string{"default/c@4"}},
		{"field and label", &messages.ListRequest{Version: "v1", Kind: "Pod", LabelSelector: "app=web", FieldSelector: "metadata.namespace!=default"}, []string{"defaultx/a@9", "kube-system/a@7"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := list(c, tt.give)
			if res.GetStatus() != nil {
				t.Fatal(res.GetStatus())
			}
			if got := names(t, res.GetItems()); !slices.Equal(got, tt.want) {
				t.Errorf("items %q, want %q", got, tt.want)
			}
			if res.GetContinue() != "" {
				t.Errorf("a list without a limit has a continue token")
			}
			wantRV := tt.give.GetResourceVersion()
			if wantRV == 0 {
				wantRV = c.applied
			}
			if res.GetResourceVersion() != wantRV {
				t.Errorf("resourceVersion %d, want %d", res.GetResourceVersion(), wantRV)
			}
			// Paged, every page size gives the same items.
			for limit := int64(1); limit <= int64(len(tt.want))+1; limit++ {
				paged := cloneList(tt.give)
				paged.Limit = limit
				got, _ := listAll(t, c, paged)
				if !slices.Equal(got, tt.want) {
					t.Errorf("limit %d: items %q, want %q", limit, got, tt.want)
				}
			}
		})
	}
}

func cloneList(r *messages.ListRequest) *messages.ListRequest {
	return proto.Clone(r).(*messages.ListRequest)
}

// TestReadListPagesAreOneSnapshot: writes between pages do not show in the later pages, which
// stay at the first page's resourceVersion; a new list sees them.
func TestReadListPagesAreOneSnapshot(t *testing.T) {
	c := readsFixture(t)
	req := &messages.ListRequest{Version: "v1", Kind: "Pod", Limit: 3}
	first := list(c, req)
	if got := names(t, first.GetItems()); !slices.Equal(got, []string{"default/a@12", "default/b@3", "default/c@4"}) || first.GetContinue() == "" {
		t.Fatalf("first page %q continue %q", got, first.GetContinue())
	}
	mustApply(t, c,
		entry(t, 14, deleteCmd(podKey("default", "d"))),
		entry(t, 15, putCmd(podKey("default", "da"), podValue("default", "da", "", ""))),
		entry(t, 16, mergePatchCmd(podKey("kube-system", "a"), `{"spec":{"n":2}}`)),
		entry(t, 17, putCmd(podKey("default", "bb"), podValue("default", "bb", "", ""))),
	)
	next := cloneList(req)
	next.Continue = first.GetContinue()
	rest, pages := listAll(t, c, next)
	if want := []string{"default/d@5", "defaultx/a@9", "kube-system/a@7", "kube-system/z@8"}; !slices.Equal(rest, want) {
		t.Errorf("later pages %q, want the state at 13: %q", rest, want)
	}
	if pages != 2 {
		t.Errorf("%d later pages, want 2", pages)
	}
	// The limit may change between pages; the snapshot does not.
	next.Limit = 100
	if res := list(c, next); res.GetResourceVersion() != 13 || len(res.GetItems()) != 4 {
		t.Errorf("continue with another limit: %d items at %d, want 4 at 13", len(res.GetItems()), res.GetResourceVersion())
	}
	// The request's resourceVersion is ignored with a continue token.
	next.ResourceVersion = 17
	if res := list(c, next); res.GetResourceVersion() != 13 {
		t.Errorf("continue with a resourceVersion: read at %d, want the token's 13", res.GetResourceVersion())
	}
	now, _ := listAll(t, c, &messages.ListRequest{Version: "v1", Kind: "Pod"})
	if want := []string{"default/a@12", "default/b@3", "default/bb@17", "default/c@4", "default/da@15", "defaultx/a@9", "kube-system/a@16", "kube-system/z@8"}; !slices.Equal(now, want) {
		t.Errorf("a new list %q, want %q", now, want)
	}
}

// editToken decodes a continue token, lets edit change it, and encodes it again, recomputing
// the checksum when resum is set (a forger who knows the format).
func editToken(t *testing.T, tok string, resum bool, edit func(*continueToken)) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		t.Fatal(err)
	}
	var ct continueToken
	if err := json.Unmarshal(raw, &ct); err != nil {
		t.Fatal(err)
	}
	edit(&ct)
	if resum {
		ct.Sum = ct.sum()
	}
	b, err := json.Marshal(ct)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestPlanList(t *testing.T) {
	c := readsFixture(t)
	first := list(c, &messages.ListRequest{Version: "v1", Kind: "Pod", Namespace: "default", LabelSelector: "app in (web,db)", Limit: 1})
	tok := first.GetContinue()
	if tok == "" {
		t.Fatal("no continue token")
	}
	flip := []byte(tok)
	flip[len(flip)/2] ^= 1
	req := func(mod func(*messages.ListRequest)) *messages.ListRequest {
		r := &messages.ListRequest{Version: "v1", Kind: "Pod", Namespace: "default", LabelSelector: "app in (web,db)", Limit: 1, Continue: tok}
		mod(r)
		return r
	}
	const damaged, another = "continue token is damaged", "continue token belongs to another list"
	tests := []struct {
		name       string
		give       *messages.ListRequest
		wantReason messages.StatusReason
		wantMsg    string
		wantTS     uint64
	}{
		{"no token", req(func(r *messages.ListRequest) { r.Continue = "" }), 0, "", 0},
		{"no token, a resourceVersion", req(func(r *messages.ListRequest) { r.Continue = ""; r.ResourceVersion = 7 }), 0, "", 7},
		{"the token", req(func(*messages.ListRequest) {}), 0, "", 13},
		{"the token, another limit", req(func(r *messages.ListRequest) { r.Limit = 50 }), 0, "", 13},
		{"the token, the selector written differently", req(func(r *messages.ListRequest) { r.LabelSelector = " app  in (db, web) " }), 0, "", 13},
		{"missing version", req(func(r *messages.ListRequest) { r.Version = "" }), messages.StatusReason_INVALID, "version is missing", 0},
		{"bad kind", req(func(r *messages.ListRequest) { r.Kind = "pod-x" }), messages.StatusReason_INVALID, "kind", 0},
		{"bad group", req(func(r *messages.ListRequest) { r.Group = "Apps" }), messages.StatusReason_INVALID, "group", 0},
		{"bad namespace", req(func(r *messages.ListRequest) { r.Namespace = "Default" }), messages.StatusReason_INVALID, "namespace", 0},
		{"negative limit", req(func(r *messages.ListRequest) { r.Limit = -1 }), messages.StatusReason_INVALID, "negative", 0},
		{"bad selector", req(func(r *messages.ListRequest) { r.LabelSelector = "app in (web" }), messages.StatusReason_INVALID, "label selector is not valid", 0},
		{"bad field selector", req(func(r *messages.ListRequest) { r.FieldSelector = "spec.replicas=3" }), messages.StatusReason_INVALID, "field selector is not valid", 0},
		{"one bit flipped", req(func(r *messages.ListRequest) { r.Continue = string(flip) }), messages.StatusReason_INVALID, damaged, 0},
		{"truncated", req(func(r *messages.ListRequest) { r.Continue = tok[:len(tok)-3] }), messages.StatusReason_INVALID, damaged, 0},
		{"not base64", req(func(r *messages.ListRequest) { r.Continue = "%%%" }), messages.StatusReason_INVALID, damaged, 0},
		{"not JSON", req(func(r *messages.ListRequest) { r.Continue = base64.RawURLEncoding.EncodeToString([]byte("hello")) }), messages.StatusReason_INVALID, damaged, 0},
		{"empty JSON", req(func(r *messages.ListRequest) { r.Continue = base64.RawURLEncoding.EncodeToString([]byte("{}")) }), messages.StatusReason_INVALID, damaged, 0},
		{"a standard-base64 token", req(func(r *messages.ListRequest) {
			raw, _ := base64.RawURLEncoding.DecodeString(tok)
			r.Continue = base64.StdEncoding.EncodeToString(raw) + "=="
		}), messages.StatusReason_INVALID, damaged, 0},
		{"resourceVersion edited", req(func(r *messages.ListRequest) {
			r.Continue = editToken(t, tok, false, func(ct *continueToken) { ct.RV = 5 })
		}), messages.StatusReason_INVALID, damaged, 0},
		{"start edited", req(func(r *messages.ListRequest) {
			r.Continue = editToken(t, tok, false, func(ct *continueToken) { ct.Start = []byte("z") })
		}), messages.StatusReason_INVALID, damaged, 0},
		{"digest edited", req(func(r *messages.ListRequest) {
			r.Continue = editToken(t, tok, false, func(ct *continueToken) { ct.Digest++ })
		}), messages.StatusReason_INVALID, damaged, 0},
		{"another format version", req(func(r *messages.ListRequest) {
			r.Continue = editToken(t, tok, true, func(ct *continueToken) { ct.V = 2 })
		}), messages.StatusReason_INVALID, damaged, 0},
		{"resourceVersion 0", req(func(r *messages.ListRequest) {
			r.Continue = editToken(t, tok, true, func(ct *continueToken) { ct.RV = 0 })
		}), messages.StatusReason_INVALID, damaged, 0},
		{"re-summed resourceVersion is a read at it", req(func(r *messages.ListRequest) {
			r.Continue = editToken(t, tok, true, func(ct *continueToken) { ct.RV = 9 })
		}), 0, "", 9},
		{"another namespace", req(func(r *messages.ListRequest) { r.Namespace = "kube-system" }), messages.StatusReason_INVALID, another, 0},
		{"every namespace", req(func(r *messages.ListRequest) { r.Namespace = "" }), messages.StatusReason_INVALID, another, 0},
		{"another kind", req(func(r *messages.ListRequest) { r.Kind = "PodTemplate" }), messages.StatusReason_INVALID, another, 0},
		{"another group", req(func(r *messages.ListRequest) { r.Group = "example.com" }), messages.StatusReason_INVALID, another, 0},
		{"another version", req(func(r *messages.ListRequest) { r.Version = "v2" }), messages.StatusReason_INVALID, another, 0},
		{"another selector", req(func(r *messages.ListRequest) { r.LabelSelector = "app=web" }), messages.StatusReason_INVALID, another, 0},
		{"no selector", req(func(r *messages.ListRequest) { r.LabelSelector = "" }), messages.StatusReason_INVALID, another, 0},
		{"a field selector added", req(func(r *messages.ListRequest) { r.FieldSelector = "metadata.name=a" }), messages.StatusReason_INVALID, another, 0},
		{"re-summed digest of another list", req(func(r *messages.ListRequest) {
			r.Continue = editToken(t, tok, true, func(ct *continueToken) { ct.Digest++ })
		}), messages.StatusReason_INVALID, another, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := planList(tt.give)
			if r := messages.ReasonOf(err); r != tt.wantReason {
				t.Fatalf("planList: err %v, want reason %s", err, messages.ReasonName(tt.wantReason))
			}
			if err != nil {
				if !strings.Contains(err.Error(), tt.wantMsg) {
					t.Errorf("planList: %q does not say %q", err, tt.wantMsg)
				}
				return
			}
			if p.ts != tt.wantTS {
				t.Errorf("planList: ts %d, want %d", p.ts, tt.wantTS)
			}
		})
	}
}

// TestContinueTokenResumesAfterTheLastItem: the second page starts with the item after the
// first page's last, even when that item matches no selector and was deleted since.
func TestContinueTokenResumesAfterTheLastItem(t *testing.T) {
	c := readsFixture(t)
	req := &messages.ListRequest{Version: "v1", Kind: "Pod", Namespace: "default", LabelSelector: "app=db", Limit: 1}
	first := list(c, req)
	if got := names(t, first.GetItems()); !slices.Equal(got, []string{"default/b@3"}) {
		t.Fatalf("first page %q", got)
	}
	mustApply(t, c, entry(t, 14, deleteCmd(podKey("default", "c"))), entry(t, 15, deleteCmd(podKey("default", "d"))))
	req.Continue = first.GetContinue()
	second := list(c, req)
	if got := names(t, second.GetItems()); !slices.Equal(got, []string{"default/d@5"}) {
		t.Errorf("second page %q, want [default/d@5]", got)
	}
}

// TestListPagesAreBoundedInBytes: without a limit, a list whose objects pass MaxListBytes ends
// its page with a continue token, and the pages together hold every object once.
func TestListPagesAreBoundedInBytes(t *testing.T) {
	c := newTestCatalog(t, 1000)
	big := strings.Repeat("x", 700<<10) // an in-memory Badger takes values up to 1 MiB
	var entries []*raftpb.Entry
	for i := range 30 {
		name := fmt.Sprintf("p%02d", i)
		entries = append(entries, entry(t, uint64(2+i), putCmd(podKey("default", name), podValue("default", name, "", `{"data":"`+big+`"}`))))
	}
	mustApply(t, c, entries...)
	first := list(c, &messages.ListRequest{Version: "v1", Kind: "Pod"})
	size := 0
	for _, it := range first.GetItems() {
		size += len(it)
	}
	if first.GetContinue() == "" || size < MaxListBytes || size > MaxListBytes+(2<<20) {
		t.Fatalf("an unlimited list of 21 MiB: %d items, %d bytes, continue %q; want a page just past %d bytes and a token",
			len(first.GetItems()), size, first.GetContinue(), MaxListBytes)
	}
	all, _ := listAll(t, c, &messages.ListRequest{Version: "v1", Kind: "Pod"})
	if len(all) != 30 {
		t.Fatalf("the pages hold %d objects, want 30", len(all))
	}
}
