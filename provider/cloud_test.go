package provider

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

func TestTrimService(t *testing.T) {
	full := func() *v1.Service {
		return &v1.Service{ObjectMeta: metav1.ObjectMeta{
			Name: "web", Namespace: "default",
			Annotations: map[string]string{
				lastAppliedAnnotation: `{"kind":"Service"}`,
				AnnotationPool:        "first",
			},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl", FieldsV1: metav1.NewFieldsV1(`{"f:spec":{}}`)}},
		}}
	}
	check := func(t *testing.T, got any) {
		t.Helper()
		svc, ok := got.(*v1.Service)
		if !ok {
			t.Fatalf("got %T", got)
		}
		if svc.ManagedFields != nil {
			t.Error("managedFields kept")
		}
		if _, ok := svc.Annotations[lastAppliedAnnotation]; ok {
			t.Error("last-applied-configuration kept")
		}
		if svc.Annotations[AnnotationPool] != "first" {
			t.Errorf("annotations %v lost the provider's own", svc.Annotations)
		}
	}
	t.Run("service", func(t *testing.T) {
		got, err := trimService(full())
		if err != nil {
			t.Fatal(err)
		}
		check(t, got)
	})
	t.Run("tombstone", func(t *testing.T) {
		got, err := trimService(cache.DeletedFinalStateUnknown{Key: "default/web", Obj: full()})
		if err != nil {
			t.Fatal(err)
		}
		tombstone, ok := got.(cache.DeletedFinalStateUnknown)
		if !ok {
			t.Fatalf("got %T", got)
		}
		check(t, tombstone.Obj)
	})
	t.Run("other objects pass", func(t *testing.T) {
		node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}}}
		got, err := trimService(node)
		if err != nil || got.(*v1.Node).ManagedFields == nil {
			t.Errorf("a Node was changed: %v %v", got, err)
		}
	})
}
