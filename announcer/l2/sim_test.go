package l2

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"
)

var (
	simSchedules = flag.Int("sim.schedules", 300, "random schedules TestSimulation runs (hack/test.sh runs thousands without the race detector)")
	simSeed      = flag.Uint64("sim.seed", 0, "run only this schedule seed (printed on failure)")
)

// runSchedule runs one random schedule and returns the world for inspection.
func runSchedule(seed uint64) *world {
	w := newWorld(seed, 3+int(seed%3), 2+int(seed/3%5))
	// Cold start: every announcer within 300 ms.
	for i := range w.nodes {
		w.after(w.randomDuration(0, 300*time.Millisecond), func() { w.start(i) })
	}
	w.lastFault = w.now
	w.run(w.now.Add(2 * time.Second))
	faultCount := 4 + w.rng.IntN(10)
	for range faultCount {
		if len(w.failed) > 0 {
			break
		}
		w.run(w.now.Add(w.randomDuration(50*time.Millisecond, 1500*time.Millisecond)))
		faults[w.rng.IntN(len(faults))].apply(w)
	}
	w.run(w.now.Add(3 * time.Second))
	if len(w.failed) > 0 {
		return w
	}
	w.heal()
	w.run(w.now.Add(settleLiveness + time.Second))
	if len(w.failed) == 0 {
		w.finalCheck()
	}
	return w
}

// TestSimulation runs thousands of random schedules of faults against N real cores and checks
// the invariants of DESIGN.md section 4 (invariant 4) at every 10 ms of simulated time.
func TestSimulation(t *testing.T) {
	if *simSeed != 0 {
		report(t, runSchedule(*simSeed))
		return
	}
	base := uint64(time.Now().UnixNano())
	if s := os.Getenv("SIM_BASE_SEED"); s != "" {
		base, _ = strconv.ParseUint(s, 10, 64)
	}
	start := time.Now()
	var stats simStats
	failures := 0
	for k := range *simSchedules {
		seed := base + uint64(k)
		w := runSchedule(seed)
		stats.heartbeats += w.stats.heartbeats
		stats.takeovers += w.stats.takeovers
		stats.probes += w.stats.probes
		stats.forgedRejected += w.stats.forgedRejected
		if len(w.failed) > 0 {
			failures++
			report(t, w)
			if failures >= 3 {
				break
			}
		}
	}
	t.Logf("%d schedules in %v: %d heartbeats, %d takeovers, %d probes, %d forged datagrams refused",
		*simSchedules, time.Since(start).Round(time.Millisecond), stats.heartbeats, stats.takeovers, stats.probes, stats.forgedRejected)
}

func report(t *testing.T, w *world) {
	t.Helper()
	if len(w.failed) == 0 {
		return
	}
	t.Errorf("schedule seed %d (rerun: go test ./announcer/l2 -run %s -sim.seed=%d):\n%s\nlast events:\n%s",
		w.seed, t.Name(), w.seed, fmt.Sprint(w.failed), w.dumpTrace())
}
