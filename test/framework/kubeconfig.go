package framework

import (
	"strings"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

func clientcmdConfig(server, user, token string) *clientcmdapi.Config {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["test"] = &clientcmdapi.Cluster{Server: server, InsecureSkipTLSVerify: true}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: user}
	cfg.CurrentContext = "test"
	return cfg
}

func sanitize(user string) string {
	return strings.NewReplacer(":", "-", "/", "-").Replace(user)
}

// WriteKubeconfig writes a kubeconfig for a bearer-token user of the API server at server.
func WriteKubeconfig(path, server, user, token string) error {
	return clientcmd.WriteToFile(*clientcmdConfig(server, user, token), path)
}
