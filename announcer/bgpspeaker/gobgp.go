package bgpspeaker

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Names of the GoBGP policy objects the speaker owns.
const (
	exportPolicy = "bgpspeaker-export"
	importPolicy = "bgpspeaker-import"
	globalTable  = "global"
)

var (
	familyV4 = &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	familyV6 = &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
)

func seconds(d time.Duration) uint64 { return uint64((d + time.Second - 1) / time.Second) }

// apiPeer builds GoBGP's neighbor configuration. restarting sets the R bit (RFC 4724) in the
// OPEN: only for the first session after a restart without Stop.
func apiPeer(c peerConf, restarting bool) *api.Peer {
	p := &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: c.Address.String(),
			PeerAsn:         c.ASN,
			LocalAsn:        c.LocalASN,
			AuthPassword:    c.Password,
		},
		Timers: &api.Timers{Config: &api.TimersConfig{
			ConnectRetry:      seconds(c.Connect),
			HoldTime:          seconds(c.Hold),
			KeepaliveInterval: seconds(c.Keepalive),
			// Only ResetPeer uses it, and the speaker never resets; keep it short anyway.
			IdleHoldTimeAfterReset: 1,
		}},
		Transport: &api.Transport{PassiveMode: c.Passive, RemotePort: uint32(c.Port)},
		// Both families on every session: an IPv6 route with an explicit IPv6 next hop may go over
		// an IPv4 session (RFC 4760), and the router activates what it wants.
		AfiSafis: []*api.AfiSafi{afiSafi(familyV4, c.GR), afiSafi(familyV6, c.GR)},
	}
	if c.Source.IsValid() {
		p.Transport.LocalAddress = c.Source.String()
	}
	if c.Multihop > 0 {
		p.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: uint32(c.Multihop)}
	}
	if c.GR {
		p.GracefulRestart = &api.GracefulRestart{
			Enabled:             true,
			RestartTime:         uint32(seconds(c.RestartTime)),
			NotificationEnabled: true,
			DeferralTime:        uint32(seconds(DeferralTime)),
			LocalRestarting:     restarting,
		}
	}
	return p
}

func afiSafi(f *api.Family, gr bool) *api.AfiSafi {
	a := &api.AfiSafi{Config: &api.AfiSafiConfig{Family: f, Enabled: true}}
	if gr {
		a.MpGracefulRestart = &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}}
	}
	return a
}

// apiPath builds GoBGP's path for c.
func apiPath(c pathConf) (*api.Path, error) {
	addr := c.Prefix.Addr()
	nlri, err := anypb.New(&api.IPAddressPrefix{Prefix: addr.String(), PrefixLen: uint32(c.Prefix.Bits())})
	if err != nil {
		return nil, err
	}
	attrs := []proto.Message{&api.OriginAttribute{Origin: 0}} // IGP
	fam := familyV4
	nh := c.NextHop
	if addr.Is4() {
		if !nh.IsValid() {
			nh = netip.IPv4Unspecified() // GoBGP puts the session's local address
		}
		attrs = append(attrs, &api.NextHopAttribute{NextHop: nh.String()})
	} else {
		fam = familyV6
		if !nh.IsValid() {
			nh = netip.IPv6Unspecified()
		}
		attrs = append(attrs, &api.MpReachNLRIAttribute{Family: fam, NextHops: []string{nh.String()}, Nlris: []*anypb.Any{nlri}})
	}
	if len(c.Communities) > 0 {
		attrs = append(attrs, &api.CommunitiesAttribute{Communities: slices.Clone(c.Communities)})
	}
	if len(c.Large) > 0 {
		lc := make([]*api.LargeCommunity, len(c.Large))
		for i, l := range c.Large {
			lc[i] = &api.LargeCommunity{GlobalAdmin: l.GlobalAdmin, LocalData1: l.Local1, LocalData2: l.Local2}
		}
		attrs = append(attrs, &api.LargeCommunitiesAttribute{Communities: lc})
	}
	if c.MED != nil {
		attrs = append(attrs, &api.MultiExitDiscAttribute{Med: *c.MED})
	}
	if c.LocalPref != nil {
		attrs = append(attrs, &api.LocalPrefAttribute{LocalPref: *c.LocalPref})
	}
	pattrs := make([]*anypb.Any, len(attrs))
	for i, a := range attrs {
		if pattrs[i], err = anypb.New(a); err != nil {
			return nil, err
		}
	}
	return &api.Path{Family: fam, Nlri: nlri, Pattrs: pattrs}, nil
}

// exportPolicies builds the global export policy: one statement per (set of peers, family),
// accepting that family's prefixes for those peers; everything else is rejected by the
// assignment's default. GoBGP v3 has a single export policy for all non-route-server peers, so
// per-peer filtering has to be a neighbor-set condition.
func exportPolicies(export map[netip.Prefix][]netip.Addr) *api.SetPoliciesRequest {
	type group struct {
		peers []netip.Addr
		v4    bool
		pfx   []netip.Prefix
	}
	groups := map[string]*group{}
	for prefix, peers := range export {
		if len(peers) == 0 {
			continue
		}
		key := fmt.Sprint(peers, prefix.Addr().Is4())
		g := groups[key]
		if g == nil {
			g = &group{peers: peers, v4: prefix.Addr().Is4()}
			groups[key] = g
		}
		g.pfx = append(g.pfx, prefix)
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	req := &api.SetPoliciesRequest{}
	pol := &api.Policy{Name: exportPolicy}
	for i, k := range keys {
		g := groups[k]
		slices.SortFunc(g.pfx, comparePrefix)
		n := strconv.Itoa(i)
		ns := &api.DefinedSet{DefinedType: api.DefinedType_NEIGHBOR, Name: "peers-" + n}
		for _, a := range g.peers {
			ns.List = append(ns.List, netip.PrefixFrom(a, a.BitLen()).String())
		}
		ps := &api.DefinedSet{DefinedType: api.DefinedType_PREFIX, Name: "prefixes-" + n}
		for _, p := range g.pfx {
			ps.Prefixes = append(ps.Prefixes, &api.Prefix{IpPrefix: p.String(), MaskLengthMin: uint32(p.Bits()), MaskLengthMax: uint32(p.Bits())})
		}
		req.DefinedSets = append(req.DefinedSets, ns, ps)
		pol.Statements = append(pol.Statements, &api.Statement{
			Name: "accept-" + n,
			Conditions: &api.Conditions{
				NeighborSet: &api.MatchSet{Type: api.MatchSet_ANY, Name: ns.Name},
				PrefixSet:   &api.MatchSet{Type: api.MatchSet_ANY, Name: ps.Name},
			},
			Actions: &api.Actions{RouteAction: api.RouteAction_ACCEPT},
		})
	}
	// GoBGP applies the global import policy to the paths we add too: accept those, and nothing
	// the routers send.
	imp := &api.Policy{Name: importPolicy, Statements: []*api.Statement{{
		Name:       "accept-local",
		Conditions: &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_LOCAL},
		Actions:    &api.Actions{RouteAction: api.RouteAction_ACCEPT},
	}}}
	req.Policies = []*api.Policy{pol, imp}
	return req
}

// sessionState maps GoBGP's states to RFC 4271's names.
func sessionState(s api.PeerState_SessionState) string {
	switch s {
	case api.PeerState_CONNECT:
		return StateConnect
	case api.PeerState_ACTIVE:
		return StateActive
	case api.PeerState_OPENSENT:
		return StateOpenSent
	case api.PeerState_OPENCONFIRM:
		return StateOpenConfirm
	case api.PeerState_ESTABLISHED:
		return StateEstablished
	default:
		return StateIdle
	}
}
