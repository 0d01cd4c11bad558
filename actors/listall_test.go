package actors

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/kstore/kstore/messages"
)

// listed is an object as a test compares it: name@resourceVersion.
func listed(t *testing.T, b []byte) string {
	t.Helper()
	o, err := listedObject(b)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s@%d", o.Key.GetName(), o.ResourceVersion)
}

// TestListAllReadsEveryPageAtOneRevision: pages of 2 list the state of the first page's
// revision, though objects are created before and after the cursor, changed and deleted between
// pages; the caller's request is left as it was.
func TestListAllReadsEveryPageAtOneRevision(t *testing.T) {
	_, c := embedded(t, Config{})
	ctx := context.Background()
	var want []string
	for _, name := range []string{"b", "c", "d", "e", "f"} {
		rv := writeRV(t)(c.Put(ctx, pod(name), messages.Reason_OPERATOR))
		want = append(want, fmt.Sprintf("%s@%d", name, rv))
	}
	req := &messages.ListRequest{Version: "v1", Kind: "Pod", Namespace: "default", Limit: 2}
	give := proto.Clone(req)
	var got []string
	for b, err := range c.ListAll(ctx, req) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, listed(t, b))
		if len(got) == 1 {
			writeRV(t)(c.Put(ctx, pod("a"), messages.Reason_OPERATOR))
			writeRV(t)(c.Put(ctx, pod("z"), messages.Reason_OPERATOR))
			writeRV(t)(c.Put(ctx, []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"e","namespace":"default"},"spec":{}}`), messages.Reason_OPERATOR))
			writeRV(t)(c.Delete(ctx, &messages.ResourceKey{Version: "v1", Kind: "Pod", Namespace: "default", Name: "f"}, 0, messages.Reason_OPERATOR))
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("listed %v, want %v (the state before the first page)", got, want)
	}
	if !proto.Equal(req, give) {
		t.Fatalf("ListAll changed its request to %v", req)
	}
	// Listed again: the changes.
	got = nil
	for b, err := range c.ListAll(ctx, req) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, listed(t, b)[:1])
	}
	if want := []string{"a", "b", "c", "d", "e", "z"}; !slices.Equal(got, want) {
		t.Fatalf("listed again %v, want %v", got, want)
	}
}

// pagingNode serves lists of n objects from memory and records the requests it got.
type pagingNode struct {
	n    int
	reqs chan<- *messages.ListRequest
}

func (p *pagingNode) Receive(ctx actor.Context) {
	req, ok := ctx.Message().(*messages.ListRequest)
	if !ok {
		return
	}
	p.reqs <- proto.Clone(req).(*messages.ListRequest)
	from, _ := strconv.Atoi(req.GetContinue())
	to := min(from+int(req.GetLimit()), p.n)
	res := &messages.ListResult{ResourceVersion: 7}
	for i := from; i < to; i++ {
		res.Items = append(res.Items, pod(fmt.Sprintf("p%04d", i)))
	}
	if to < p.n {
		res.Continue = strconv.Itoa(to)
	}
	ctx.Respond(res)
}

// TestListAllDefaultPage: without a limit ListAll still pages, DefaultListPageSize at a time,
// each next page by the previous page's continue token.
func TestListAllDefaultPage(t *testing.T) {
	system := quietSystem()
	defer system.Shutdown()
	reqs := make(chan *messages.ListRequest, 10)
	node := system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &pagingNode{n: 2*DefaultListPageSize + 3, reqs: reqs} }))
	defer system.Root.Stop(node)
	c := NewClientPIDs(system, []*actor.PID{node}, 0)
	n := 0
	for _, err := range c.ListAll(context.Background(), &messages.ListRequest{Version: "v1", Kind: "Pod"}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 2*DefaultListPageSize+3 {
		t.Fatalf("listed %d, want %d", n, 2*DefaultListPageSize+3)
	}
	close(reqs)
	var got []string
	for r := range reqs {
		got = append(got, fmt.Sprintf("limit %d continue %q", r.GetLimit(), r.GetContinue()))
	}
	want := []string{
		fmt.Sprintf("limit %d continue %q", DefaultListPageSize, ""),
		fmt.Sprintf("limit %d continue %q", DefaultListPageSize, strconv.Itoa(DefaultListPageSize)),
		fmt.Sprintf("limit %d continue %q", DefaultListPageSize, strconv.Itoa(2*DefaultListPageSize)),
	}
	if !slices.Equal(got, want) {
		t.Fatalf("requests %q, want %q", got, want)
	}
}

// TestListAllStopsAtTheFirstError: an error is yielded once, with nil bytes, and ends the list,
// before any object (a request the node refuses) or after some (the list's revision compacted
// away between pages).
func TestListAllStopsAtTheFirstError(t *testing.T) {
	_, c := embedded(t, Config{HistoryRevisions: 5})
	ctx := context.Background()
	for i := range 4 {
		writeRV(t)(c.Put(ctx, pod(fmt.Sprintf("p%d", i)), messages.Reason_OPERATOR))
	}
	tests := []struct {
		name     string
		give     *messages.ListRequest
		between  func() // after the first object
		wantObjs int
		want     func(error) bool
	}{
		{name: "refused", give: &messages.ListRequest{Version: "v1", Kind: "Pod", LabelSelector: "app in (web"},
			wantObjs: 0, want: messages.IsInvalid},
		{name: "compacted between pages", give: &messages.ListRequest{Version: "v1", Kind: "Pod", Limit: 2},
			between: func() {
				for i := range 20 {
					writeRV(t)(c.Put(ctx, []byte(fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c%d","namespace":"default"}}`, i)), messages.Reason_OPERATOR))
				}
			},
			wantObjs: 2, want: messages.IsGone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, errs := 0, 0
			for b, err := range c.ListAll(ctx, tt.give) {
				if err != nil {
					errs++
					if b != nil || !tt.want(err) {
						t.Fatalf("yielded %q, %v: want nil bytes and the expected error", b, err)
					}
					continue
				}
				if errs > 0 {
					t.Fatal("an object after the error")
				}
				objs++
				if objs == 1 && tt.between != nil {
					tt.between()
				}
			}
			if objs != tt.wantObjs || errs != 1 {
				t.Fatalf("%d objects and %d errors, want %d and 1", objs, errs, tt.wantObjs)
			}
		})
	}
}

// TestListAllHonoursBreak: breaking out ends the iteration (a yield after it would panic).
func TestListAllHonoursBreak(t *testing.T) {
	_, c := embedded(t, Config{})
	ctx := context.Background()
	for i := range 5 {
		writeRV(t)(c.Put(ctx, pod(fmt.Sprintf("p%d", i)), messages.Reason_OPERATOR))
	}
	for _, limit := range []int64{1, 2, 10} {
		n := 0
		for _, err := range c.ListAll(ctx, &messages.ListRequest{Version: "v1", Kind: "Pod", Limit: limit}) {
			if err != nil {
				t.Fatal(err)
			}
			n++
			if n == 3 {
				break
			}
		}
		if n != 3 {
			t.Fatalf("limit %d: %d objects before the break, want 3", limit, n)
		}
	}
	// ListObjects, built on it, too; and it decodes.
	var names []string
	for u, err := range c.ListObjects(ctx, &messages.ListRequest{Version: "v1", Kind: "Pod", Limit: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		if u.GetResourceVersion() == "" || u.GetUID() == "" {
			t.Fatalf("listed %v: no resourceVersion or uid", u.Object)
		}
		names = append(names, u.GetName())
		if len(names) == 3 {
			break
		}
	}
	if want := []string{"p0", "p1", "p2"}; !slices.Equal(names, want) {
		t.Fatalf("ListObjects gave %v, want %v", names, want)
	}
}
