package nethub

import (
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestLineBounds(t *testing.T) {
	tests := []struct {
		name        string
		give        []int // lengths of the frames pushed
		wantRefused []int // indexes in give of the frames push refuses
	}{
		{"frames bound", repeat(maxQueueFrames+1, 100), []int{maxQueueFrames}},
		{"bytes bound", repeat(9, 1<<20), []int{8}},
		{"a frame that does not fit is refused, a smaller one that does is kept", []int{maxQueueBytes - 10, 20, 10, 1}, []int{1, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLine()
			var refused []int
			for i, n := range tt.give {
				if !l.push(frame{data: make([]byte, n)}) {
					refused = append(refused, i)
				}
			}
			if !slices.Equal(refused, tt.wantRefused) {
				t.Errorf("line refused frames %v; want %v", refused, tt.wantRefused)
			}
			l.pop()
			if !l.push(frame{data: make([]byte, 10)}) {
				t.Errorf("push refused after a pop made room")
			}
		})
	}
}

func repeat(n, v int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = v
	}
	return s
}

// sent is a frame a line sent, identified by its last byte, and when.
type sent struct {
	id byte
	at time.Duration // since the bubble's start
}

// TestDelayLine checks when a Hub's frames leave, on the fake clock of a synctest bubble.
func TestDelayLine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		h := newHub(Config{Delay: 100 * time.Millisecond}, 2)
		ctx, cancel := context.WithCancel(context.Background())
		var (
			mu  sync.Mutex
			got []sent
			wg  sync.WaitGroup
		)
		wg.Go(func() {
			h.lines[1].run(ctx, func(b []byte) error {
				mu.Lock()
				defer mu.Unlock()
				got = append(got, sent{b[len(b)-1], time.Since(start)})
				return nil
			})
		})
		arrive := func(at time.Duration, id byte) {
			time.Sleep(at - time.Since(start)) // the fake clock: the frame arrives at start+at
			h.forward(0, ethFrame(broadcast, hostA, id), time.Now(), nil)
		}
		arrive(0, 1)
		arrive(30*time.Millisecond, 2)
		if err := h.SetDelay(10 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
		arrive(40*time.Millisecond, 3) // due at 50ms, but behind frame 2
		arrive(200*time.Millisecond, 4)
		time.Sleep(time.Second)
		synctest.Wait()
		cancel()
		wg.Wait()

		want := []sent{
			{1, 100 * time.Millisecond},
			{2, 130 * time.Millisecond},
			{3, 130 * time.Millisecond}, // a lower delay lets no frame overtake the one before
			{4, 210 * time.Millisecond},
		}
		if len(got) != len(want) {
			t.Fatalf("line sent %v; want %v", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("send %d: frame %d at %v; want frame %d at %v", i, got[i].id, got[i].at, want[i].id, want[i].at)
			}
		}
	})
}

// TestLineStops checks that a line's goroutine ends with its context, also while frames wait.
func TestLineStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, queued := range []int{0, 1} {
			l := newLine()
			for range queued {
				l.push(frame{data: []byte{1}, due: time.Now().Add(time.Hour)})
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				l.run(ctx, func([]byte) error { t.Error("frame sent before its due time"); return nil })
				close(done)
			}()
			synctest.Wait()
			cancel()
			<-done
		}
	})
}
