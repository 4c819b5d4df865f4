package provider

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	cloudprovider "k8s.io/cloud-provider"
	"k8s.io/klog/v2"

	"github.com/baremetal-dev/cloud-provider-baremetal/provider/ipam"
)

// ProviderName is the name the provider registers under (--cloud-provider=baremetal).
const ProviderName = "baremetal"

// ProviderIDPrefix starts every Node's spec.providerID: baremetal://<node-name>.
const ProviderIDPrefix = ProviderName + "://"

// Cloud is the bare-metal cloudprovider.Interface.
type Cloud struct {
	// ready is closed once the allocator holds every VIP found in Service statuses; no
	// LoadBalancer call is served before, so a pending Service never takes a VIP that belongs to a
	// Service not yet seen.
	ready chan struct{}

	// runCtx ends when this replica stops leading; set by Initialize.
	runCtx     context.Context
	client     kubernetes.Interface
	dynamic    dynamic.Interface
	recorder   record.EventRecorder
	services   corelisters.ServiceLister
	namespaces corelisters.NamespaceLister

	mu    sync.Mutex
	alloc *ipam.Allocator
	pools map[string]*poolConfig
	// allocatedFrom records the pool each held VIP came from: the allocated-pool annotation, and
	// the pool whose status reports it when an edit removes it from the spec.
	allocatedFrom map[netip.Addr]string
	// reported holds, per Service, the pool its last sync reported for each VIP it holds: what
	// its allocated-pool annotation, or the address without one, says. A pool edit can change
	// what the address says; this is what it said before.
	reported map[string][]vip
	// owners remembers the UID of the Service holding VIPs under a key, so a delete event for an
	// old object never releases the VIPs of a new one with the same name.
	owners map[string]types.UID
	// warnedOutside holds VIPs already reported as outside every pool.
	warnedOutside map[netip.Addr]bool
	// deprecationReported remembers, per Service UID, the MetalLB annotations already reported.
	deprecationReported map[types.UID]string
	// retiring holds, per Service, the VIPs it gave up whose removal its status does not show
	// yet. They stay held until it does: a crash before the status write must not leave two
	// Services' statuses naming one VIP.
	retiring map[string]map[netip.Addr]bool
	// inFlight holds, per Service, the status its last sync returned until a status showing it
	// is seen (retire.go).
	inFlight    map[string][]v1.LoadBalancerIngress
	statusDirty map[string]bool
	statusKick  chan struct{}
	// pinPending holds Services whose allocated-pool annotation must gain entries (pin.go).
	pinPending map[string]bool
	pinKick    chan struct{}
	// statusWrite serialises pool status writes; poolStore is the IPPool informer's cache.
	statusWrite sync.Mutex
	poolStore   cache.Store

	// poolWatch reports why IPPools cannot be listed (the CRD is missing, RBAC forbids it)
	// while the state is not rebuilt yet, so LoadBalancer calls fail with the reason instead of
	// waiting forever.
	poolWatch poolWatchState
}

var (
	_ cloudprovider.Interface    = (*Cloud)(nil)
	_ cloudprovider.LoadBalancer = (*Cloud)(nil)
	_ cloudprovider.InstancesV2  = (*Cloud)(nil)
	_ cloudprovider.InformerUser = (*Cloud)(nil)
)

// New builds the provider. It needs no configuration file: pools come from IPPool objects.
func New(config io.Reader) (*Cloud, error) {
	if config != nil {
		data, err := io.ReadAll(config)
		if err != nil {
			return nil, fmt.Errorf("reading the cloud config: %w", err)
		}
		if len(data) > 0 {
			return nil, fmt.Errorf("the %s provider takes no --cloud-config file (got %d bytes); configure it with IPPool objects", ProviderName, len(data))
		}
	}
	return &Cloud{
		ready:               make(chan struct{}),
		alloc:               ipam.NewAllocator(),
		pools:               map[string]*poolConfig{},
		allocatedFrom:       map[netip.Addr]string{},
		owners:              map[string]types.UID{},
		reported:            map[string][]vip{},
		warnedOutside:       map[netip.Addr]bool{},
		deprecationReported: map[types.UID]string{},
		retiring:            map[string]map[netip.Addr]bool{},
		inFlight:            map[string][]v1.LoadBalancerIngress{},
		statusDirty:         map[string]bool{},
		statusKick:          make(chan struct{}, 1),
		pinPending:          map[string]bool{},
		pinKick:             make(chan struct{}, 1),
	}, nil
}

// Register adds the provider to the cloud-provider registry under ProviderName.
func Register() {
	cloudprovider.RegisterCloudProvider(ProviderName, func(config io.Reader) (cloudprovider.Interface, error) {
		return New(config)
	})
}

// Initialize makes the API clients. It is called once this replica leads, just before
// SetInformers, which starts the informers and the pool-status writer and rebuilds the
// allocation state from the API server; LoadBalancer calls wait for that.
func (c *Cloud) Initialize(builder cloudprovider.ControllerClientBuilder, stop <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-stop
		cancel()
	}()
	cfg := builder.ConfigOrDie("baremetal-cloud-provider")
	c.client = kubernetes.NewForConfigOrDie(cfg)
	c.dynamic = dynamic.NewForConfigOrDie(cfg)
	c.runCtx = ctx
}

// SetInformers is called by the controller manager right after Initialize, with the informer
// factory its controllers use: Services and Namespaces are then cached once, not twice.
func (c *Cloud) SetInformers(factory informers.SharedInformerFactory) {
	// Before the factory starts: the transform applies to the one Service cache the service
	// controller and the provider share.
	if err := factory.Core().V1().Services().Informer().SetTransform(trimService); err != nil {
		klog.FromContext(c.runCtx).Info("Services are cached whole", "reason", err.Error())
	}
	go c.run(c.runCtx, factory)
}

// lastAppliedAnnotation is kubectl apply's copy of the whole object it last applied.
const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// trimService drops from each cached Service what neither the service controller nor the
// provider reads: managedFields, and kubectl's last-applied copy of the object, which together
// are often larger than the rest of it. Both compute their patches between two copies of the
// cached object, so a patch never touches what was dropped.
func trimService(obj any) (any, error) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		trimmed, err := trimService(tombstone.Obj)
		tombstone.Obj = trimmed
		return tombstone, err
	}
	svc, ok := obj.(*v1.Service)
	if !ok {
		return obj, nil
	}
	svc.ManagedFields = nil
	if _, ok := svc.Annotations[lastAppliedAnnotation]; ok {
		annotations := make(map[string]string, len(svc.Annotations)-1)
		for k, v := range svc.Annotations {
			if k != lastAppliedAnnotation {
				annotations[k] = v
			}
		}
		svc.Annotations = annotations
	}
	return svc, nil
}

// LoadBalancer returns the VIP allocator.
func (c *Cloud) LoadBalancer() (cloudprovider.LoadBalancer, bool) { return c, true }

// Instances is not implemented: InstancesV2 is.
func (c *Cloud) Instances() (cloudprovider.Instances, bool) { return nil, false }

// InstancesV2 initialises Nodes.
func (c *Cloud) InstancesV2() (cloudprovider.InstancesV2, bool) { return c, true }

// Zones is not implemented: InstancesV2 reports zones.
func (c *Cloud) Zones() (cloudprovider.Zones, bool) { return nil, false }

// Clusters is not implemented.
func (c *Cloud) Clusters() (cloudprovider.Clusters, bool) { return nil, false }

// Routes is not implemented: pod routing is the CNI's job on bare metal.
func (c *Cloud) Routes() (cloudprovider.Routes, bool) { return nil, false }

// ProviderName is "baremetal".
func (c *Cloud) ProviderName() string { return ProviderName }

// HasClusterID is true: VIPs are not tagged with a cluster ID, there is nothing to tag.
func (c *Cloud) HasClusterID() bool { return true }

// readyWait bounds how long a LoadBalancer call waits for the state to be rebuilt before it
// fails with the reason, so the service controller records an event and retries instead of
// blocking a worker forever.
const readyWait = 10 * time.Second

// NotReadyError means the VIP state is not rebuilt yet; Reason says what holds it up.
type NotReadyError struct {
	Waited time.Duration
	Reason string
}

func (e *NotReadyError) Error() string {
	return fmt.Sprintf("the VIP state is not rebuilt from the API server yet (waited %s): %s", e.Waited, e.Reason)
}

func (c *Cloud) waitReady(ctx context.Context) error {
	select {
	case <-c.ready:
		return nil
	default:
	}
	start := time.Now()
	deadline := time.NewTimer(readyWait)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-c.ready:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("waiting for the VIP state to be rebuilt from the API server: %w", ctx.Err())
		case <-deadline.C:
			return &NotReadyError{Waited: time.Since(start).Round(time.Millisecond), Reason: c.poolWatch.reason()}
		case <-tick.C:
			if persistent, reason := c.poolWatch.persistent(); persistent {
				return &NotReadyError{Waited: time.Since(start).Round(time.Millisecond), Reason: reason}
			}
		}
	}
}
