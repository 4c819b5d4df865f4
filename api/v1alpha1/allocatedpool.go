package v1alpha1

import "strings"

// AnnotationAllocatedPool is written on a Service by the cloud-controller-manager when the address
// alone does not tell which pool a VIP came from (see package poolindex for the rule): "VIP=pool"
// pairs, for example "198.18.0.5=first-pool,2001:db8::5=v6-pool". A VIP without an entry belongs
// to the first pool, by priority then name, that contains it. Each pool is keyed by its VIP
// because the annotation is written before the status: were the CCM to stop between the two
// writes, a positional list would describe VIPs the status does not show yet.
const AnnotationAllocatedPool = "baremetal.dev/allocated-pool"

// FormatAllocatedPools renders the annotation from VIP and pool pairs, in status order.
func FormatAllocatedPools(vips, pools []string) string {
	parts := make([]string, len(vips))
	for i, vip := range vips {
		parts[i] = vip + "=" + pools[i]
	}
	return strings.Join(parts, ",")
}

// AllocatedPoolOf returns the pool the annotation value names for vip, the address at index i of
// status.loadBalancer.ingress, or "". Values written before pools were keyed by VIP (a plain
// list of pools in status order) are read by position.
func AllocatedPoolOf(value, vip string, i int) string {
	if value == "" {
		return ""
	}
	entries := strings.Split(value, ",")
	for _, entry := range entries {
		if addr, pool, keyed := strings.Cut(entry, "="); keyed && strings.TrimSpace(addr) == vip {
			return strings.TrimSpace(pool)
		}
	}
	if i >= 0 && i < len(entries) && !strings.Contains(entries[i], "=") {
		return strings.TrimSpace(entries[i])
	}
	return ""
}

// AllocatedPoolVIPs lists the VIPs the annotation value has keyed entries for.
func AllocatedPoolVIPs(value string) []string {
	var out []string
	for _, entry := range strings.Split(value, ",") {
		if vip, _, keyed := strings.Cut(entry, "="); keyed {
			out = append(out, strings.TrimSpace(vip))
		}
	}
	return out
}
