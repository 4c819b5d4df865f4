// Command floorccm is BENCHMARK SCAFFOLDING: the upstream cloud-controller-manager command with a
// throwaway provider whose EnsureLoadBalancer returns an address at once, without reading or
// writing anything. What a Service costs with it is the upstream service controller's floor: its
// finalizer patch, its status write and its two events. BenchmarkTimeToExternalIP runs it in the
// same run as ours, so "within 1.2x of the floor" compares like with like.
package main

import (
	"context"
	"io"
	"net/netip"
	"os"
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	cloudprovider "k8s.io/cloud-provider"
	"k8s.io/cloud-provider/app"
	"k8s.io/cloud-provider/app/config"
	"k8s.io/cloud-provider/names"
	"k8s.io/cloud-provider/options"
	"k8s.io/component-base/cli"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/klog/v2"
)

const providerName = "floor"

func main() {
	cloudprovider.RegisterCloudProvider(providerName, func(io.Reader) (cloudprovider.Interface, error) {
		return &floor{next: netip.MustParseAddr("198.18.128.0"), byService: map[types.UID]netip.Addr{}}, nil
	})
	opts, err := options.NewCloudControllerManagerOptions()
	if err != nil {
		klog.Fatalf("Cannot build the command options: %v", err)
	}
	// The same client limits as ours (cmd/baremetal-cloud-controller-manager), so only the
	// provider differs.
	opts.KubeCloudShared.CloudProvider.Name = providerName
	opts.KubeCloudShared.ConfigureCloudRoutes = false
	opts.Generic.ClientConnection.QPS = 500
	opts.Generic.ClientConnection.Burst = 1000
	cmd := app.NewCloudControllerManagerCommand(opts, func(cfg *config.CompletedConfig) cloudprovider.Interface {
		cloud, err := cloudprovider.InitCloudProvider(providerName, "")
		if err != nil || cloud == nil {
			klog.Fatalf("Cannot initialise the floor provider: %v", err)
		}
		return cloud
	}, app.DefaultInitFuncConstructors, names.CCMControllerAliases(), cliflag.NamedFlagSets{}, wait.NeverStop)
	os.Exit(cli.Run(cmd))
}

// floor hands out consecutive addresses, one per Service, and remembers nothing else.
type floor struct {
	mu        sync.Mutex
	next      netip.Addr
	byService map[types.UID]netip.Addr
}

var _ cloudprovider.LoadBalancer = (*floor)(nil)

func (f *floor) Initialize(cloudprovider.ControllerClientBuilder, <-chan struct{}) {}
func (f *floor) LoadBalancer() (cloudprovider.LoadBalancer, bool)                  { return f, true }
func (f *floor) Instances() (cloudprovider.Instances, bool)                        { return nil, false }
func (f *floor) InstancesV2() (cloudprovider.InstancesV2, bool)                    { return nil, false }
func (f *floor) Zones() (cloudprovider.Zones, bool)                                { return nil, false }
func (f *floor) Clusters() (cloudprovider.Clusters, bool)                          { return nil, false }
func (f *floor) Routes() (cloudprovider.Routes, bool)                              { return nil, false }
func (f *floor) ProviderName() string                                              { return providerName }
func (f *floor) HasClusterID() bool                                                { return true }

func (f *floor) status(svc *v1.Service) *v1.LoadBalancerStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	addr, ok := f.byService[svc.UID]
	if !ok && len(svc.Status.LoadBalancer.Ingress) > 0 {
		// A Service from before this process keeps its address: no status rewrite.
		if a, err := netip.ParseAddr(svc.Status.LoadBalancer.Ingress[0].IP); err == nil {
			addr, ok = a, true
			f.byService[svc.UID] = addr
		}
	}
	if !ok {
		addr = f.next
		f.next = f.next.Next()
		f.byService[svc.UID] = addr
	}
	return &v1.LoadBalancerStatus{Ingress: []v1.LoadBalancerIngress{{IP: addr.String()}}}
}

func (f *floor) GetLoadBalancer(_ context.Context, _ string, svc *v1.Service) (*v1.LoadBalancerStatus, bool, error) {
	f.mu.Lock()
	_, ok := f.byService[svc.UID]
	f.mu.Unlock()
	if !ok {
		return nil, false, nil
	}
	return f.status(svc), true, nil
}

func (f *floor) GetLoadBalancerName(_ context.Context, _ string, svc *v1.Service) string {
	return string(svc.UID)
}

func (f *floor) EnsureLoadBalancer(_ context.Context, _ string, svc *v1.Service, _ []*v1.Node) (*v1.LoadBalancerStatus, error) {
	return f.status(svc), nil
}

func (f *floor) UpdateLoadBalancer(context.Context, string, *v1.Service, []*v1.Node) error {
	return nil
}

func (f *floor) EnsureLoadBalancerDeleted(_ context.Context, _ string, svc *v1.Service) error {
	f.mu.Lock()
	delete(f.byService, svc.UID)
	f.mu.Unlock()
	return nil
}
