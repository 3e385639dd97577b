// Command kube-apiserver runs an embedded etcd and a real kube-apiserver in one process, for tests.
//
// Flags read here (all others go to kube-apiserver unchanged):
//
//	--etcd-data-dir=DIR     etcd's data directory (required)
//	--etcd-port=PORT        etcd client port on 127.0.0.1 (required)
//	--etcd-peer-port=PORT   etcd peer port on 127.0.0.1 (required; single member, nobody dials it)
//
// Point kube-apiserver at it with --etcd-servers=http://127.0.0.1:PORT. etcd runs without fsync:
// the data is a test's scratch state. When kube-apiserver returns (SIGTERM/SIGINT), etcd is closed.
package main

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

// splitArgs takes out our own --etcd-* flags and returns them with the rest, in order.
func splitArgs(args []string) (map[string]string, []string, error) {
	own := map[string]string{"--etcd-data-dir": "", "--etcd-port": "", "--etcd-peer-port": ""}
	var rest []string
	for i := 0; i < len(args); i++ {
		name, value, hasValue := strings.Cut(args[i], "=")
		if _, ok := own[name]; !ok {
			rest = append(rest, args[i])
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				return nil, nil, fmt.Errorf("%s needs a value", name)
			}
			i++
			value = args[i]
		}
		own[name] = value
	}
	for name, value := range own {
		if value == "" {
			return nil, nil, fmt.Errorf("%s is required", name)
		}
	}
	return own, rest, nil
}

func startEtcd(dir, port, peerPort string) (*embed.Etcd, error) {
	cfg := embed.NewConfig()
	cfg.Name = "default"
	cfg.Dir = dir
	cfg.LogLevel = "warn"
	cfg.UnsafeNoFsync = true
	client := url.URL{Scheme: "http", Host: "127.0.0.1:" + port}
	peer := url.URL{Scheme: "http", Host: "127.0.0.1:" + peerPort}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	etcd, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, err
	}
	select {
	case <-etcd.Server.ReadyNotify():
		return etcd, nil
	case err := <-etcd.Err():
		etcd.Close()
		return nil, err
	case <-time.After(60 * time.Second):
		etcd.Close()
		return nil, fmt.Errorf("etcd not ready after 60s")
	}
}

func main() {
	own, rest, err := splitArgs(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "kube-apiserver:", err)
		os.Exit(2)
	}
	etcd, err := startEtcd(own["--etcd-data-dir"], own["--etcd-port"], own["--etcd-peer-port"])
	if err != nil {
		fmt.Fprintln(os.Stderr, "kube-apiserver: embedded etcd:", err)
		os.Exit(1)
	}
	command := app.NewAPIServerCommand()
	command.SetArgs(rest)
	code := cli.Run(command)
	etcd.Close()
	os.Exit(code)
}
