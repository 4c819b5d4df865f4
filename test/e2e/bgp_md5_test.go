package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
	"github.com/baremetal-dev/cloud-provider-baremetal/test/framework"
	"github.com/baremetal-dev/cloud-provider-baremetal/test/lab"
)

// The MD5 test needs a session of its own beside the lab's: a node cannot have two sessions to
// one router address (a BGP speaker keys peers by address), and Linux keys MD5 by the remote
// address (the router would demand the password on the node's main session too). So lab-router
// gets a second LAN address, lab-node-3 a second one to speak from, and FRR a neighbor for it.
const (
	md5RouterAddr = "198.18.0.2"
	md5NodeAddr   = "198.18.0.23"
	md5Node       = "lab-node-3"
	md5Peer       = "e2e-md5"
	md5Secret     = "e2e-bgp-md5"
	md5Password   = "lab-md5-secret"
	// md5Namespace is where the announcer may read BGP passwords (manifests/announcer/rbac.yaml).
	md5Namespace = "baremetal-bgp"
)

// TestBGPWrongPassword: with a wrong MD5 password the session never comes up (the router's
// kernel drops every segment, so nothing answers) and the BGPPeer's status says so in words;
// with the right one it comes up.
func TestBGPWrongPassword(t *testing.T) {
	bgpReady(t)
	ctx := context.Background()
	addAddress(t, lab.RouterNamespace, md5RouterAddr)
	addAddress(t, md5Node, md5NodeAddr)
	routerVTY(t, "configure terminal", fmt.Sprintf("router bgp %d", lab.RouterASN),
		"neighbor "+md5NodeAddr+" remote-as external",
		"neighbor "+md5NodeAddr+" password "+md5Password,
		"address-family ipv4 unicast",
		"neighbor "+md5NodeAddr+" activate",
		"neighbor "+md5NodeAddr+" route-map NOTHING out")
	t.Cleanup(func() {
		routerVTY(t, "configure terminal", fmt.Sprintf("router bgp %d", lab.RouterASN), "no neighbor "+md5NodeAddr)
	})

	secrets := env.Client.CoreV1().Secrets(md5Namespace)
	secret := &v1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: md5Secret, Namespace: md5Namespace},
		StringData: map[string]string{"password": "not-" + md5Password},
	}
	if _, err := secrets.Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = secrets.Delete(context.Background(), md5Secret, metav1.DeleteOptions{}) })
	objs, err := framework.DecodeYAML([]byte(`apiVersion: baremetal.dev/v1alpha1
kind: BGPPeer
metadata:
  name: ` + md5Peer + `
spec:
  peerAddress: ` + md5RouterAddr + `
  sourceAddress: ` + md5NodeAddr + `
  peerASN: 64512
  myASN: 64513
  holdTime: 9s
  nodeSelector:
    matchLabels: {kubernetes.io/hostname: ` + md5Node + `}
  passwordSecretRef: {name: ` + md5Secret + `, namespace: ` + md5Namespace + `}
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := framework.Apply(ctx, env.Config, objs...); err != nil {
		t.Fatalf("creating BGPPeer %s: %v", md5Peer, err)
	}
	t.Cleanup(func() {
		err := dynamicClient(t).Resource(v1alpha1.BGPPeerResource).Delete(context.Background(), md5Peer, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting BGPPeer %s: %v", md5Peer, err)
		}
	})

	// Wrong password: the status explains, and the session stays down all along.
	deadline := time.Now().Add(30 * time.Second)
	var state, lastError string
	for {
		if s := md5SessionState(t); s == "Established" {
			t.Fatalf("the router established a session with %s although the password is wrong", md5NodeAddr)
		}
		state, lastError = peerNodeStatus(t, md5Peer, md5Node)
		low := strings.ToLower(lastError)
		if strings.Contains(low, "password") || strings.Contains(low, "md5") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("BGPPeer %s: %s's status is %q, last error %q; want it to point at the MD5 password", md5Peer, md5Node, state, lastError)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if state == "Established" {
		t.Errorf("BGPPeer %s: %s's session is %q with a wrong password", md5Peer, md5Node, state)
	}
	t.Logf("wrong password: BGPPeer %s says %s is %s: %q", md5Peer, md5Node, state, lastError)

	// The right password: the session comes up (which also shows that the setup, not only the
	// password, was right), within seconds: a session that is down rereads its password every
	// 2 s, and a new peer dials after 1-2 s.
	secret.StringData = map[string]string{"password": md5Password}
	if _, err := secrets.Update(ctx, secret, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	fixed := time.Now()
	const patience = 15 * time.Second
	for md5SessionState(t) != "Established" {
		if time.Since(fixed) > patience {
			state, lastError = peerNodeStatus(t, md5Peer, md5Node)
			t.Fatalf("with the right password the router has no session with %s after %v (status %q, last error %q)", md5NodeAddr, patience, state, lastError)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("Secret fixed -> session Established in %v", time.Since(fixed).Round(time.Millisecond))
}

// addAddress adds a /24 address of the LAN to a namespace's eth0 until the test ends.
func addAddress(t *testing.T, ns, addr string) {
	t.Helper()
	if _, err := env.Exec(ns, "ip", "addr", "add", addr+"/24", "dev", lab.LANInterface); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = env.Exec(ns, "ip", "addr", "del", addr+"/24", "dev", lab.LANInterface) })
}

func routerVTY(t testing.TB, cmds ...string) {
	t.Helper()
	out, err := env.RouterVTY(context.Background(), cmds...)
	if err != nil || strings.Contains(out, "% ") {
		t.Fatalf("vtysh %q: %v: %s", cmds, err, out)
	}
}

// md5SessionState is the router's session state with md5NodeAddr ("" when it has none).
func md5SessionState(t testing.TB) string {
	t.Helper()
	n, err := env.Router().Neighbors(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n[md5NodeAddr].State
}

// peerNodeStatus reads a node's entry of a BGPPeer's status.
func peerNodeStatus(t testing.TB, peer, node string) (state, lastError string) {
	t.Helper()
	obj, err := dynamicClient(t).Resource(v1alpha1.BGPPeerResource).Get(context.Background(), peer, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nodes, _, _ := unstructured.NestedSlice(obj.Object, "status", "nodes")
	for _, n := range nodes {
		m, ok := n.(map[string]any)
		if !ok || m["node"] != node {
			continue
		}
		state, _ = m["state"].(string)
		lastError, _ = m["lastError"].(string)
	}
	return state, lastError
}
