// Package provider implements k8s.io/cloud-provider's Interface for bare metal under the name
// "baremetal": LoadBalancer hands out VIPs from IPPools (through the pure allocator in
// provider/ipam) and InstancesV2 initialises Nodes whose kubelets run with
// --cloud-provider=external. The Service object is the only thing it shares with the announcer:
// it writes status.loadBalancer and the baremetal.dev/allocated-pool annotation, nothing else.
package provider
