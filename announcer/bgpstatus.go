package announcer

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/klog/v2"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/bgpspeaker"
	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
)

// summaryManager is the field manager of BGPPeer.status.summary and conditions: any announcer
// that sees them disagree with the node entries rewrites them, so they converge whoever wrote last.
const summaryManager = "baremetal-announcer-summary"

// bgpStatusWriter writes this node's entry in each BGPPeer's status, with server-side apply
// under a field manager of its own: the announcers never overwrite each other's entries, and
// dropping an entry from an apply removes it. It runs on its own goroutine, so a slow API server
// never delays a route change, and it bounds its writes: at most one round per
// statusMinInterval, and a change of the prefix count alone at most every statusCountInterval.
type bgpStatusWriter struct {
	dyn  dynamic.Interface
	node string
	// nodeExists says whether a Node is in the cache: entries of deleted Nodes are pruned.
	nodeExists func(string) bool
	// mu serialises apply (the writer's goroutine) and removeAll (the exit path).
	mu sync.Mutex
	// written holds the entry last applied per BGPPeer, and when; entries of peers that no
	// longer select this node are removed.
	written   map[string]v1alpha1.BGPSessionStatus
	writtenAt map[string]time.Time
	jobs      chan statusJob
}

// statusJob is what the status should say now.
type statusJob struct {
	entries map[string]v1alpha1.BGPSessionStatus
	objects map[string]*v1alpha1.BGPPeer
}

const (
	statusMinInterval   = time.Second
	statusCountInterval = 30 * time.Second
	// maxProblems bounds one node's share of a BGPPeer's status (the object must stay far below
	// etcd's 1.5 MiB with hundreds of nodes).
	maxProblems      = 8
	maxProblemLength = 256
)

func newBGPStatusWriter(dyn dynamic.Interface, node string, nodeExists func(string) bool) *bgpStatusWriter {
	return &bgpStatusWriter{dyn: dyn, node: node, nodeExists: nodeExists,
		written: map[string]v1alpha1.BGPSessionStatus{}, writtenAt: map[string]time.Time{}, jobs: make(chan statusJob, 1)}
}

// submit hands the writer the latest status, replacing one it has not started on.
func (w *bgpStatusWriter) submit(job statusJob) {
	for {
		select {
		case w.jobs <- job:
			return
		default:
		}
		select {
		case <-w.jobs:
		default:
		}
	}
}

// run writes submitted statuses until ctx ends.
func (w *bgpStatusWriter) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case job := <-w.jobs:
			w.apply(ctx, job.entries, job.objects, time.Now())
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(statusMinInterval):
		}
	}
}

func (w *bgpStatusWriter) manager() string { return "baremetal-announcer-" + w.node }

// sessionEntry is this node's status entry for a peer.
func sessionEntry(node string, st bgpspeaker.PeerStatus, known bool, problems []string) v1alpha1.BGPSessionStatus {
	e := v1alpha1.BGPSessionStatus{Node: node, State: bgpspeaker.StateIdle}
	if known {
		e.State = st.State
		e.PrefixesAdvertised = int32(min(st.Advertised, 1<<31-1))
		e.LastError = truncate(st.LastError, 1024)
		if !st.Since.IsZero() {
			// Seconds: the entry is rewritten only when it changes, and sub-second "since"
			// values would make every state change look like a new one to readers.
			e.Since = &metav1.Time{Time: st.Since.Truncate(time.Second)}
		}
	}
	if len(problems) > 0 {
		e.Problems = slices.Clone(problems[:min(len(problems), maxProblems)])
		for i := range e.Problems {
			e.Problems[i] = truncate(e.Problems[i], maxProblemLength)
		}
		if len(problems) > maxProblems {
			e.Problems[maxProblems-1] = fmt.Sprintf("... and %d more (see the announcer's log on %s)", len(problems)-maxProblems+1, node)
		}
		if e.LastError == "" && !known {
			e.LastError = truncate(problems[0], 1024)
		}
	}
	return e
}

// report writes statuses, events and metrics for the plan just applied.
func (r *bgpRunner) report(ctx context.Context, plan bgpPlan) {
	statuses := map[string]bgpspeaker.PeerStatus{}
	if r.speaker != nil {
		for _, st := range r.speaker.Status() {
			statuses[st.Name] = st
		}
	}
	logger := klog.FromContext(ctx)
	entries := map[string]v1alpha1.BGPSessionStatus{}
	for _, name := range plan.peers {
		st, known := statuses[name]
		problems := plan.problems[name]
		if known && st.Received > 0 {
			// GoBGP keeps every received path in its Adj-RIB-In, before the import policy.
			problems = append(slices.Clone(problems), fmt.Sprintf("the router sends %d routes: they are refused, but GoBGP keeps them in memory; configure the router to send the nodes none (an outbound deny-all route-map)", st.Received))
		}
		entries[name] = sessionEntry(r.cfg.NodeName, st, known, problems)
		r.sessionEvents(ctx, name, st, known)
	}
	if s := fmt.Sprint(plan.problems); s != r.lastProblems && len(plan.problems) > 0 {
		logger.Info("BGP configuration this node cannot apply", "problems", plan.problems)
		r.lastProblems = s
	}
	r.metrics.bgpSessions(statuses, plan.peers)
	objects := map[string]*v1alpha1.BGPPeer{}
	for _, p := range plan.objects {
		objects[p.Name] = p
	}
	r.status.submit(statusJob{entries: entries, objects: objects})
}

// sessionEvents records an event on the BGPPeer when this node's session goes up or down.
func (r *bgpRunner) sessionEvents(ctx context.Context, peer string, st bgpspeaker.PeerStatus, known bool) {
	state := bgpspeaker.StateIdle
	if known {
		state = st.State
	}
	prev, seen := r.lastStates[peer]
	r.lastStates[peer] = state
	up, wasUp := state == bgpspeaker.StateEstablished, prev == bgpspeaker.StateEstablished
	if seen && up == wasUp || !seen && !up {
		return
	}
	ref := &v1.ObjectReference{Kind: "BGPPeer", APIVersion: v1alpha1.SchemeGroupVersion.String(), Name: peer}
	logger := klog.FromContext(ctx)
	if up {
		logger.Info("BGP session established", "peer", peer, "address", st.Address)
		r.recorder.Eventf(ref, v1.EventTypeNormal, "SessionEstablished", "node %s: session with %s established", r.cfg.NodeName, st.Address)
		return
	}
	logger.Info("BGP session down", "peer", peer, "address", st.Address, "state", state, "lastError", st.LastError)
	router := "the router"
	if st.Address.IsValid() {
		router = st.Address.String()
	}
	msg := fmt.Sprintf("node %s: session with %s is %s", r.cfg.NodeName, router, state)
	if st.LastError != "" {
		msg += ": " + st.LastError
	}
	r.recorder.Event(ref, v1.EventTypeWarning, "SessionDown", msg)
}

// apply writes the entries that changed, removes this node's entry from peers that no longer
// select it, and repairs summaries that disagree with their entries.
func (w *bgpStatusWriter) apply(ctx context.Context, entries map[string]v1alpha1.BGPSessionStatus, objects map[string]*v1alpha1.BGPPeer, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	logger := klog.FromContext(ctx)
	for name, e := range entries {
		obj, exists := objects[name]
		if !exists {
			continue
		}
		if !w.needsWrite(name, e, obj, now) {
			continue
		}
		if err := w.applyEntry(ctx, name, &e); err != nil {
			logger.V(2).Info("Writing the BGPPeer status", "peer", name, "err", err)
			continue
		}
		w.written[name], w.writtenAt[name] = e, now
		objects[name] = withEntry(obj, e)
	}
	for name := range w.written {
		if _, still := entries[name]; still {
			continue
		}
		if _, exists := objects[name]; exists {
			if err := w.applyEntry(ctx, name, nil); err != nil {
				logger.V(2).Info("Removing this node from the BGPPeer status", "peer", name, "err", err)
				continue
			}
			objects[name] = withoutEntry(objects[name], w.node)
		}
		delete(w.written, name)
		delete(w.writtenAt, name)
	}
	for name := range entries {
		if obj, ok := objects[name]; ok {
			w.repairSummary(ctx, w.prune(ctx, obj))
		}
	}
}

// needsWrite says whether this node's entry must be rewritten: it differs from the object's in
// more than the prefix count, or the count is stale by statusCountInterval. Entries are compared
// with the object's, so one removed by someone else is written again.
func (w *bgpStatusWriter) needsWrite(peer string, e v1alpha1.BGPSessionStatus, obj *v1alpha1.BGPPeer, now time.Time) bool {
	current := entryOf(obj, w.node)
	if current == nil {
		return true
	}
	if equality.Semantic.DeepEqual(*current, e) {
		return false
	}
	withCount := *current
	withCount.PrefixesAdvertised = e.PrefixesAdvertised
	if equality.Semantic.DeepEqual(withCount, e) {
		return now.Sub(w.writtenAt[peer]) >= statusCountInterval
	}
	return true
}

// prune removes the entries of Nodes that no longer exist (their announcers cannot), with an
// update that any announcer may make: the resourceVersion guards against racing writers.
func (w *bgpStatusWriter) prune(ctx context.Context, p *v1alpha1.BGPPeer) *v1alpha1.BGPPeer {
	if w.nodeExists == nil {
		return p
	}
	kept := slices.DeleteFunc(slices.Clone(p.Status.Nodes), func(e v1alpha1.BGPSessionStatus) bool { return !w.nodeExists(e.Node) })
	if len(kept) == len(p.Status.Nodes) {
		return p
	}
	out := p.DeepCopy()
	out.Status.Nodes = kept
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(out)
	if err != nil {
		return p
	}
	u := &unstructured.Unstructured{Object: content}
	u.SetAPIVersion(v1alpha1.SchemeGroupVersion.String())
	u.SetKind("BGPPeer")
	updateCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := w.dyn.Resource(v1alpha1.BGPPeerResource).UpdateStatus(updateCtx, u, metav1.UpdateOptions{}); err != nil {
		klog.FromContext(ctx).V(2).Info("Pruning deleted Nodes from the BGPPeer status", "peer", p.Name, "err", err)
		return p
	}
	return out
}

// removeAll removes this node's entries (the announcer stops for good).
func (w *bgpStatusWriter) removeAll(ctx context.Context) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for name := range w.written {
		_ = w.applyEntry(ctx, name, nil)
	}
	clear(w.written)
}

func (w *bgpStatusWriter) applyEntry(ctx context.Context, peer string, e *v1alpha1.BGPSessionStatus) error {
	status := map[string]any{}
	if e != nil {
		content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(e)
		if err != nil {
			return err
		}
		status["nodes"] = []any{content}
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.SchemeGroupVersion.String(), "kind": "BGPPeer",
		"metadata": map[string]any{"name": peer},
		"status":   status,
	}}
	applyCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := w.dyn.Resource(v1alpha1.BGPPeerResource).ApplyStatus(applyCtx, peer, u, metav1.ApplyOptions{FieldManager: w.manager(), Force: true})
	return err
}

// summarize is a peer's summary and Established condition from its node entries.
func summarize(p *v1alpha1.BGPPeer) (string, metav1.Condition) {
	var up int
	var down []string
	for _, n := range p.Status.Nodes {
		if n.State == bgpspeaker.StateEstablished {
			up++
		} else {
			down = append(down, n.Node+" ("+n.State+")")
		}
	}
	total := len(p.Status.Nodes)
	summary := fmt.Sprintf("Established %d/%d", up, total)
	cond := metav1.Condition{Type: v1alpha1.ConditionEstablished, Status: metav1.ConditionTrue, Reason: "AllSessionsEstablished",
		Message: fmt.Sprintf("all %d nodes have an established session", total), ObservedGeneration: p.Generation}
	switch {
	case total == 0:
		summary = "No nodes"
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, "NoNodes", "no node peers with this router yet (check spec.nodeSelector, and that the announcers run)"
	case len(down) > 0:
		slices.Sort(down)
		cond.Status, cond.Reason = metav1.ConditionFalse, "SessionsDown"
		cond.Message = truncate(fmt.Sprintf("%d of %d sessions are not established: %s", len(down), total, strings.Join(down, ", ")), 1024)
	}
	return summary, cond
}

func (w *bgpStatusWriter) repairSummary(ctx context.Context, p *v1alpha1.BGPPeer) {
	summary, cond := summarize(p)
	if p.Status.Summary == summary {
		if c := findCondition(p.Status.Conditions, cond.Type); c != nil && c.Status == cond.Status && c.Reason == cond.Reason && c.Message == cond.Message && c.ObservedGeneration == cond.ObservedGeneration {
			return
		}
	}
	cond.LastTransitionTime = metav1.Now()
	if c := findCondition(p.Status.Conditions, cond.Type); c != nil && c.Status == cond.Status {
		cond.LastTransitionTime = c.LastTransitionTime
	}
	condContent, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&cond)
	if err != nil {
		return
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.SchemeGroupVersion.String(), "kind": "BGPPeer",
		"metadata": map[string]any{"name": p.Name},
		"status":   map[string]any{"summary": summary, "conditions": []any{condContent}},
	}}
	applyCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := w.dyn.Resource(v1alpha1.BGPPeerResource).ApplyStatus(applyCtx, p.Name, u, metav1.ApplyOptions{FieldManager: summaryManager, Force: true}); err != nil {
		klog.FromContext(ctx).V(2).Info("Writing the BGPPeer summary", "peer", p.Name, "err", err)
	}
}

func findCondition(conds []metav1.Condition, t string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}

func entryOf(p *v1alpha1.BGPPeer, node string) *v1alpha1.BGPSessionStatus {
	for i := range p.Status.Nodes {
		if p.Status.Nodes[i].Node == node {
			return &p.Status.Nodes[i]
		}
	}
	return nil
}

func withEntry(p *v1alpha1.BGPPeer, e v1alpha1.BGPSessionStatus) *v1alpha1.BGPPeer {
	out := withoutEntry(p, e.Node)
	out.Status.Nodes = append(out.Status.Nodes, e)
	return out
}

func withoutEntry(p *v1alpha1.BGPPeer, node string) *v1alpha1.BGPPeer {
	out := p.DeepCopy()
	out.Status.Nodes = slices.DeleteFunc(out.Status.Nodes, func(e v1alpha1.BGPSessionStatus) bool { return e.Node == node })
	return out
}

// truncate makes text from outside (a router's shutdown message, GoBGP's errors) safe for the
// API and for metric labels: valid UTF-8, at most n bytes, cut on a character boundary.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	cut := n - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
