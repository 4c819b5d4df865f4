package provider

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	v1 "k8s.io/api/core/v1"
	cloudprovider "k8s.io/cloud-provider"
	cloudproviderapi "k8s.io/cloud-provider/api"
)

// InstanceExists is always true: a bare-metal machine does not vanish because an API says so,
// and the node lifecycle controller must never delete its Node.
func (c *Cloud) InstanceExists(context.Context, *v1.Node) (bool, error) { return true, nil }

// InstanceShutdown is always false: there is no out-of-band power state to read.
func (c *Cloud) InstanceShutdown(context.Context, *v1.Node) (bool, error) { return false, nil }

// InstanceMetadata gives the Node its provider ID (baremetal://<node-name>), its addresses (the
// kubelet's --node-ip, one or two families, plus the hostname) and the topology labels an
// operator set.
func (c *Cloud) InstanceMetadata(_ context.Context, node *v1.Node) (*cloudprovider.InstanceMetadata, error) {
	addresses, err := nodeAddresses(node)
	if err != nil {
		return nil, err
	}
	return &cloudprovider.InstanceMetadata{
		ProviderID:    ProviderIDPrefix + node.Name,
		InstanceType:  node.Labels[v1.LabelInstanceTypeStable],
		NodeAddresses: addresses,
		Zone:          node.Labels[v1.LabelTopologyZone],
		Region:        node.Labels[v1.LabelTopologyRegion],
	}, nil
}

// nodeAddresses reads the kubelet's provided node IPs; without them, the InternalIPs the Node
// already reports.
func nodeAddresses(node *v1.Node) ([]v1.NodeAddress, error) {
	var out []v1.NodeAddress
	if provided, ok := node.Annotations[cloudproviderapi.AnnotationAlphaProvidedIPAddr]; ok {
		ips, err := parseProvidedNodeIPs(provided)
		if err != nil {
			return nil, fmt.Errorf("node %s: annotation %s=%q: %w", node.Name, cloudproviderapi.AnnotationAlphaProvidedIPAddr, provided, err)
		}
		for _, ip := range ips {
			out = append(out, v1.NodeAddress{Type: v1.NodeInternalIP, Address: ip.String()})
		}
	} else {
		for _, a := range node.Status.Addresses {
			if a.Type == v1.NodeInternalIP {
				out = append(out, a)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("node %s has no %s annotation and no InternalIP address: start its kubelet with --node-ip=<address>",
				node.Name, cloudproviderapi.AnnotationAlphaProvidedIPAddr)
		}
	}
	hostname := node.Name
	for _, a := range node.Status.Addresses {
		if a.Type == v1.NodeHostName {
			hostname = a.Address
		}
	}
	return append(out, v1.NodeAddress{Type: v1.NodeHostName, Address: hostname}), nil
}

// parseProvidedNodeIPs parses the kubelet's --node-ip as it records it: one address, or two of
// different families separated by a comma.
func parseProvidedNodeIPs(s string) ([]netip.Addr, error) {
	parts := strings.Split(s, ",")
	if len(parts) > 2 {
		return nil, fmt.Errorf("at most two addresses (one per family) are allowed, got %d", len(parts))
	}
	var out []netip.Addr
	for _, part := range parts {
		addr, err := netip.ParseAddr(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP address", strings.TrimSpace(part))
		}
		if addr.Zone() != "" || addr.IsUnspecified() {
			return nil, fmt.Errorf("%q cannot be a node address", part)
		}
		addr = addr.Unmap()
		if len(out) == 1 && out[0].Is4() == addr.Is4() {
			return nil, fmt.Errorf("%s and %s are of the same family; give one IPv4 and one IPv6 address", out[0], addr)
		}
		out = append(out, addr)
	}
	return out, nil
}
