// Package metallb converts a MetalLB configuration (metallb.io/v1beta1 IPAddressPool,
// L2Advertisement, BGPAdvertisement and Community, metallb.io/v1beta1 and v1beta2 BGPPeer, and the
// ConfigMap of MetalLB before 0.13) into this project's IPPools and BGPPeers, plus a Secret for
// each BGP password MetalLB held in plain text.
//
// The conversion is pure: it reads a YAML stream and returns objects and findings, never talks
// to a cluster. Every MetalLB field either has an equivalent, becomes a reported decision (what
// was chosen and why), or is reported as having no equivalent: nothing is dropped silently.
// docs/migrate-from-metallb.md is the user's side of this contract.
package metallb
