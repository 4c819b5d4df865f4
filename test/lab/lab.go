package lab

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	cloudproviderapi "k8s.io/cloud-provider/api"

	"github.com/baremetal-dev/cloud-provider-baremetal/test/framework"
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

// Token-file users besides framework.AdminUser and framework.CCMUser.
const (
	// AnnouncerUser is the announcer's ServiceAccount, so manifests/announcer/rbac.yaml is what
	// authorises it, as in a real cluster.
	AnnouncerUser = "system:serviceaccount:kube-system:baremetal-announcer"
	announcerRBAC = "manifests/announcer/rbac.yaml"
)

// Component names: each is also the basename of its .log and .pid files in the state directory.
const (
	CCMComponent = "baremetal-cloud-controller-manager"
)

// AnnouncerComponent is the name (log .lab/announcer-<node>.log) of a node's announcer.
func AnnouncerComponent(node string) string { return "announcer-" + node }

// NodeAgentComponent is the name (log .lab/node-agent-<node>.log) of a node's agent.
func NodeAgentComponent(node string) string { return "node-agent-" + node }

// Options tunes Up.
type Options struct {
	// Adopt reuses a lab that is already up, restarting whatever part of it is not running (what
	// `make lab` does). Without it, Up refuses to touch a lab it did not start itself (what the
	// e2e tests do: they must not take over a developer's `make lab`); it clears the leftovers of a
	// lab that no longer runs, or of one whose test process died, and starts afresh. Neither takes
	// over a lab that a running test process uses.
	Adopt bool
	// LabBinary is a binary built from test/lab/cmd/lab: it runs the node agents. Required.
	LabBinary string
	// NoDemo skips applying examples/demo.yaml and waiting for its Service and pod.
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

	out       io.Writer
	labBinary string
	tokens    map[string]string
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

// Up brings the lab up, or repairs it: the network, the control plane, the Nodes, a node agent
// (and, when built, an announcer) per node, then examples/demo.yaml. It returns once the nodes
// are initialised and Ready and the demo Service has its EXTERNAL-IP and a Running pod.
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
	}
	panic("lab: no kubeconfig for " + user)
}

// writeCredentials makes the service-account key, the token file and a kubeconfig per user.
func (l *Lab) writeCredentials() error {
	sa := "system:serviceaccounts,system:serviceaccounts:kube-system"
	tokens, err := framework.WriteCredentialsFor(l.Dir, map[string]string{
		framework.AdminUser: "system:masters",
		framework.CCMUser:   sa,
		AnnouncerUser:       sa,
	})
	if err != nil {
		return err
	}
	l.tokens = tokens
	for _, user := range []string{framework.AdminUser, framework.CCMUser, AnnouncerUser} {
		if err := framework.WriteKubeconfig(l.kubeconfigFor(user), APIServerURL(), user, tokens[user]); err != nil {
			return err
		}
	}
	return nil
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
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"} {
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
	announcer := filepath.Join(l.Root, "bin", "baremetal-announcer")
	if dir := os.Getenv("BAREMETAL_BIN"); dir != "" {
		announcer = filepath.Join(dir, "baremetal-announcer")
	}

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
		h, _ := Node(node)
		comps = append(comps, component{
			// TEST SCAFFOLDING: the emulated kube-proxy (RunNodeAgent).
			name: NodeAgentComponent(node), bin: labBin, netns: node,
			args:  []string{"node-agent", "--node=" + node, "--kubeconfig=" + admin},
			ready: healthz(fmt.Sprintf("http://%s:%d/", h.Management, AgentPort), 30*time.Second),
		})
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
			},
			optional: "not started: bin/baremetal-announcer is not built yet (make build)",
		})
	}
	return comps, nil
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

// applyManifests installs the CRDs and the RBAC of our components (before they start).
func (l *Lab) applyManifests(ctx context.Context) error {
	files := []string{
		filepath.Join(l.Root, "manifests/crd/bases/baremetal.dev_ippools.yaml"),
		filepath.Join(l.Root, "manifests/ccm/rbac.yaml"),
	}
	if _, err := os.Stat(filepath.Join(l.Root, announcerRBAC)); err == nil {
		files = append(files, filepath.Join(l.Root, announcerRBAC))
	}
	return framework.ApplyFiles(ctx, l.Config, files...)
}

// ensureNodes creates the Node objects that do not exist, as a kubelet with
// --cloud-provider=external and --node-ip would register them: with the uninitialized taint and
// the provided-node-ip annotation, for our CCM to initialise. kwok manages them (annotation).
func (l *Lab) ensureNodes(ctx context.Context) error {
	for _, name := range Nodes {
		h, _ := Node(name)
		cidrs := podCIDRs(name)
		node := &v1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name: name,
				Labels: map[string]string{
					v1.LabelHostname:   name,
					v1.LabelOSStable:   "linux",
					v1.LabelArchStable: "amd64",
				},
				Annotations: map[string]string{
					cloudproviderapi.AnnotationAlphaProvidedIPAddr: h.IPv4.String() + "," + h.IPv6.String(),
					kwokAnnotation: "fake",
				},
			},
			Spec: v1.NodeSpec{
				PodCIDR:  cidrs[0],
				PodCIDRs: cidrs,
				Taints: []v1.Taint{{
					Key:    cloudproviderapi.TaintExternalCloudProvider,
					Value:  "true",
					Effect: v1.TaintEffectNoSchedule,
				}},
			},
		}
		_, err := l.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{FieldManager: "lab"})
		switch {
		case err == nil:
			l.printf("%-36s created\n", "node/"+name)
		case apierrors.IsAlreadyExists(err):
		default:
			return fmt.Errorf("creating Node %s: %w", name, err)
		}
	}
	return nil
}

// NodeProblem says why a Node is not yet initialised by the CCM and Ready, or "" if it is.
func NodeProblem(node *v1.Node) string {
	h, err := Node(node.Name)
	if err != nil {
		return err.Error()
	}
	if node.Spec.ProviderID != "baremetal://"+node.Name {
		return fmt.Sprintf("providerID is %q", node.Spec.ProviderID)
	}
	for _, t := range node.Spec.Taints {
		if t.Key == cloudproviderapi.TaintExternalCloudProvider {
			return "still has the uninitialized taint"
		}
	}
	var internal []string
	for _, a := range node.Status.Addresses {
		if a.Type == v1.NodeInternalIP {
			internal = append(internal, a.Address)
		}
	}
	if want := []string{h.IPv4.String(), h.IPv6.String()}; !slices.Equal(internal, want) {
		return fmt.Sprintf("InternalIPs are %v, want %v", internal, want)
	}
	for _, c := range node.Status.Conditions {
		if c.Type == v1.NodeReady {
			if c.Status != v1.ConditionTrue {
				return "Ready is " + string(c.Status)
			}
			return ""
		}
	}
	return "no Ready condition yet"
}

func (l *Lab) waitNodes(ctx context.Context) error {
	start := time.Now()
	problems := map[string]string{}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		clear(problems)
		for _, name := range Nodes {
			node, err := l.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				problems[name] = err.Error()
			} else if p := NodeProblem(node); p != "" {
				problems[name] = p
			}
		}
		return len(problems) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("nodes not initialised and Ready (see .lab/%s.log and .lab/kwok.log): %v: %w", CCMComponent, problems, err)
	}
	l.printf("%-36s initialised by the CCM and Ready in %.1fs\n", "nodes", time.Since(start).Seconds())
	return nil
}

// waitDemo waits for the demo Service's EXTERNAL-IP and a Running, Ready demo pod.
func (l *Lab) waitDemo(ctx context.Context) (string, error) {
	start := time.Now()
	var vip, why string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		svc, err := l.Client.CoreV1().Services(metav1.NamespaceDefault).Get(ctx, "metallb-demo", metav1.GetOptions{})
		if err != nil {
			why = err.Error()
			return false, nil
		}
		if len(svc.Status.LoadBalancer.Ingress) == 0 {
			why = "the Service has no EXTERNAL-IP (see .lab/" + CCMComponent + ".log)"
			return false, nil
		}
		vip = svc.Status.LoadBalancer.Ingress[0].IP
		pods, err := l.Client.CoreV1().Pods(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{LabelSelector: "app=metallb-demo"})
		if err != nil {
			why = err.Error()
			return false, nil
		}
		for _, p := range pods.Items {
			if PodReady(&p) {
				return true, nil
			}
		}
		why = "no Running and Ready demo pod (see .lab/kube-controller-manager.log, kube-scheduler.log, kwok.log)"
		return false, nil
	})
	if err != nil {
		return "", fmt.Errorf("waiting for the demo: %s: %w", why, err)
	}
	l.printf("%-36s EXTERNAL-IP %s, pod Running, in %.1fs\n", "service/metallb-demo", vip, time.Since(start).Seconds())
	return vip, nil
}

// PodReady reports whether a pod is Running, Ready and has an IP.
func PodReady(p *v1.Pod) bool {
	if p.Status.Phase != v1.PodRunning || p.Status.PodIP == "" || p.DeletionTimestamp != nil {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == v1.PodReady {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}

// Down stops the lab this handle belongs to; see the package-level Down.
func (l *Lab) Down() error { return down(context.Background(), l.out) }

// Down removes every part of the lab, whoever started it: its processes (by their PID files,
// then any process left inside a lab namespace, each by PID), its namespaces (with their links,
// addresses and nftables rules), the host end of the management link, and the state directory.
// It is harmless when no lab exists.
func Down(out io.Writer) error {
	if out == nil {
		out = io.Discard
	}
	return down(context.Background(), out)
}

func down(ctx context.Context, out io.Writer) error {
	if os.Geteuid() != 0 {
		return errNotRoot
	}
	l := newLab(out)
	comps, _ := l.components(false)
	for i := len(comps) - 1; i >= 0; i-- {
		c := comps[i]
		if pid, state, _ := l.inspect(c); state != stopped {
			stopProcess(pid, 10*time.Second)
			l.printf("%-36s stopped (pid %d)\n", c.name, pid)
		}
	}
	// Anything else still inside a lab namespace (a process started by hand, or by a test).
	ids := map[netnsID]string{}
	for _, ns := range labNamespacesPresent() {
		if id, ok := namespaceID(ns); ok {
			ids[id] = ns
		}
	}
	for pid, ns := range processesInNamespaces(ids) {
		name := processName(pid)
		stopProcess(pid, 5*time.Second)
		l.printf("%-36s stopped (pid %d, left in %s)\n", name, pid, ns)
	}
	var errs []error
	if present := labNamespacesPresent(); len(present) > 0 || linkExists(ctx, "", HostManagementLink) {
		if err := teardownNetwork(ctx); err != nil {
			errs = append(errs, err)
		} else {
			l.printf("%-36s removed (namespaces %s, link %s)\n", "network", strings.Join(present, " "), HostManagementLink)
		}
	}
	if _, err := os.Stat(l.Dir); err == nil {
		if err := os.RemoveAll(l.Dir); err != nil {
			errs = append(errs, err)
		} else {
			l.printf("%-36s removed\n", ".lab/")
		}
	}
	return errors.Join(errs...)
}

// Status prints the state of every part of the lab.
func Status(out io.Writer) error {
	l := newLab(out)
	comps, err := l.components(false)
	if err != nil {
		return err
	}
	for _, c := range comps {
		if c.optional != "" {
			if _, err := os.Stat(c.bin); err != nil {
				continue
			}
		}
		switch pid, state, why := l.inspect(c); state {
		case running:
			l.printf("%-36s running (pid %d)\n", c.name, pid)
		case stale:
			l.printf("%-36s running (pid %d), stale: %s\n", c.name, pid, why)
		default:
			l.printf("%-36s not running\n", c.name)
		}
	}
	present := labNamespacesPresent()
	for _, ns := range Namespaces() {
		if !slices.Contains(present, ns) {
			l.printf("%-36s missing\n", "netns/"+ns)
		}
	}
	if len(present) > 0 {
		for _, h := range Hosts() {
			if !slices.Contains(present, h.Namespace) {
				continue
			}
			state := linkState(LANNamespace, h.Cable)
			if h.Management.IsValid() {
				state += ", management " + linkState(LANNamespace, h.ManagementCable)
			}
			l.printf("%-36s cable %s\n", "netns/"+h.Namespace, state)
		}
	}
	return nil
}

func linkState(ns, name string) string {
	out, err := run(context.Background(), "ip", "-n", ns, "-br", "link", "show", "dev", name)
	if err != nil {
		return "missing"
	}
	if f := strings.Fields(out); len(f) > 1 {
		return strings.ToLower(f[1])
	}
	return "?"
}
