package kind

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"
	kindexec "sigs.k8s.io/kind/pkg/exec"
	kindlog "sigs.k8s.io/kind/pkg/log"

	"github.com/gatecheck/gatecheck/images"
)

// NodePorts the overlay's Services use, which the kind node maps to the
// host's loopback.
const (
	GatewayNodePort    = 30080
	ManagementNodePort = 30081
)

// clusterConfig is the kind cluster: one node (kind lets workloads run on a
// lone control plane) whose NodePorts for the gateway and the management API
// are published on 127.0.0.1 of the host.
func clusterConfig(gatewayPort, managementPort int) *v1alpha4.Cluster {
	return &v1alpha4.Cluster{
		TypeMeta: v1alpha4.TypeMeta{Kind: "Cluster", APIVersion: "kind.x-k8s.io/v1alpha4"},
		Nodes: []v1alpha4.Node{{
			Role: v1alpha4.ControlPlaneRole,
			ExtraPortMappings: []v1alpha4.PortMapping{
				{ContainerPort: GatewayNodePort, HostPort: int32(gatewayPort), ListenAddress: "127.0.0.1", Protocol: v1alpha4.PortMappingProtocolTCP},
				{ContainerPort: ManagementNodePort, HostPort: int32(managementPort), ListenAddress: "127.0.0.1", Protocol: v1alpha4.PortMappingProtocolTCP},
			},
		}},
	}
}

// clusterExists reports whether kind knows a cluster of this name.
func clusterExists(p *cluster.Provider, name string) (bool, error) {
	names, err := p.List()
	if err != nil {
		return false, fmt.Errorf("list kind clusters: %w", err)
	}
	return slices.Contains(names, name), nil
}

// nodePlatform is the platform of a node's userland, from uname -m.
func nodePlatform(n nodes.Node) (images.Platform, error) {
	lines, err := kindexec.OutputLines(n.Command("uname", "-m"))
	if err != nil || len(lines) != 1 {
		return images.Platform{}, fmt.Errorf("architecture of node %s: %v", n, err)
	}
	switch m := strings.TrimSpace(lines[0]); m {
	case "x86_64", "amd64":
		return images.Platform{OS: "linux", Arch: "amd64"}, nil
	case "aarch64", "arm64":
		return images.Platform{OS: "linux", Arch: "arm64"}, nil
	default:
		return images.Platform{}, fmt.Errorf("node %s runs on %s, which gatecheck's image is not built for", n, m)
	}
}

// loadImage loads a docker-archive into every node, as `kind load
// image-archive` does.
func loadImage(p *cluster.Provider, name, archive string) error {
	ns, err := p.ListInternalNodes(name)
	if err != nil {
		return fmt.Errorf("nodes of %s: %w", name, err)
	}
	for _, n := range ns {
		f, err := os.Open(archive)
		if err != nil {
			return err
		}
		err = nodeutils.LoadImageArchive(n, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("load %s into node %s: %w", archive, n, err)
		}
	}
	return nil
}

// restConfig is the cluster's API server as reached from the host.
func restConfig(p *cluster.Provider, name string) (*rest.Config, error) {
	kc, err := p.KubeConfig(name, false)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig of %s: %w", name, err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig([]byte(kc))
	if err != nil {
		return nil, fmt.Errorf("kubeconfig of %s: %w", name, err)
	}
	return cfg, nil
}

// progressLogger shows kind's user-facing messages (V(0), warnings, errors)
// on a writer and drops its debug output.
type progressLogger struct{ w io.Writer }

var _ kindlog.Logger = progressLogger{}

func (l progressLogger) Warn(m string)                        { fmt.Fprintln(l.w, "kind: WARNING:", m) }
func (l progressLogger) Warnf(f string, args ...any)          { l.Warn(fmt.Sprintf(f, args...)) }
func (l progressLogger) Error(m string)                       { fmt.Fprintln(l.w, "kind: ERROR:", m) }
func (l progressLogger) Errorf(f string, args ...any)         { l.Error(fmt.Sprintf(f, args...)) }
func (l progressLogger) V(v kindlog.Level) kindlog.InfoLogger { return infoLogger{l.w, v == 0} }

type infoLogger struct {
	w  io.Writer
	on bool
}

func (l infoLogger) Info(m string) {
	if l.on {
		fmt.Fprintln(l.w, "kind:", strings.TrimSpace(m))
	}
}
func (l infoLogger) Infof(f string, args ...any) { l.Info(fmt.Sprintf(f, args...)) }
func (l infoLogger) Enabled() bool               { return l.on }
