// libcni_probe drives libcni itself (Debian's golang-github-appc-cni-dev) on one attachment, so
// that the interop test can check that libcni reads the cache entries skiff-cni writes and the
// other way round. Built by the test in GOPATH mode:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o probe main.go
//
// Usage: probe add|del|cached <conflist> <cache dir> <plugin dir>[:<plugin dir>...] <container id> <netns>
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

func main() {
	if len(os.Args) != 7 {
		fmt.Fprintln(os.Stderr, "usage: probe add|del|cached <conflist> <cache dir> <plugin dirs> <container id> <netns>")
		os.Exit(2)
	}
	cmd, conf, cacheDir, paths, id, netns := os.Args[1], os.Args[2], os.Args[3], os.Args[4], os.Args[5], os.Args[6]
	list, err := libcni.ConfListFromFile(conf)
	if err != nil {
		fail(err)
	}
	cni := libcni.NewCNIConfigWithCacheDir(strings.Split(paths, ":"), cacheDir, nil)
	rt := &libcni.RuntimeConf{ContainerID: id, NetNS: netns, IfName: "eth0", Args: [][2]string{{"IgnoreUnknown", "1"}}}
	ctx := context.Background()
	switch cmd {
	case "add":
		res, err := cni.AddNetworkList(ctx, list, rt)
		if err != nil {
			fail(err)
		}
		out(res)
	case "del":
		if err := cni.DelNetworkList(ctx, list, rt); err != nil {
			fail(err)
		}
	case "cached":
		res, err := cni.GetNetworkListCachedResult(list, rt)
		if err != nil {
			fail(err)
		}
		config, cachedRt, err := cni.GetNetworkListCachedConfig(list, rt)
		if err != nil {
			fail(err)
		}
		out(map[string]interface{}{"result": res, "config": string(config), "args": cachedRt.Args, "capabilityArgs": cachedRt.CapabilityArgs})
	default:
		fail(fmt.Errorf("unknown command %q", cmd))
	}
}

func out(v interface{}) {
	if err := json.NewEncoder(os.Stdout).Encode(v); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
