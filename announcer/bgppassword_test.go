package announcer

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/baremetal-dev/cloud-provider-baremetal/api/v1alpha1"
)

// TestPasswordKeptThroughOutages: once read, a password survives failed reads (an API outage, a
// deleted Secret), so the session is not torn down; the failure is still reported.
func TestPasswordKeptThroughOutages(t *testing.T) {
	client := fake.NewClientset(&v1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "baremetal-bgp", Name: "tor"},
		Data:       map[string][]byte{"password": []byte("s3cret")},
	})
	var fail error
	client.PrependReactor("get", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		return fail != nil, nil, fail
	})
	r := &bgpRunner{client: client, passwords: map[string]cachedSecret{}}
	ctx := context.Background()
	t0 := time.Unix(1000, 0)
	if v := r.password(ctx, "baremetal-bgp", "tor", "password", t0, time.Second); v.err != nil || v.value != "s3cret" {
		t.Fatalf("first read: %+v", v)
	}
	for i, err := range []error{
		apierrors.NewServiceUnavailable("etcd leader change"),
		apierrors.NewNotFound(schema.GroupResource{Resource: "secrets"}, "tor"),
		errors.New("dial tcp: i/o timeout"),
	} {
		fail = err
		v := r.password(ctx, "baremetal-bgp", "tor", "password", t0.Add(time.Duration(i+2)*time.Second), time.Second)
		if v.value != "s3cret" || !v.stale || v.err == nil {
			t.Errorf("after %v: %+v, want the last password, marked stale, with the error", err, v)
		}
	}
	plan := planBGP(bgpInputs{self: planNode("n1"),
		peers: []*v1alpha1.BGPPeer{planPeer("tor", "198.18.0.1", 64512, 64513, func(p *v1alpha1.BGPPeer) {
			p.Spec.PasswordSecretRef = &v1alpha1.SecretKeyRef{Namespace: "baremetal-bgp", Name: "tor"}
		})},
		passwords: map[string]secretValue{"tor": {value: "s3cret", stale: true, err: errors.New("the password Secret baremetal-bgp/tor does not exist")}},
	})
	if len(plan.desired.Peers) != 1 || plan.desired.Peers[0].Password != "s3cret" {
		t.Errorf("a stale password must keep the session: %+v", plan.desired.Peers)
	}
	if got := strings.Join(plan.problems["tor"], ";"); !strings.Contains(got, "keeping the last password read") {
		t.Errorf("problems %q do not report the failed read", got)
	}
	// Never read: no session, and the status says why.
	fresh := &bgpRunner{client: client, passwords: map[string]cachedSecret{}}
	if v := fresh.password(ctx, "baremetal-bgp", "tor", "password", t0, time.Second); v.value != "" || v.err == nil {
		t.Errorf("a password never read: %+v", v)
	}
}
