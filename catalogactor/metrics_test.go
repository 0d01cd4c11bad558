package catalogactor

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/kstore/kstore/messages"
)

// TestScanCommand: the op, reason and kind read from an entry without decoding it are those
// messages.EncodeEntry wrote, for every field layout a command has.
func TestScanCommand(t *testing.T) {
	tests := []struct {
		name string
		give *messages.Command
	}{
		{"put", &messages.Command{Kind: messages.CommandKind_PUT, Reason: messages.Reason_OPERATOR,
			Key: &messages.ResourceKey{Version: "v1", Kind: "ConfigMap", Namespace: "default", Name: "a"}, Value: []byte(`{"a":1}`), StampUid: "u"}},
		{"patch with a precondition", &messages.Command{Kind: messages.CommandKind_PATCH, Reason: messages.Reason_CONTROLLER, ResourceVersion: 41,
			Key: &messages.ResourceKey{Group: "apps", Version: "v1", Kind: "Deployment", Name: "d"}, Patch: []byte(`{}`), PatchType: messages.PatchType_MERGE_PATCH}},
		{"delete without a kind", &messages.Command{Kind: messages.CommandKind_DELETE, Reason: messages.Reason_GARBAGE_COLLECTOR,
			Key: &messages.ResourceKey{Name: "x"}}},
		{"no key", &messages.Command{Kind: messages.CommandKind_CREATE, Reason: messages.Reason_SCHEDULER, RequestId: "r"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := messages.EncodeEntry(messages.ProposalID{Node: 1, Epoch: 2, Seq: 3}, tt.give)
			if err != nil {
				t.Fatal(err)
			}
			op, reason, kind, ok := scanCommand(data)
			if !ok || op != tt.give.GetKind() || reason != tt.give.GetReason() || string(kind) != tt.give.GetKey().GetKind() {
				t.Fatalf("scanCommand = %v %v %q %v, want %v %v %q true", op, reason, kind, ok,
					tt.give.GetKind(), tt.give.GetReason(), tt.give.GetKey().GetKind())
			}
			if allocs := testing.AllocsPerRun(100, func() { scanCommand(data) }); allocs != 0 {
				t.Errorf("scanCommand allocates %v times, want 0", allocs)
			}
		})
	}
	if _, _, _, ok := scanCommand([]byte("not a command")); ok {
		t.Error("scanCommand took data that is no command entry")
	}
}

func cmdEntry(t *testing.T, index uint64, cmd *messages.Command) *raftpb.Entry {
	t.Helper()
	data, err := messages.EncodeEntry(messages.ProposalID{Node: 1, Epoch: 1, Seq: index}, cmd)
	if err != nil {
		t.Fatal(err)
	}
	return &raftpb.Entry{Index: proto.Uint64(index), Term: proto.Uint64(1), Type: raftpb.EntryType_EntryNormal.Enum(), Data: data}
}

// counts reads kstore_commands_total by its labels.
func counts(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "kstore_commands_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			out[fmt.Sprintf("%s %s %s %s", l["kind"], l["op"], l["reason"], l["outcome"])] = m.GetCounter().GetValue()
		}
	}
	return out
}

// TestCountCommands: each outcome is counted under its own entry's labels (entries without an
// outcome, such as a leader's empty entry, are not commands), and past maxKinds kinds the rest
// count as "other" without allocating a label each.
func TestCountCommands(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	pod := &messages.ResourceKey{Version: "v1", Kind: "Pod", Name: "p"}
	entries := []*raftpb.Entry{
		{Index: proto.Uint64(10), Term: proto.Uint64(1), Type: raftpb.EntryType_EntryNormal.Enum()}, // a leader's empty entry
		cmdEntry(t, 11, &messages.Command{Kind: messages.CommandKind_CREATE, Reason: messages.Reason_OPERATOR, Key: pod}),
		cmdEntry(t, 12, &messages.Command{Kind: messages.CommandKind_CREATE, Reason: messages.Reason_OPERATOR, Key: pod}),
		cmdEntry(t, 13, &messages.Command{Kind: messages.CommandKind_DELETE, Reason: messages.Reason_CONTROLLER, Key: pod}),
	}
	outcomes := []outcome{
		{11, &messages.CommandResult{Op: messages.ResourceOp_CREATED}},
		{12, &messages.CommandResult{Status: &messages.Status{Reason: messages.StatusReason_ALREADY_EXISTS}}},
		{13, &messages.CommandResult{Op: messages.ResourceOp_DELETED}},
	}
	m.countCommands(entries, outcomes)
	m.countCommands(entries[1:2], outcomes[:1])
	want := map[string]float64{
		"Pod CREATE operator ok":            2,
		"Pod CREATE operator AlreadyExists": 1,
		"Pod DELETE controller ok":          1,
	}
	if got := counts(t, reg); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("kstore_commands_total = %v, want %v", got, want)
	}

	for i := range maxKinds - 1 { // Pod is the first kind
		k := &messages.ResourceKey{Version: "v1", Kind: fmt.Sprintf("K%d", i), Name: "n"}
		e := cmdEntry(t, uint64(100+i), &messages.Command{Kind: messages.CommandKind_PUT, Reason: messages.Reason_OPERATOR, Key: k})
		m.countCommands([]*raftpb.Entry{e}, []outcome{{uint64(100 + i), &messages.CommandResult{}}})
	}
	extra := cmdEntry(t, 5000, &messages.Command{Kind: messages.CommandKind_PUT, Reason: messages.Reason_OPERATOR,
		Key: &messages.ResourceKey{Version: "v1", Kind: "OneTooMany", Name: "n"}})
	batch, outs := []*raftpb.Entry{extra}, []outcome{{5000, &messages.CommandResult{}}}
	m.countCommands(batch, outs)
	got := counts(t, reg)
	if got["other PUT operator ok"] != 1 || got["OneTooMany PUT operator ok"] != 0 {
		t.Fatalf("a kind past the %d-kind bound: other=%v OneTooMany=%v, want it counted as other", maxKinds, got["other PUT operator ok"], got["OneTooMany PUT operator ok"])
	}
	if allocs := testing.AllocsPerRun(100, func() { m.countCommands(batch, outs) }); allocs != 0 {
		t.Errorf("counting a command of labels seen before allocates %v times, want 0", allocs)
	}
}

// BenchmarkCountCommands: the cost, per command, of counting an applied batch of 256 (the
// catalog actor pays it once per batch, beside the applier's Badger write).
func BenchmarkCountCommands(b *testing.B) {
	m, err := NewMetrics(prometheus.NewRegistry(), nil)
	if err != nil {
		b.Fatal(err)
	}
	var entries []*raftpb.Entry
	var outs []outcome
	for i := range 256 {
		idx := uint64(10 + i)
		data, _ := messages.EncodeEntry(messages.ProposalID{Node: 1, Epoch: 1, Seq: idx}, &messages.Command{Kind: messages.CommandKind_PUT, Reason: messages.Reason_OPERATOR,
			Key: &messages.ResourceKey{Version: "v1", Kind: "ConfigMap", Namespace: "default", Name: fmt.Sprint("c", i)}, Value: make([]byte, 1024)})
		entries = append(entries, &raftpb.Entry{Index: proto.Uint64(idx), Data: data})
		outs = append(outs, outcome{idx, &messages.CommandResult{}})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		m.countCommands(entries, outs)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/256, "ns/command")
}
