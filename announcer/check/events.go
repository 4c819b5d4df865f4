package check

import (
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
)

// RecordEvents records the findings at least as severe as min as events on the Node named node
// (the kubelet's convention: a Node reference's UID is its name), so that `kubectl describe node`
// shows them. The announcer calls it with the findings of Run at start.
func RecordEvents(recorder record.EventRecorder, node string, findings []Finding, min Severity) {
	ref := &v1.ObjectReference{Kind: "Node", Name: node, UID: types.UID(node)}
	for _, f := range findings {
		if f.Severity >= min {
			recorder.Event(ref, f.EventType(), f.Reason, f.EventMessage())
		}
	}
}
