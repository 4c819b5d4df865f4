package announcer

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/baremetal-dev/cloud-provider-baremetal/announcer/membership"
)

// Keys of the membership Secret's data. Rotation: put the new key in "current" and the old one
// in "previous"; announcers accept both and seal with "current".
const (
	secretKeyCurrent  = "current"
	secretKeyPrevious = "previous"
)

// membershipKeys fetches the membership key from its Secret, creating the Secret with a random
// key when it does not exist (the first announcer of a new install does; the others read it),
// and follows later changes (rotation).
type membershipKeys struct {
	client    kubernetes.Interface
	namespace string
	name      string
}

func newMembershipKeys(client kubernetes.Interface, secret string) *membershipKeys {
	ns, name, _ := strings.Cut(secret, "/")
	return &membershipKeys{client: client, namespace: ns, name: name}
}

// sealerFromSecret builds the sealer of a Secret's keys.
func sealerFromSecret(s *v1.Secret) (*membership.Sealer, error) {
	sealer, err := membership.NewSealer(membership.KeyRing{Current: s.Data[secretKeyCurrent], Previous: s.Data[secretKeyPrevious]})
	if err != nil {
		return nil, fmt.Errorf("secret %s/%s: %w (data %q must hold at least %d random bytes)", s.Namespace, s.Name, err, secretKeyCurrent, membership.MinKeySize)
	}
	return sealer, nil
}

// ensure returns the sealer of the Secret, creating the Secret if it does not exist. It retries
// until ctx ends: an announcer without the key cannot take part.
func (k *membershipKeys) ensure(ctx context.Context) (*membership.Sealer, error) {
	logger := klog.FromContext(ctx).WithValues("secret", klog.KRef(k.namespace, k.name))
	var sealer *membership.Sealer
	var last string
	err := wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		s, err := k.client.CoreV1().Secrets(k.namespace).Get(ctx, k.name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			s, err = k.create(ctx)
			if err == nil {
				logger.Info("Created the membership key")
			}
		}
		if err == nil {
			sealer, err = sealerFromSecret(s)
		}
		if err != nil {
			if err.Error() != last {
				logger.Info("Waiting for the membership key", "err", err.Error())
				last = err.Error()
			}
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	logger.Info("Membership key loaded", "keyID", fmt.Sprintf("%08x", sealer.CurrentID()))
	return sealer, nil
}

func (k *membershipKeys) create(ctx context.Context) (*v1.Secret, error) {
	key := make([]byte, membership.MinKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	s := &v1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: k.name, Namespace: k.namespace,
			Labels:      map[string]string{"app.kubernetes.io/name": "baremetal-announcer"},
			Annotations: map[string]string{"baremetal.dev/rotation": "put a new key in data.current and the old one in data.previous; remove previous once every announcer logged the new key id"},
		},
		Type: v1.SecretTypeOpaque,
		Data: map[string][]byte{secretKeyCurrent: key},
	}
	created, err := k.client.CoreV1().Secrets(k.namespace).Create(ctx, s, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		// Another announcer created it first: use theirs.
		return k.client.CoreV1().Secrets(k.namespace).Get(ctx, k.name, metav1.GetOptions{})
	}
	return created, err
}

// watch calls update with a new sealer whenever the Secret's keys change, until ctx ends. A
// Secret that becomes invalid is reported and ignored: the last good keys stay in use.
func (k *membershipKeys) watch(ctx context.Context, update func(*membership.Sealer)) {
	logger := klog.FromContext(ctx).WithValues("secret", klog.KRef(k.namespace, k.name))
	factory := informers.NewSharedInformerFactoryWithOptions(k.client, 0, informers.WithNamespace(k.namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", k.name).String()
		}))
	inf := factory.Core().V1().Secrets().Informer()
	onChange := func(obj any) {
		s, ok := obj.(*v1.Secret)
		if !ok {
			return
		}
		sealer, err := sealerFromSecret(s)
		if err != nil {
			logger.Error(err, "Ignoring an invalid membership key; the previous keys stay in use")
			return
		}
		logger.Info("Membership keys changed", "keyID", fmt.Sprintf("%08x", sealer.CurrentID()))
		update(sealer)
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(old, obj any) {
			if o, ok := old.(*v1.Secret); ok {
				if n, ok := obj.(*v1.Secret); ok && o.ResourceVersion == n.ResourceVersion {
					return
				}
			}
			onChange(obj)
		},
	})
	factory.Start(ctx.Done())
	<-ctx.Done()
	factory.Shutdown()
}
