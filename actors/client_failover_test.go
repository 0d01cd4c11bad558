package actors

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/kstore/kstore/messages"
)

// How a scripted node answers a request.
type answer int

const (
	serves   answer = iota // success
	refuses                // Unavailable: nothing happened, as a node without a leader says
	ignores                // nothing at all: a black-holed node
	notFound               // an answer that is the result, not a reason to move on
	dead                   // the node actor is gone: requests dead-letter
)

// arrivals records which scripted node got which request, in order.
type arrivals struct {
	mu  sync.Mutex
	got []string
}

func (a *arrivals) add(s string) {
	a.mu.Lock()
	a.got = append(a.got, s)
	a.mu.Unlock()
}

func (a *arrivals) take() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	got := a.got
	a.got = nil
	return got
}

// scriptedNode answers the client's requests as its script says.
type scriptedNode struct {
	name string
	does answer
	log  *arrivals
}

func (n *scriptedNode) Receive(ctx actor.Context) {
	msg, ok := ctx.Message().(proto.Message)
	if !ok {
		return
	}
	n.log.add(n.name)
	var st *messages.Status
	switch n.does {
	case ignores:
		return
	case refuses:
		st = &messages.Status{Reason: messages.StatusReason_UNAVAILABLE, Message: "no leader: retry"}
	case notFound:
		st = &messages.Status{Reason: messages.StatusReason_NOT_FOUND, Message: "not found"}
	}
	switch msg.(type) {
	case *messages.Command:
		ctx.Respond(&messages.CommandResult{Status: st, Op: messages.ResourceOp_CREATED, ResourceVersion: 7})
	case *messages.GetRequest:
		ctx.Respond(&messages.GetResult{Status: st, ResourceVersion: 7})
	case *messages.ListRequest:
		ctx.Respond(&messages.ListResult{Status: st, ResourceVersion: 7})
	case *messages.StatusRequest:
		ctx.Respond(&messages.NodeStatus{Status: st, Applied: 7})
	}
}

// scriptedCluster spawns one scripted node per answer, named n0, n1, ..., and a client of them.
func scriptedCluster(t *testing.T, timeout time.Duration, script ...answer) (*Client, *arrivals) {
	t.Helper()
	system := quietSystem()
	log := &arrivals{}
	pids := make([]*actor.PID, len(script))
	for i, does := range script {
		n := &scriptedNode{name: fmt.Sprintf("n%d", i), does: does, log: log}
		pids[i] = system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return n }))
		if does == dead {
			if err := system.Root.StopFuture(pids[i]).Wait(); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(func() {
		for _, pid := range pids {
			_ = system.Root.StopFuture(pid).Wait()
		}
		system.Shutdown()
	})
	return NewClientPIDs(system, pids, timeout), log
}

func putReq(ctx context.Context, c *Client) error {
	_, err := c.Put(ctx, pod("p"), messages.Reason_OPERATOR)
	return err
}

func getReq(ctx context.Context, c *Client) error {
	_, err := c.Get(ctx, &messages.ResourceKey{Version: "v1", Kind: "Pod", Namespace: "default", Name: "p"}, 0)
	return err
}

// TestCallMovesBetweenEndpoints runs one request against scripted nodes and checks its result,
// which nodes it reached in which order, and where the next request starts.
func TestCallMovesBetweenEndpoints(t *testing.T) {
	defer goleak.VerifyNone(t, leakOptions...)
	tests := []struct {
		name    string
		script  []answer
		timeout time.Duration
		call    func(context.Context, *Client) error
		want    messages.StatusReason // STATUS_REASON_UNSPECIFIED: success
		wantIn  string                // in the error's message
		reached []string
		next    int // the endpoint the next request starts at
	}{
		{name: "write refused moves on", script: []answer{refuses, serves}, call: putReq,
			reached: []string{"n0", "n1"}, next: 1},
		{name: "write dead-lettered moves on", script: []answer{dead, serves}, call: putReq,
			reached: []string{"n1"}, next: 1},
		{name: "write refused and dead-lettered moves on", script: []answer{refuses, dead, serves}, call: putReq,
			reached: []string{"n0", "n2"}, next: 2},
		{name: "write not answered is not sent again", script: []answer{ignores, serves}, timeout: 300 * time.Millisecond, call: putReq,
			want: messages.StatusReason_TIMEOUT, wantIn: "outcome is unknown", reached: []string{"n0"}, next: 1},
		{name: "read not answered moves on", script: []answer{ignores, serves}, timeout: 2 * time.Second, call: getReq,
			reached: []string{"n0", "n1"}, next: 1},
		{name: "read refused moves on", script: []answer{refuses, refuses, serves}, call: getReq,
			reached: []string{"n0", "n1", "n2"}, next: 2},
		{name: "an error answer is the result", script: []answer{notFound, serves}, call: getReq,
			want: messages.StatusReason_NOT_FOUND, reached: []string{"n0"}, next: 0},
		{name: "write everywhere dead", script: []answer{dead, dead}, timeout: 200 * time.Millisecond, call: putReq,
			want: messages.StatusReason_UNAVAILABLE, wantIn: "did not take effect"},
		{name: "status refused moves on", script: []answer{refuses, serves}, call: func(ctx context.Context, c *Client) error {
			_, err := c.Status(ctx)
			return err
		}, reached: []string{"n0", "n1"}, next: 1},
		{name: "list dead-lettered moves on", script: []answer{dead, serves}, call: func(ctx context.Context, c *Client) error {
			_, err := c.List(ctx, &messages.ListRequest{Version: "v1", Kind: "Pod"})
			return err
		}, reached: []string{"n1"}, next: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, log := scriptedCluster(t, tt.timeout, tt.script...)
			start := time.Now()
			err := tt.call(context.Background(), c)
			took := time.Since(start)
			if got := messages.ReasonOf(err); got != tt.want {
				t.Fatalf("err = %v, want reason %s", err, messages.ReasonName(tt.want))
			}
			if !strings.Contains(fmt.Sprint(err), tt.wantIn) {
				t.Errorf("err = %v, want it to say %q", err, tt.wantIn)
			}
			if got := log.take(); tt.reached != nil && !slices.Equal(got, tt.reached) {
				t.Errorf("reached %v, want %v", got, tt.reached)
			}
			if tt.reached == nil {
				return
			}
			if got := int(c.current.Load()); got != tt.next {
				t.Errorf("the next request starts at n%d, want n%d", got, tt.next)
			}
			if tt.timeout > 0 && tt.want == messages.StatusReason_STATUS_REASON_UNSPECIFIED && took >= tt.timeout {
				t.Errorf("took %v, the whole timeout: a silent endpoint should cost one slice of it", took)
			}
		})
	}
}

// TestCallStartsWhereTheLastAnswered checks that a second request goes straight to the endpoint
// that served the first, and that a read given up on a silent endpoint leaves it behind too.
func TestCallStartsWhereTheLastAnswered(t *testing.T) {
	c, log := scriptedCluster(t, 2*time.Second, ignores, refuses, serves)
	ctx := context.Background()
	if err := getReq(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got, want := log.take(), []string{"n0", "n1", "n2"}; !slices.Equal(got, want) {
		t.Fatalf("first read reached %v, want %v", got, want)
	}
	for range 3 {
		if err := putReq(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := log.take(), []string{"n2", "n2", "n2"}; !slices.Equal(got, want) {
		t.Fatalf("the next writes reached %v, want %v", got, want)
	}
}

// TestCallBacksOffPerRound checks that the backoff is paid once per full round of endpoints:
// seven refusals in a row cost no wait when the eighth endpoint serves, and when every endpoint
// refuses the requests go round robin until the deadline.
func TestCallBacksOffPerRound(t *testing.T) {
	script := []answer{refuses, refuses, refuses, refuses, refuses, refuses, refuses, serves}
	c, log := scriptedCluster(t, 5*time.Second, script...)
	start := time.Now()
	if err := putReq(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	// A backoff per endpoint would have waited 10+20+...+500 ms > 1 s before the eighth.
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("seven refusals then success took %v: the backoff was paid within a round", took)
	}
	if got := log.take(); len(got) != len(script) {
		t.Errorf("reached %v, want each endpoint once", got)
	}

	c, log = scriptedCluster(t, 500*time.Millisecond, refuses, refuses, refuses)
	err := putReq(context.Background(), c)
	if !messages.IsUnavailable(err) || !strings.Contains(err.Error(), "did not take effect") {
		t.Fatalf("err = %v, want Unavailable saying the write did not take effect", err)
	}
	got := log.take()
	if len(got) < 6 {
		t.Fatalf("reached %v within 500ms: want several rounds", got)
	}
	for i, name := range got {
		if want := fmt.Sprintf("n%d", i%3); name != want {
			t.Fatalf("attempt %d reached %s, want %s (round robin): %v", i, name, want, got)
		}
	}
}

// TestCallHonoursTheContext checks that a cancelled context ends the retries at once.
func TestCallHonoursTheContext(t *testing.T) {
	c, _ := scriptedCluster(t, 10*time.Second, refuses)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := getReq(ctx, c)
	if !messages.IsUnavailable(err) {
		t.Fatalf("err = %v, want the last refusal", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("took %v after a 200ms context", took)
	}
}
