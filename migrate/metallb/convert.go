package metallb

import (
	"fmt"
	"io"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
)

// PeerLabel is set on every converted BGPPeer to its MetalLB name, so that a pool can select the
// peers a BGPAdvertisement named (MetalLB names peers; our pools select them by label).
const PeerLabel = "baremetal.dev/metallb-peer"

// PasswordNamespace is where BGP password Secrets go: the only namespace whose Secrets the
// shipped RBAC lets the announcer read.
const PasswordNamespace = "baremetal-bgp"

// FindingKind sorts findings by what the reader must do about them.
type FindingKind int

const (
	// NotConverted: MetalLB configuration with no equivalent here; its effect is lost unless
	// the operator acts. Read every one before applying.
	NotConverted FindingKind = iota
	// Decision: converted, with a choice or a difference in behaviour worth knowing.
	Decision
	// Ignored: input that is not MetalLB configuration (other objects, MetalLB's status).
	Ignored
)

func (k FindingKind) String() string {
	switch k {
	case NotConverted:
		return "not converted"
	case Decision:
		return "decision"
	case Ignored:
		return "ignored"
	}
	return fmt.Sprintf("FindingKind(%d)", int(k))
}

// Finding is one line of the conversion report.
type Finding struct {
	Kind FindingKind
	// Object names the MetalLB object: "BGPPeer metallb-system/tor".
	Object string
	// Field is the path of the field in that object, "" for the whole object.
	Field string
	// Message says what happened and, where something was lost, what to do.
	Message string
}

func (f Finding) String() string {
	if f.Field == "" {
		return f.Object + ": " + f.Message
	}
	return f.Object + " " + f.Field + ": " + f.Message
}

// Result is the converted configuration. Objects are sorted by name.
type Result struct {
	Pools []v1alpha1.IPPool
	Peers []v1alpha1.BGPPeer
	// Secrets hold the BGP passwords MetalLB kept in plain text in its BGPPeers.
	Secrets []corev1.Secret
	// Findings, in the order the converter met them.
	Findings []Finding
}

// Count returns how many findings are of kind k.
func (r *Result) Count(k FindingKind) int {
	n := 0
	for _, f := range r.Findings {
		if f.Kind == k {
			n++
		}
	}
	return n
}

// Convert reads a YAML stream of MetalLB objects (Lists too) and converts them. Objects that are
// not MetalLB configuration are reported as ignored; only a stream that is not YAML is an error
// (*ParseError).
func Convert(r io.Reader) (*Result, error) {
	c := &converter{res: &Result{}, poolWhere: map[string]string{}}
	if err := c.read(r); err != nil {
		return nil, err
	}
	if len(c.in.namespaces) > 1 {
		c.decide("input", "", fmt.Sprintf("objects come from the namespaces %s; MetalLB reads only its own, ours are cluster-wide: they are merged, and names must be unique across them", strings.Join(c.in.namespaces, ", ")))
	}
	c.aliasMap = c.aliases()
	c.convertPeers()
	c.convertPools()
	c.checkFamilies()
	// Differences every pool or peer of a kind shares are reported once, naming them all.
	if len(c.anyInterface) > 0 {
		c.decide(plural("IPPool", c.anyInterface), "announce.l2.interfaces", "MetalLB answered ARP/NDP on every interface of the node (the L2Advertisement lists no interfaces); the announcer answers on the interface holding the node's IP. List the interfaces if clients reach the VIPs through others")
	}
	if len(c.noGracefulRestart) > 0 {
		c.decide(plural("BGPPeer", c.noGracefulRestart), "gracefulRestart", "off in MetalLB (enableGracefulRestart unset); on by default here, so an announcer restart does not drop the routes. Set gracefulRestart.enabled: false if the router must not keep them")
	}
	slices.SortFunc(c.res.Pools, func(a, b v1alpha1.IPPool) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(c.res.Peers, func(a, b v1alpha1.BGPPeer) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(c.res.Secrets, func(a, b corev1.Secret) int { return strings.Compare(a.Name, b.Name) })
	return c.res, nil
}

// converter carries one conversion's input, output and report.
type converter struct {
	in  input
	res *Result
	// peerNames are the MetalLB names of the converted BGPPeers.
	peerNames []string
	// poolWhere names the IPAddressPool each IPPool came from.
	poolWhere map[string]string
	// anyInterface names the pools MetalLB announced on every interface; noGracefulRestart
	// the peers it ran without graceful restart.
	anyInterface, noGracefulRestart []string
	// aliasMap maps the Community aliases of the input to their values.
	aliasMap map[string]string
}

func (c *converter) add(k FindingKind, object, field, message string) {
	c.res.Findings = append(c.res.Findings, Finding{Kind: k, Object: object, Field: field, Message: message})
}

func (c *converter) notConverted(object, field, message string) {
	c.add(NotConverted, object, field, message)
}

func (c *converter) decide(object, field, message string) {
	c.add(Decision, object, field, message)
}

func (c *converter) ignore(object, message string) {
	c.add(Ignored, object, "", message)
}

// plural names a kind and its objects: "IPPool a", "IPPools a, b".
func plural(kind string, names []string) string {
	if len(names) > 1 {
		kind += "s"
	}
	return kind + " " + strings.Join(names, ", ")
}

func ptr[T any](v T) *T { return &v }
