package framework

import (
	"strings"

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
