package integration

import (
	"context"
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	cloudproviderapi "k8s.io/cloud-provider/api"
)

// TestNodeInitialisation plays the kubelet of --cloud-provider=external: it registers a Node with
// the uninitialized taint and its --node-ip annotation, and expects the CCM to initialise it.
func TestNodeInitialisation(t *testing.T) {
	node := createNode(t, "init-node-1", "198.18.0.11,2001:db8:0:1::11", map[string]string{
		v1.LabelTopologyZone: "rack-a", v1.LabelTopologyRegion: "dc-1",
	})
	var got *v1.Node
	waitFor(t, "node initialised", func() bool {
		n, err := env.Client.CoreV1().Nodes().Get(context.Background(), node.Name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		got = n
		return n.Spec.ProviderID != "" && !hasTaint(n, cloudproviderapi.TaintExternalCloudProvider)
	})
	if got.Spec.ProviderID != "baremetal://init-node-1" {
		t.Errorf("providerID = %q, want baremetal://init-node-1", got.Spec.ProviderID)
	}
	want := []v1.NodeAddress{
		{Type: v1.NodeInternalIP, Address: "198.18.0.11"},
		{Type: v1.NodeInternalIP, Address: "2001:db8:0:1::11"},
		{Type: v1.NodeHostName, Address: "init-node-1"},
	}
	waitFor(t, "node addresses", func() bool {
		n, err := env.Client.CoreV1().Nodes().Get(context.Background(), node.Name, metav1.GetOptions{})
		got = n
		return err == nil && slices.Equal(n.Status.Addresses, want)
	})
	if got.Labels[v1.LabelTopologyZone] != "rack-a" || got.Labels[v1.LabelTopologyRegion] != "dc-1" {
		t.Errorf("topology labels = %v, want the operator's rack-a / dc-1 kept", got.Labels)
	}
	requireCCMAlive(t)
}

// TestNodeWithBadNodeIP: a malformed provided-node-ip leaves the Node tainted (it must not get
// workloads with wrong addresses) and does not hurt the CCM.
func TestNodeWithBadNodeIP(t *testing.T) {
	bad := createNode(t, "bad-node-ip", "198.18.0.300", nil)
	good := createNode(t, "good-after-bad", "198.18.0.12", nil)
	waitFor(t, "the good node initialised", func() bool {
		n, err := env.Client.CoreV1().Nodes().Get(context.Background(), good.Name, metav1.GetOptions{})
		return err == nil && n.Spec.ProviderID == "baremetal://good-after-bad"
	})
	n, err := env.Client.CoreV1().Nodes().Get(context.Background(), bad.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !hasTaint(n, cloudproviderapi.TaintExternalCloudProvider) || n.Spec.ProviderID != "" {
		t.Errorf("node with a malformed node IP was initialised: providerID %q taints %v", n.Spec.ProviderID, n.Spec.Taints)
	}
	requireCCMAlive(t)
}

func createNode(t *testing.T, name, nodeIP string, labels map[string]string) *v1.Node {
	t.Helper()
	node := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Labels:      labels,
			Annotations: map[string]string{cloudproviderapi.AnnotationAlphaProvidedIPAddr: nodeIP},
		},
		Spec: v1.NodeSpec{Taints: []v1.Taint{{Key: cloudproviderapi.TaintExternalCloudProvider, Value: "true", Effect: v1.TaintEffectNoSchedule}}},
	}
	created, err := env.Client.CoreV1().Nodes().Create(context.Background(), node, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating node %s: %v", name, err)
	}
	t.Cleanup(func() { _ = env.Client.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{}) })
	return created
}

func hasTaint(n *v1.Node, key string) bool {
	return slices.ContainsFunc(n.Spec.Taints, func(t v1.Taint) bool { return t.Key == key })
}
