// Command kube-controller-manager is the real kube-controller-manager of k8s.io/kubernetes, built
// from the Go module proxy for tests. The tests run it with a few controllers only (deployment,
// replicaset, garbage collector), so a Deployment keeps its replicas: a killed pod comes back.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	os.Exit(cli.Run(app.NewControllerManagerCommand()))
}
