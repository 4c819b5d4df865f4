package packettest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Counts are the two counters a Harness follows: frames the speaker wrote (replies,
// announcements, probes and failed writes) and frames it has handled.
type Counts func() (written, received uint64)

// Harness drives a speaker on a Conn: it feeds frames, waits until they are handled, and
// compares what the speaker writes, byte for byte.
type Harness struct {
	T      *testing.T
	Conn   *Conn
	counts Counts
	taken  uint64 // frames read from Conn
}

// NewHarness returns a Harness on conn that starts nothing.
func NewHarness(t *testing.T, conn *Conn, counts Counts) *Harness {
	return &Harness{T: t, Conn: conn, counts: counts}
}

// Start runs run until the test ends, and then checks that it returned nil.
func Start(t *testing.T, conn *Conn, counts Counts, run func(context.Context) error) *Harness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	})
	return NewHarness(t, conn, counts)
}

// Next returns the next frame written, failing after a timeout.
func (h *Harness) Next() Written {
	h.T.Helper()
	select {
	case w := <-h.Conn.Out:
		// The connection hands the frame over before the speaker counts the write: wait for the
		// count, so tests may check the speaker's counters right after reading frames.
		h.taken++
		deadline := time.Now().Add(5 * time.Second)
		for {
			if written, _ := h.counts(); written >= h.taken || time.Now().After(deadline) {
				return w
			}
			time.Sleep(100 * time.Microsecond)
		}
	case <-time.After(5 * time.Second):
		h.T.Fatal("no frame written within 5s")
		return Written{}
	}
}

// Expect checks that the next frames written are want, in order.
func (h *Harness) Expect(want ...[]byte) {
	h.T.Helper()
	for i, w := range want {
		got := h.Next()
		if diff := cmp.Diff(w, got.Frame); diff != "" {
			h.T.Fatalf("frame %d (-want +got):\n%s", i, diff)
		}
	}
}

// ExpectNothing checks that nothing is written for d.
func (h *Harness) ExpectNothing(d time.Duration) {
	h.T.Helper()
	select {
	case w := <-h.Conn.Out:
		h.T.Fatalf("unexpected frame written: % x", w.Frame)
	case <-time.After(d):
	}
}

// Feed hands frames to the speaker and waits until it has handled them all.
func (h *Harness) Feed(frames ...[]byte) {
	h.T.Helper()
	received := func() uint64 { _, r := h.counts(); return r }
	want := received() + uint64(len(frames))
	for _, f := range frames {
		h.Conn.In <- f
	}
	deadline := time.Now().Add(5 * time.Second)
	for received() < want {
		if time.Now().After(deadline) {
			h.T.Fatalf("speaker handled %d frames, want %d", received(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// Reports collects what a speaker's OnForeign callback is told.
type Reports[T any] struct {
	mu  sync.Mutex
	got []T
}

// Add records one report; it is the callback.
func (r *Reports[T]) Add(v T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, v)
}

// Take returns the reports so far and forgets them.
func (r *Reports[T]) Take() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	got := r.got
	r.got = nil
	return got
}
