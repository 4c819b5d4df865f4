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

// shape is a family of random schedules: how many nodes and VIPs a seed gets, how many faults
// it suffers and how far apart.
type shape struct {
	nodes, vips         func(seed uint64) int
	minFaults, maxExtra int
	minGap, maxGap      time.Duration
	seedOffset          uint64 // keeps families from sharing seeds
}

var (
	// standard: 3 to 5 nodes, 2 to 6 VIPs, 4 to 13 faults.
	standard = shape{
		nodes: func(s uint64) int { return 3 + int(s%3) }, vips: func(s uint64) int { return 2 + int(s/3%5) },
		minFaults: 4, maxExtra: 10, minGap: 50 * time.Millisecond, maxGap: 1500 * time.Millisecond,
	}
	// wide: 2 to 7 nodes, 1 to 8 VIPs, 6 to 21 faults, closer together.
	wide = shape{
		nodes: func(s uint64) int { return 2 + int(s%6) }, vips: func(s uint64) int { return 1 + int(s/6%8) },
		minFaults: 6, maxExtra: 16, minGap: 20 * time.Millisecond, maxGap: 2 * time.Second, seedOffset: 1 << 40,
	}
)

// runSchedule runs one random schedule of a shape and returns the world for inspection.
func runSchedule(seed uint64, sh shape) *world {
	w := newWorld(seed, sh.nodes(seed), sh.vips(seed))
	// Cold start: every announcer within 300 ms.
	for i := range w.nodes {
		w.after(w.randomDuration(0, 300*time.Millisecond), func() { w.start(i) })
	}
	w.lastFault = w.now
	w.run(w.now.Add(2 * time.Second))
	for range sh.minFaults + w.rng.IntN(sh.maxExtra) {
		if len(w.failed) > 0 {
			break
		}
		w.run(w.now.Add(w.randomDuration(sh.minGap, sh.maxGap)))
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

// runSchedules runs count schedules of a shape from the base seed (SIM_BASE_SEED, else the
// clock), or only -sim.seed, and reports failures with their seeds.
func runSchedules(t *testing.T, sh shape, count int) {
	if *simSeed != 0 {
		report(t, runSchedule(*simSeed, sh))
		return
	}
	base := uint64(time.Now().UnixNano())
	if s := os.Getenv("SIM_BASE_SEED"); s != "" {
		base, _ = strconv.ParseUint(s, 10, 64)
		base += sh.seedOffset
	}
	start := time.Now()
	var stats simStats
	failures := 0
	for k := range count {
		w := runSchedule(base+uint64(k), sh)
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
		count, time.Since(start).Round(time.Millisecond), stats.heartbeats, stats.takeovers, stats.probes, stats.forgedRejected)
}

// TestSimulation runs thousands of random schedules of faults against N real cores and checks
// the invariants of DESIGN.md section 4 (invariant 4) at every 10 ms of simulated time.
func TestSimulation(t *testing.T) { runSchedules(t, standard, *simSchedules) }

// TestSimulationWide runs a third as many, wider schedules. Rerun one with
// -run TestSimulationWide -sim.seed=N.
func TestSimulationWide(t *testing.T) { runSchedules(t, wide, *simSchedules/3) }

func report(t *testing.T, w *world) {
	t.Helper()
	if len(w.failed) == 0 {
		return
	}
	t.Errorf("schedule seed %d (rerun: go test ./announcer/l2 -run %s -sim.seed=%d):\n%s\nlast events:\n%s",
		w.seed, t.Name(), w.seed, fmt.Sprint(w.failed), w.dumpTrace())
}
