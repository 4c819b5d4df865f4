// Command baremetal-cloud-controller-manager is the Kubernetes cloud-controller-manager for bare
// metal: the upstream service, cloud-node and cloud-node-lifecycle controllers driving the
// "baremetal" provider (VIPs from IPPools, node initialisation).
package main

import (
	"os"
	"runtime/debug"

	"k8s.io/apimachinery/pkg/util/wait"
	cloudprovider "k8s.io/cloud-provider"
	"k8s.io/cloud-provider/app"
	"k8s.io/cloud-provider/app/config"
	"k8s.io/cloud-provider/names"
	"k8s.io/cloud-provider/options"
	"k8s.io/component-base/cli"
	cliflag "k8s.io/component-base/cli/flag"
	_ "k8s.io/component-base/logs/json/register"          // --logging-format=json
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics on /metrics
	_ "k8s.io/component-base/metrics/prometheus/version"  // build version metric
	"k8s.io/klog/v2"

	"github.com/baremetal-dev/cloud-provider-baremetal/provider"
)

// gcPercent is the CCM's default GOGC. It holds a cache of every Service and is idle most of the
// time, so memory matters more than the CPU the collector spends: at 50 the heap grows to 1.5x
// the live data between collections instead of 2x (docs/benchmarks.md has the cost of each).
const gcPercent = 50

func main() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(gcPercent)
	}
	provider.Register()
	opts, err := options.NewCloudControllerManagerOptions()
	if err != nil {
		klog.Fatalf("Cannot build the command options: %v", err)
	}
	applyDefaults(opts)
	cmd := app.NewCloudControllerManagerCommand(opts, initCloud, app.DefaultInitFuncConstructors, names.CCMControllerAliases(), cliflag.NamedFlagSets{}, wait.NeverStop)
	cmd.Use = "baremetal-cloud-controller-manager"
	os.Exit(cli.Run(cmd))
}

// applyDefaults sets the defaults that suit this provider; every one can be overridden by its flag.
func applyDefaults(opts *options.CloudControllerManagerOptions) {
	opts.KubeCloudShared.CloudProvider.Name = provider.ProviderName
	// There are no cloud routes on bare metal: pod routing belongs to the CNI.
	opts.KubeCloudShared.ConfigureCloudRoutes = false
	// Each Service costs the service controller about four API writes; the upstream default of 20
	// QPS would hold a burst of Services to five a second.
	opts.Generic.ClientConnection.QPS = 500
	opts.Generic.ClientConnection.Burst = 1000
}

func initCloud(cfg *config.CompletedConfig) cloudprovider.Interface {
	shared := cfg.ComponentConfig.KubeCloudShared.CloudProvider
	cloud, err := cloudprovider.InitCloudProvider(shared.Name, shared.CloudConfigFile)
	if err != nil {
		klog.Fatalf("Cannot initialise cloud provider %q: %v", shared.Name, err)
	}
	if cloud == nil {
		klog.Fatalf("Unknown cloud provider %q: this binary provides %q", shared.Name, provider.ProviderName)
	}
	return cloud
}
