package l2engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// readBufferSize is larger than any Ethernet frame, so frames are never truncated on read.
const readBufferSize = 1 << 16

// Run answers questions for owned addresses and sends the announcements of takeovers and
// refreshes (and, for a Tender codec, does its due work) until ctx ends; it then returns nil.
// It returns an error if the connection is closed or fails for good, or Config.ErrRunning if
// another Run is in progress. Read errors that may pass (for example while the interface is
// down) are counted and retried with a backoff; write errors are counted.
func (e *Engine) Run(ctx context.Context) error {
	if !e.running.CompareAndSwap(false, true) {
		return e.cfg.ErrRunning
	}
	defer e.running.Store(false)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Unblock the reader when ctx ends.
	stop := context.AfterFunc(ctx, func() { _ = e.conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	readDone := make(chan error, 1)
	go func() { readDone <- e.readLoop(ctx) }()

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var err error
loop:
	for {
		now := time.Now()
		next := e.announceDue(now)
		if e.tender != nil {
			next = earliest(next, e.tender.Tend(now))
		}
		if next.IsZero() {
			timer.Stop()
		} else {
			timer.Reset(time.Until(next))
		}
		select {
		case <-ctx.Done():
			break loop
		case err = <-readDone:
			readDone = nil
			break loop
		case <-e.wake:
		case <-timer.C:
		}
	}
	cancel()
	if readDone != nil {
		err = <-readDone
	}
	if err == nil {
		// Let a later Run read again.
		_ = e.conn.SetReadDeadline(time.Time{})
	}
	return err
}

// earliest returns the earlier of two times, where zero means never.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// readLoop reads and handles frames until ctx ends (nil) or the connection is closed (error).
func (e *Engine) readLoop(ctx context.Context) error {
	buf := make([]byte, readBufferSize)
	var backoff time.Duration
	for {
		n, _, err := e.conn.ReadFrom(buf)
		if n > 0 || err == nil {
			e.Handle(buf[:n])
		}
		if err == nil {
			backoff = 0
			continue
		}
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed) {
			return fmt.Errorf("%s: reading frames: %w", e.cfg.Name, err)
		}
		e.c.readErrors.Add(1)
		backoff = min(max(2*backoff, 10*time.Millisecond), time.Second)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
	}
}

// announceDue sends every announcement due at now and returns when the next one is due (zero:
// none is scheduled). It holds the write lock, so that no announcement of an address leaves
// after Set removed it.
func (e *Engine) announceDue(now time.Time) time.Time {
	var next time.Time
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, a := range e.owned {
		if a.due.IsZero() {
			continue
		}
		if !a.due.After(now) {
			e.write(a.frame, &e.c.gratuitous)
			switch {
			case a.burstLeft > 1:
				a.burstLeft--
				a.due = now.Add(e.cfg.BurstInterval)
			case e.cfg.Refresh > 0:
				a.burstLeft = 0
				a.due = now.Add(e.cfg.Refresh)
			default:
				a.burstLeft = 0
				a.due = time.Time{}
				continue
			}
		}
		next = earliest(next, a.due)
	}
	return next
}
