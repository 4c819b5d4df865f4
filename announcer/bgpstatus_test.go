package announcer

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/bgpspeaker"
	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
)

func TestNextDrain(t *testing.T) {
	t0 := time.Unix(1000, 0)
	wait := 5 * time.Second
	for _, tc := range []struct {
		name       string
		leaving    bool
		advertised bool
		since      time.Time
		now        time.Time
		want       drainPhase
		wantSince  time.Time
	}{
		{"staying", false, true, t0, t0.Add(time.Hour), notDraining, time.Time{}},
		{"leaving with routes out: de-prefer first", true, true, time.Time{}, t0, drainAdvertising, t0},
		{"still within the drain time", true, true, t0, t0.Add(wait - time.Millisecond), drainAdvertising, t0},
		{"drain time over: withdraw", true, true, t0, t0.Add(wait), drainWithdrawn, t0},
		{"withdrawn stays withdrawn", true, false, t0, t0.Add(time.Hour), drainWithdrawn, t0},
		{"nothing advertised: nothing to de-prefer", true, false, time.Time{}, t0, drainWithdrawn, time.Time{}},
	} {
		got, since := nextDrain(tc.leaving, tc.advertised, tc.since, tc.now, wait)
		if got != tc.want || !since.Equal(tc.wantSince) {
			t.Errorf("%s: phase %d since %v, want %d since %v", tc.name, got, since, tc.want, tc.wantSince)
		}
	}
}

func TestSummarize(t *testing.T) {
	p := &v1alpha1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "tor", Generation: 2}}
	summary, cond := summarize(p)
	if summary != "No nodes" || cond.Status != metav1.ConditionFalse {
		t.Errorf("no entries: %q %v", summary, cond)
	}
	p.Status.Nodes = []v1alpha1.BGPSessionStatus{
		{Node: "n1", State: bgpspeaker.StateEstablished},
		{Node: "n3", State: bgpspeaker.StateActive},
		{Node: "n2", State: bgpspeaker.StateEstablished},
	}
	summary, cond = summarize(p)
	if summary != "Established 2/3" || cond.Status != metav1.ConditionFalse || !strings.Contains(cond.Message, "n3 (Active)") || cond.ObservedGeneration != 2 {
		t.Errorf("one down: %q %+v", summary, cond)
	}
	p.Status.Nodes[1].State = bgpspeaker.StateEstablished
	summary, cond = summarize(p)
	if summary != "Established 3/3" || cond.Status != metav1.ConditionTrue {
		t.Errorf("all up: %q %+v", summary, cond)
	}
}

func TestSessionEntry(t *testing.T) {
	since := time.Date(2026, 11, 30, 10, 0, 0, 123456789, time.UTC)
	e := sessionEntry("n1", bgpspeaker.PeerStatus{State: bgpspeaker.StateActive, Since: since, LastError: "no answer from 198.18.0.1:179"}, true, []string{"p1"})
	if e.State != bgpspeaker.StateActive || e.LastError != "no answer from 198.18.0.1:179" || e.Since == nil || !e.Since.Time.Equal(since.Truncate(time.Second)) || len(e.Problems) != 1 {
		t.Errorf("entry %+v", e)
	}
	// A peer the speaker does not run (its password is unreadable) shows Idle with the reason.
	e = sessionEntry("n1", bgpspeaker.PeerStatus{}, false, []string{"no session: the password Secret baremetal-bgp/x does not exist"})
	if e.State != bgpspeaker.StateIdle || !strings.Contains(e.LastError, "does not exist") {
		t.Errorf("entry without a session %+v", e)
	}
	long := strings.Repeat("x", 5000)
	if e := sessionEntry("n1", bgpspeaker.PeerStatus{LastError: long}, true, nil); len(e.LastError) != 1024 {
		t.Errorf("last error of %d bytes, want it cut to the schema's 1024", len(e.LastError))
	}
}

// TestTruncateUTF8: a router's shutdown message is raw bytes (RFC 9003); what reaches the API and
// metric labels must be valid UTF-8, cut on a character boundary.
func TestTruncateUTF8(t *testing.T) {
	for _, in := range []string{"maint \xff\xfe now", strings.Repeat("für ", 100), strings.Repeat("ü", 300)} {
		for _, n := range []int{10, 11, 200, 1024} {
			got := truncate(in, n)
			if !utf8.ValidString(got) || len(got) > n {
				t.Errorf("truncate(%q, %d) = %q: invalid UTF-8 or too long", in, n, got)
			}
		}
	}
}

func TestErrorKind(t *testing.T) {
	for msg, want := range map[string]string{
		"no answer from 198.18.0.1:179":                             "no-answer",
		"no answer from 198.18.0.1:179 (check the MD5 password)":    "password",
		"notification: bad peer AS: as number mismatch":             "notification",
		"connection refused by 198.18.0.1:179":                      "refused",
		"connection reset by peer":                                  "reset",
		"notification: cease: administrative shutdown: \"Wartung\"": "notification",
		"something new": "other",
	} {
		if got := errorKind(msg); got != want {
			t.Errorf("errorKind(%q) = %q, want %q", msg, got, want)
		}
	}
}

// TestStatusNeedsWrite: an entry is rewritten when it changes, but a change of the prefix count
// alone (every new VIP, on every node) waits for statusCountInterval.
func TestStatusNeedsWrite(t *testing.T) {
	w := newBGPStatusWriter(nil, "n1", nil)
	t0 := time.Unix(1000, 0)
	e := v1alpha1.BGPSessionStatus{Node: "n1", State: bgpspeaker.StateEstablished, PrefixesAdvertised: 3}
	obj := &v1alpha1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "tor"}}
	if !w.needsWrite("tor", e, obj, t0) {
		t.Error("an entry missing from the object is not written")
	}
	obj = withEntry(obj, e)
	w.writtenAt["tor"] = t0
	if w.needsWrite("tor", e, obj, t0.Add(time.Hour)) {
		t.Error("an unchanged entry is rewritten")
	}
	more := e
	more.PrefixesAdvertised = 4
	if w.needsWrite("tor", more, obj, t0.Add(statusCountInterval-time.Second)) {
		t.Error("a new prefix count alone is written before statusCountInterval")
	}
	if !w.needsWrite("tor", more, obj, t0.Add(statusCountInterval)) {
		t.Error("a new prefix count is never written")
	}
	down := more
	down.State = bgpspeaker.StateActive
	if !w.needsWrite("tor", down, obj, t0.Add(time.Second)) {
		t.Error("a state change waits")
	}
}

func TestSessionEntryCapsProblems(t *testing.T) {
	var problems []string
	for i := range 20 {
		problems = append(problems, fmt.Sprintf("IPv6 VIP 2001:db8::%d is not advertised", i))
	}
	e := sessionEntry("n1", bgpspeaker.PeerStatus{}, true, problems)
	if len(e.Problems) != maxProblems || !strings.Contains(e.Problems[maxProblems-1], "and 13 more") {
		t.Errorf("problems %q: want %d, the last saying how many more", e.Problems, maxProblems)
	}
}

func TestShuttingDown(t *testing.T) {
	n := planNode("n1")
	if shuttingDown(n) {
		t.Error("a node without conditions is shutting down")
	}
	n.Status.Conditions = []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionFalse, Reason: "KubeletNotReady", Message: "node is shutting down"}}
	if !shuttingDown(n) {
		t.Error("the kubelet's graceful shutdown is not recognised")
	}
	n.Status.Conditions[0].Message = "container runtime is down"
	if shuttingDown(n) {
		t.Error("any NotReady node counts as shutting down")
	}
}
