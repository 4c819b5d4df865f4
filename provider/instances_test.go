package provider

import (
	"context"
	"reflect"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	cloudproviderapi "k8s.io/cloud-provider/api"
)

const providedIP = cloudproviderapi.AnnotationAlphaProvidedIPAddr

func testNode(name string, annotations, labels map[string]string, addresses ...v1.NodeAddress) *v1.Node {
	return &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations, Labels: labels},
		Status:     v1.NodeStatus{Addresses: addresses},
	}
}

func internalIP(a string) v1.NodeAddress { return v1.NodeAddress{Type: v1.NodeInternalIP, Address: a} }
func externalIP(a string) v1.NodeAddress { return v1.NodeAddress{Type: v1.NodeExternalIP, Address: a} }
func hostName(a string) v1.NodeAddress   { return v1.NodeAddress{Type: v1.NodeHostName, Address: a} }

func TestInstanceMetadataAddresses(t *testing.T) {
	tests := []struct {
		name string
		node *v1.Node
		want []v1.NodeAddress
	}{
		{"provided IPv4", testNode("n1", map[string]string{providedIP: "10.0.0.1"}, nil),
			[]v1.NodeAddress{internalIP("10.0.0.1"), hostName("n1")}},
		{"provided IPv6", testNode("n1", map[string]string{providedIP: "2001:db8::1"}, nil),
			[]v1.NodeAddress{internalIP("2001:db8::1"), hostName("n1")}},
		{"provided dual-stack keeps the order", testNode("n1", map[string]string{providedIP: "2001:db8::1,10.0.0.1"}, nil),
			[]v1.NodeAddress{internalIP("2001:db8::1"), internalIP("10.0.0.1"), hostName("n1")}},
		{"provided with spaces", testNode("n1", map[string]string{providedIP: " 10.0.0.1 , 2001:db8::1 "}, nil),
			[]v1.NodeAddress{internalIP("10.0.0.1"), internalIP("2001:db8::1"), hostName("n1")}},
		{"provided IPv6 is written canonically", testNode("n1", map[string]string{providedIP: "2001:DB8:0:0::1"}, nil),
			[]v1.NodeAddress{internalIP("2001:db8::1"), hostName("n1")}},
		{"provided IPv4-mapped is unmapped", testNode("n1", map[string]string{providedIP: "::ffff:10.0.0.1"}, nil),
			[]v1.NodeAddress{internalIP("10.0.0.1"), hostName("n1")}},
		{"provided wins over status addresses", testNode("n1", map[string]string{providedIP: "10.0.0.1"}, nil,
			internalIP("10.0.0.9"), externalIP("203.0.113.1")),
			[]v1.NodeAddress{internalIP("10.0.0.1"), hostName("n1")}},
		{"no annotation: InternalIPs from status", testNode("n1", nil, nil,
			internalIP("10.0.0.2"), externalIP("203.0.113.1"), internalIP("2001:db8::2")),
			[]v1.NodeAddress{internalIP("10.0.0.2"), internalIP("2001:db8::2"), hostName("n1")}},
		{"hostname from status", testNode("n1", map[string]string{providedIP: "10.0.0.1"}, nil, hostName("n1.example.org")),
			[]v1.NodeAddress{internalIP("10.0.0.1"), hostName("n1.example.org")}},
		{"hostname from status without annotation", testNode("n1", nil, nil, hostName("host-1"), internalIP("10.0.0.3")),
			[]v1.NodeAddress{internalIP("10.0.0.3"), hostName("host-1")}},
	}
	c, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.node.DeepCopy()
			md, err := c.InstanceMetadata(context.Background(), tt.node)
			if err != nil {
				t.Fatalf("InstanceMetadata: %v", err)
			}
			if !reflect.DeepEqual(md.NodeAddresses, tt.want) {
				t.Errorf("addresses = %v, want %v", md.NodeAddresses, tt.want)
			}
			if md.ProviderID != "baremetal://n1" {
				t.Errorf("ProviderID = %q, want baremetal://n1", md.ProviderID)
			}
			if !reflect.DeepEqual(before, tt.node) {
				t.Errorf("InstanceMetadata mutated the Node")
			}
		})
	}
}

func TestInstanceMetadataErrors(t *testing.T) {
	tests := []struct {
		name string
		node *v1.Node
		msg  []string
	}{
		{"garbage", testNode("n1", map[string]string{providedIP: "not-an-ip"}, nil, internalIP("10.0.0.1")),
			[]string{"n1", providedIP, "not-an-ip", "is not an IP address"}},
		{"empty annotation", testNode("n1", map[string]string{providedIP: ""}, nil, internalIP("10.0.0.1")),
			[]string{"n1", providedIP}},
		{"two IPv4", testNode("n1", map[string]string{providedIP: "10.0.0.1,10.0.0.2"}, nil),
			[]string{"10.0.0.1", "10.0.0.2", "same family"}},
		{"two IPv6", testNode("n1", map[string]string{providedIP: "2001:db8::1,2001:db8::2"}, nil),
			[]string{"same family"}},
		{"IPv4-mapped and IPv4", testNode("n1", map[string]string{providedIP: "::ffff:10.0.0.1,10.0.0.2"}, nil),
			[]string{"same family"}},
		{"three", testNode("n1", map[string]string{providedIP: "10.0.0.1,2001:db8::1,10.0.0.2"}, nil),
			[]string{"at most two", "got 3"}},
		{"trailing comma", testNode("n1", map[string]string{providedIP: "10.0.0.1,"}, nil),
			[]string{`"" is not an IP address`}},
		{"zone", testNode("n1", map[string]string{providedIP: "fe80::1%eth0"}, nil),
			[]string{"fe80::1%eth0", "cannot be a node address"}},
		{"unspecified", testNode("n1", map[string]string{providedIP: "0.0.0.0"}, nil),
			[]string{"0.0.0.0", "cannot be a node address"}},
		{"unspecified IPv6", testNode("n1", map[string]string{providedIP: "::"}, nil),
			[]string{"cannot be a node address"}},
		{"CIDR", testNode("n1", map[string]string{providedIP: "10.0.0.1/24"}, nil),
			[]string{"10.0.0.1/24"}},
		{"no annotation, no InternalIP", testNode("n1", nil, nil, externalIP("203.0.113.1"), hostName("n1")),
			[]string{"n1", "no InternalIP", "--node-ip"}},
		{"no annotation, no addresses", testNode("n1", nil, nil),
			[]string{"n1", "--node-ip"}},
	}
	c, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			md, err := c.InstanceMetadata(context.Background(), tt.node)
			if err == nil {
				t.Fatalf("InstanceMetadata = %+v, want an error", md)
			}
			for _, s := range tt.msg {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

func TestInstanceMetadataTopology(t *testing.T) {
	c, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{
		v1.LabelTopologyZone:       "rack-3",
		v1.LabelTopologyRegion:     "dc-west",
		v1.LabelInstanceTypeStable: "r640",
		// Deprecated beta labels are not read.
		v1.LabelFailureDomainBetaZone: "old-zone",
	}
	md, err := c.InstanceMetadata(context.Background(), testNode("worker-7", map[string]string{providedIP: "10.0.0.7"}, labels))
	if err != nil {
		t.Fatal(err)
	}
	if md.ProviderID != "baremetal://worker-7" || md.Zone != "rack-3" || md.Region != "dc-west" || md.InstanceType != "r640" {
		t.Errorf("metadata = %+v", md)
	}

	md, err = c.InstanceMetadata(context.Background(), testNode("worker-8", nil, nil, internalIP("10.0.0.8")))
	if err != nil {
		t.Fatal(err)
	}
	if md.ProviderID != ProviderIDPrefix+"worker-8" || md.Zone != "" || md.Region != "" || md.InstanceType != "" {
		t.Errorf("metadata without labels = %+v", md)
	}
	if !strings.HasPrefix(md.ProviderID, "baremetal://") {
		t.Errorf("ProviderID %q", md.ProviderID)
	}
}

func TestInstanceExistsAndShutdown(t *testing.T) {
	c, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	nodes := []*v1.Node{
		testNode("n1", map[string]string{providedIP: "10.0.0.1"}, nil),
		testNode("n2", map[string]string{providedIP: "garbage"}, nil),
		testNode("n3", nil, nil),
		{ObjectMeta: metav1.ObjectMeta{Name: "n4"}, Spec: v1.NodeSpec{ProviderID: "other://n4"}},
	}
	for _, n := range nodes {
		exists, err := c.InstanceExists(context.Background(), n)
		if err != nil || !exists {
			t.Errorf("InstanceExists(%s) = %v, %v; want true, nil", n.Name, exists, err)
		}
		shutdown, err := c.InstanceShutdown(context.Background(), n)
		if err != nil || shutdown {
			t.Errorf("InstanceShutdown(%s) = %v, %v; want false, nil", n.Name, shutdown, err)
		}
	}
}

func TestCloudInterfaces(t *testing.T) {
	c, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.ProviderName() != "baremetal" {
		t.Errorf("ProviderName = %q", c.ProviderName())
	}
	if _, ok := c.InstancesV2(); !ok {
		t.Error("InstancesV2 not supported")
	}
	if _, ok := c.LoadBalancer(); !ok {
		t.Error("LoadBalancer not supported")
	}
	if _, ok := c.Instances(); ok {
		t.Error("Instances supported; only InstancesV2 should be")
	}
	if _, ok := c.Zones(); ok {
		t.Error("Zones supported")
	}
	if _, ok := c.Routes(); ok {
		t.Error("Routes supported")
	}
	if _, ok := c.Clusters(); ok {
		t.Error("Clusters supported")
	}
	if _, err := New(strings.NewReader("key: value")); err == nil {
		t.Error("New accepted a non-empty cloud config")
	}
	if _, err := New(strings.NewReader("")); err != nil {
		t.Errorf("New with an empty cloud config: %v", err)
	}
}
