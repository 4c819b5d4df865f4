package lab

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/baremetal-dev/cloud-provider-baremetal/test/framework"
	"github.com/baremetal-dev/cloud-provider-baremetal/test/frr"
)

// Fixed ports, so kubeconfigs stay valid across `make lab` runs. etcd and the components' health
// endpoints listen on loopback; the API server on the management link (APIServerAddr).
const (
	etcdPort      = 23790
	etcdPeerPort  = 23800
	APIServerPort = 26443
	kcmPort       = 26457
	schedulerPort = 26459
	kwokPort      = 26460
	serviceCIDRs  = "198.19.0.0/16,fd00:96::/112"
)

// The announcers' identity besides framework.AdminUser and framework.CCMUser.
const (
	// AnnouncerUser is the announcer's ServiceAccount: the announcers run with a token the API
	// server issues for it, so manifests/announcer/rbac.yaml is what authorises them.
	AnnouncerUser = "system:serviceaccount:kube-system:baremetal-announcer"
	announcerRBAC = "manifests/announcer/rbac.yaml"
)

// Component names: each is also the basename of its .log and .pid files in the state directory.
const (
	CCMComponent = "baremetal-cloud-controller-manager"
)

// AnnouncerComponent is the name (log .lab/announcer-<node>.log) of a node's announcer.
func AnnouncerComponent(node string) string { return "announcer-" + node }

// Options tunes Up.
type Options struct {
	// Adopt reuses a lab that is already up, restarting whatever part of it is not running (what
	// `make lab` does). Without it, Up refuses to touch a lab it did not start itself (what the
	// e2e tests do: they must not take over a developer's `make lab`); it clears the leftovers of a
	// lab that no longer runs, or of one whose test process died, and starts afresh. Neither takes
	// over a lab that a running test process uses.
	Adopt bool
	// LabBinary is a binary built from test/lab/cmd/lab: it runs the pod hosts. Required.
	LabBinary string
	// NoDemo skips applying examples/demo.yaml and examples/bgp.yaml and waiting for their
	// Services and pod.
	NoDemo bool
	// Out receives progress messages; nil discards them.
	Out io.Writer
}

// Lab is a running lab.
type Lab struct {
	// Dir is the state directory, <repo>/.lab: kubeconfigs, logs, PID files, etcd data.
	Dir string
	// Root is the repository's top directory.
	Root string
	// Kubeconfig is the admin kubeconfig (.lab/kubeconfig).
	Kubeconfig string
	// Config and Client are an admin client configuration and clientset.
	Config *rest.Config
	Client kubernetes.Interface
	// DemoVIP is the demo Service's first ingress address (when the demo was applied).
	DemoVIP string
	// BGPDemoVIPs are the bgp-demo Service's VIPs, IPv4 then IPv6 (when the demo was applied).
	BGPDemoVIPs []netip.Addr

	out       io.Writer
	labBinary string
	tokens    map[string]string
	// router is lab-router's FRR when this process started it (see Router).
	router *frr.Router
}

// StateDir is where the lab keeps its state: <repo>/.lab.
func StateDir() string { return filepath.Join(framework.RepoRoot(), ".lab") }

// APIServerURL is the API server's address, reachable from the host and from node namespaces.
func APIServerURL() string {
	return "https://" + APIServerAddr.String() + ":" + strconv.Itoa(APIServerPort)
}

func newLab(out io.Writer) *Lab {
	if out == nil {
		out = io.Discard
	}
	root := framework.RepoRoot()
	dir := filepath.Join(root, ".lab")
	return &Lab{Dir: dir, Root: root, Kubeconfig: filepath.Join(dir, "kubeconfig"), out: out}
}

func (l *Lab) printf(format string, args ...any) { fmt.Fprintf(l.out, format, args...) }

// ownerFile records who started the lab: "make-lab", or "pid <n>" for a test process.
const ownerFile = "owner"

func (l *Lab) owner() string {
	data, _ := os.ReadFile(filepath.Join(l.Dir, ownerFile))
	return strings.TrimSpace(string(data))
}

func selfOwner() string { return "pid " + strconv.Itoa(os.Getpid()) }

// ownerIsLiveProcess reports whether owner names a process ("pid <n>") that still runs.
func ownerIsLiveProcess(owner string) bool {
	pid, err := strconv.Atoi(strings.TrimPrefix(owner, "pid "))
	return strings.HasPrefix(owner, "pid ") && err == nil && alive(pid)
}

// Up brings the lab up, or repairs it: the network, FRR in lab-router, the control plane, the
// Nodes, a pod host and kube-proxy (and, when built, an announcer) per node, then
// examples/demo.yaml and examples/bgp.yaml. It returns once the nodes are initialised and Ready
// and both demo Services have their EXTERNAL-IPs and a Running pod, and, when the announcers
// run, the demo VIP is answered from lab-client by the demo pod (it does not wait for BGP
// routes).
func Up(ctx context.Context, opts Options) (*Lab, error) {
	l := newLab(opts.Out)
	l.labBinary = opts.LabBinary
	if os.Geteuid() != 0 {
		return nil, errNotRoot
	}
	if l.labBinary == "" {
		return nil, errors.New("lab: Options.LabBinary is required (a binary built from ./test/lab/cmd/lab)")
	}
	if err := lookPaths("ip", "nft"); err != nil {
		return nil, err
	}
	live := l.liveParts()
	switch {
	case len(live) > 0 && l.owner() != selfOwner() && ownerIsLiveProcess(l.owner()):
		// Even with Adopt, never take over a lab that a running test process uses.
		return nil, &AlreadyUpError{Owner: l.owner(), Parts: live}
	case len(live) > 0 && !opts.Adopt && l.owner() != selfOwner() && !strings.HasPrefix(l.owner(), "pid "):
		// Without Adopt, never take over a `make lab` (or a lab of unknown origin).
		return nil, &AlreadyUpError{Owner: l.owner(), Parts: live}
	case !opts.Adopt && l.owner() != selfOwner():
		// Nothing runs, or what runs was left by a test process that died (a panic, a timeout):
		// start afresh.
		if len(live) > 0 {
			l.printf("clearing the leftovers of a lab whose test process (%s) is gone\n", l.owner())
		}
		if err := down(context.Background(), io.Discard); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(l.Dir, 0o755); err != nil {
		return nil, err
	}
	owner := selfOwner()
	if opts.Adopt {
		owner = "make-lab"
	}
	if err := os.WriteFile(filepath.Join(l.Dir, ownerFile), []byte(owner+"\n"), 0o644); err != nil {
		return nil, err
	}

	start := time.Now()
	if err := ensureNetwork(ctx); err != nil {
		return nil, fmt.Errorf("making the lab network: %w", err)
	}
	l.printf("%-36s ready in %.1fs (namespaces %s)\n", "network", time.Since(start).Seconds(), strings.Join(Namespaces(), " "))
	if err := l.ensureRouter(ctx); err != nil {
		return nil, err
	}

	if err := l.writeCredentials(); err != nil {
		return nil, err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", l.Kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 100, 200
	l.Config = cfg
	if l.Client, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, err
	}
	components, err := l.components(true)
	if err != nil {
		return nil, err
	}
	for _, c := range components {
		if err := l.ensure(ctx, c); err != nil {
			return nil, err
		}
	}
	if err := l.waitNodes(ctx); err != nil {
		return nil, err
	}
	if !opts.NoDemo {
		if err := framework.ApplyFiles(ctx, l.Config, filepath.Join(l.Root, "examples/demo.yaml")); err != nil {
			return nil, fmt.Errorf("applying examples/demo.yaml: %w", err)
		}
		if l.DemoVIP, err = l.waitDemo(ctx); err != nil {
			return nil, err
		}
		if _, err := os.Stat(l.announcerBinary()); err == nil {
			if err := l.waitDemoAnswered(ctx); err != nil {
				return nil, err
			}
		}
		if err := l.applyBGPDemo(ctx); err != nil {
			return nil, err
		}
	}
	l.printf("%-36s up in %.1fs\n", "lab", time.Since(start).Seconds())
	return l, nil
}

// AlreadyUpError is Up refusing to take over a lab it did not start (Options.Adopt unset).
type AlreadyUpError struct {
	// Owner is who started it: "make-lab", "pid <n>", or "" if unknown.
	Owner string
	// Parts are what runs or exists of it: component names, namespaces, links.
	Parts []string
}

func (e *AlreadyUpError) Error() string {
	owner := e.Owner
	if owner == "" {
		owner = "unknown"
	}
	parts := e.Parts
	if len(parts) > 4 {
		parts = append(slices.Clip(parts[:4]), fmt.Sprintf("%d more", len(e.Parts)-4))
	}
	return fmt.Sprintf("a lab is already up on this machine (started by %s; found %s): there is one lab "+
		"per machine, and a test does not take over a running `make lab`: stop it with `make lab-down` first",
		owner, strings.Join(parts, ", "))
}

// IsAlreadyUp reports whether err is (or wraps) an *AlreadyUpError.
func IsAlreadyUp(err error) bool {
	var e *AlreadyUpError
	return errors.As(err, &e)
}

// liveParts names what exists of a lab now: running components, namespaces, the host link.
func (l *Lab) liveParts() []string {
	var live []string
	if comps, err := l.components(false); err == nil {
		for _, c := range comps {
			if _, state, _ := l.inspect(c); state != stopped {
				live = append(live, c.name)
			}
		}
	}
	if len(l.frrRunning()) > 0 {
		live = append(live, "frr (lab-router)")
	}
	live = append(live, labNamespacesPresent()...)
	if linkExists(context.Background(), "", HostManagementLink) {
		live = append(live, "link "+HostManagementLink)
	}
	return live
}

func (l *Lab) kubeconfigFor(user string) string {
	switch user {
	case framework.AdminUser:
		return l.Kubeconfig
	case framework.CCMUser:
		return filepath.Join(l.Dir, "kubeconfig-ccm")
	case AnnouncerUser:
		return filepath.Join(l.Dir, "kubeconfig-announcer")
	case KubeProxyUser:
		return filepath.Join(l.Dir, "kubeconfig-kube-proxy")
	}
	panic("lab: no kubeconfig for " + user)
}

// writeCredentials makes the service-account key, the token file (the admin only) and the
// admin's kubeconfig. The CCM's and the announcers' kubeconfigs hold tokens the API server issues
// for their ServiceAccounts (applyManifests).
func (l *Lab) writeCredentials() error {
	tokens, err := framework.WriteCredentialsFor(l.Dir, map[string]string{framework.AdminUser: "system:masters"})
	if err != nil {
		return err
	}
	l.tokens = tokens
	return framework.WriteKubeconfig(l.kubeconfigFor(framework.AdminUser), APIServerURL(), framework.AdminUser, tokens[framework.AdminUser])
}

// components are the lab's processes in start order. With resolve, a missing required binary is
// an error; without, paths are best guesses (for Down and Status).
func (l *Lab) components(resolve bool) ([]component, error) {
	upstream := func(name string) (string, error) {
		bin, err := framework.UpstreamBinary(name)
		if err != nil && resolve {
			return "", fmt.Errorf("%w (or run make lab)", err)
		}
		if err != nil {
			bin = name
		}
		return bin, nil
	}
	var bins = map[string]string{}
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "kwok"} {
		bin, err := upstream(name)
		if err != nil {
			return nil, err
		}
		bins[name] = bin
	}
	ccm, err := framework.ProjectBinary(CCMComponent)
	if err != nil {
		if resolve {
			return nil, err
		}
		ccm = filepath.Join(l.Root, "bin", CCMComponent)
	}
	labBin := l.labBinary
	if labBin == "" {
		labBin = filepath.Join(l.Dir, "bin", "lab")
	}
	announcer := l.announcerBinary()

	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdPort)
	admin := l.kubeconfigFor(framework.AdminUser)
	healthz := func(url string, timeout time.Duration) func(context.Context, func() (bool, error)) error {
		return func(ctx context.Context, exited func() (bool, error)) error {
			return framework.WaitHTTP(ctx, url, "", timeout, exited)
		}
	}
	comps := []component{
		{
			name: "etcd", bin: bins["etcd"], args: framework.EtcdArgs(l.Dir, etcdPort, etcdPeerPort),
			ready: healthz(etcdURL+"/health", 30*time.Second),
		},
		{
			name: "kube-apiserver", bin: bins["kube-apiserver"],
			args: framework.APIServerArgsAt(l.Dir, etcdURL, APIServerAddr.String(), APIServerPort, serviceCIDRs),
			ready: func(ctx context.Context, exited func() (bool, error)) error {
				return framework.WaitHTTP(ctx, APIServerURL()+"/readyz", l.tokens[framework.AdminUser], 90*time.Second, exited)
			},
		},
		{
			name: "kube-controller-manager", bin: bins["kube-controller-manager"],
			args: []string{
				"--kubeconfig=" + admin,
				"--bind-address=127.0.0.1",
				"--secure-port=" + strconv.Itoa(kcmPort),
				"--leader-elect=false",
				"--cluster-name=lab",
				// Every default controller: EndpointSlices, Deployments/ReplicaSets, namespaces,
				// service accounts and their tokens, node lifecycle, garbage collection...
				"--controllers=*",
				"--service-account-private-key-file=" + filepath.Join(l.Dir, "sa.key"),
				"--root-ca-file=" + filepath.Join(l.Dir, apiserverCA),
				"--v=1",
			},
			before: func(ctx context.Context) error {
				if err := writeCA(filepath.Join(l.Dir, "apiserver-certs", "apiserver.crt"), filepath.Join(l.Dir, apiserverCA)); err != nil {
					return err
				}
				return l.applyManifests(ctx)
			},
			ready: healthz("https://127.0.0.1:"+strconv.Itoa(kcmPort)+"/healthz", 60*time.Second),
		},
		{
			name: "kube-scheduler", bin: bins["kube-scheduler"],
			args: []string{
				"--kubeconfig=" + admin,
				"--bind-address=127.0.0.1",
				"--secure-port=" + strconv.Itoa(schedulerPort),
				"--leader-elect=false",
				"--v=1",
			},
			ready: healthz("https://127.0.0.1:"+strconv.Itoa(schedulerPort)+"/healthz", 60*time.Second),
		},
		{
			name: "kwok", bin: bins["kwok"],
			args: []string{
				"--kubeconfig=" + admin,
				"--config=" + filepath.Join(l.Dir, "kwok.yaml"),
				"--manage-nodes-with-annotation-selector=" + kwokAnnotation + "=fake",
				"--cidr=198.18.64.0/24", // pods on a Node without podCIDRs; the lab's Nodes have them
				"--node-lease-duration-seconds=40",
				"--server-address=127.0.0.1:" + strconv.Itoa(kwokPort),
			},
			before: func(context.Context) error {
				return os.WriteFile(filepath.Join(l.Dir, "kwok.yaml"), []byte(kwokStages), 0o644)
			},
			ready: healthz("http://127.0.0.1:"+strconv.Itoa(kwokPort)+"/healthz", 30*time.Second),
		},
		{
			name: CCMComponent, bin: ccm,
			args:   append([]string{"--kubeconfig=" + l.kubeconfigFor(framework.CCMUser)}, framework.CCMArgs()...),
			before: l.ensureNodes,
		},
	}
	for _, node := range Nodes {
		comps = append(comps, l.nodeComponents(node, labBin, bins["kube-proxy"])...)
	}
	// One announcer (cmd/baremetal-announcer) per node namespace, as its ServiceAccount, reaching
	// the API server over the node's management link (.lab/kubeconfig-announcer), with the shipped
	// defaults; metrics on the node's :7472 (reachable from the host over the management link);
	// logs in .lab/announcer-<node>.log.
	for _, node := range Nodes {
		comps = append(comps, component{
			name: AnnouncerComponent(node), bin: announcer, netns: node,
			args: []string{
				"--node-name=" + node,
				"--kubeconfig=" + l.kubeconfigFor(AnnouncerUser),
				// Per node: on a real cluster it is each node's own /run.
				"--state-dir=" + filepath.Join(l.Dir, "announcer-state-"+node),
			},
			optional: "not started: bin/baremetal-announcer is not built yet (make build)",
		})
	}
	return comps, nil
}

// announcerBinary is the announcer the lab runs: $BAREMETAL_BIN's, else bin/'s.
func (l *Lab) announcerBinary() string {
	if dir := os.Getenv("BAREMETAL_BIN"); dir != "" {
		return filepath.Join(dir, "baremetal-announcer")
	}
	return filepath.Join(l.Root, "bin", "baremetal-announcer")
}

// apiserverCA holds the CA of the API server's self-signed serving certificate: what
// kube-controller-manager publishes (kube-root-ca.crt ConfigMaps, ClusterTrustBundles).
const apiserverCA = "apiserver-ca.crt"

// writeCA copies the CA certificates of a PEM bundle (the API server writes its serving
// certificate followed by the CA that signed it) to another file.
func writeCA(bundle, out string) error {
	data, err := os.ReadFile(bundle)
	if err != nil {
		return fmt.Errorf("reading the API server's certificate: %w", err)
	}
	var cas []byte
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil || !cert.IsCA {
			continue
		}
		cas = append(cas, pem.EncodeToMemory(block)...)
	}
	if len(cas) == 0 {
		return fmt.Errorf("%s holds no CA certificate", bundle)
	}
	return os.WriteFile(out, cas, 0o644)
}

// applyManifests installs the CRDs and the RBAC of our components and of kube-proxy (before
// they start), and writes the CCM's, the announcers' and kube-proxy's kubeconfigs with tokens
// the API server issues for their ServiceAccounts: a permission missing from manifests/ fails
// in the lab as in a cluster.
func (l *Lab) applyManifests(ctx context.Context) error {
	files := []string{
		filepath.Join(l.Root, "manifests/crd/bases/baremetal.dev_ippools.yaml"),
		filepath.Join(l.Root, "manifests/crd/bases/baremetal.dev_bgppeers.yaml"),
		filepath.Join(l.Root, "manifests/ccm/rbac.yaml"),
		filepath.Join(l.Root, announcerRBAC),
		filepath.Join(l.Root, "manifests/announcer/secret-policy.yaml"),
	}
	if err := framework.ApplyFiles(ctx, l.Config, files...); err != nil {
		return err
	}
	if err := l.applyKubeProxyRBAC(ctx); err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(l.Config)
	if err != nil {
		return err
	}
	for _, user := range []string{framework.CCMUser, AnnouncerUser, KubeProxyUser} {
		token, err := framework.ServiceAccountToken(ctx, client, user, framework.ServiceAccountTokenLifetime)
		if err != nil {
			return err
		}
		if err := framework.WriteKubeconfig(l.kubeconfigFor(user), APIServerURL(), user, token); err != nil {
			return err
		}
	}
	return nil
}
