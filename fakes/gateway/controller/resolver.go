package controller

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/gatecheck/gatecheck/manifests"
)

// DefaultClusterDomain is the DNS domain of a cluster's Services.
const DefaultClusterDomain = "cluster.local"

// Resolver answers the data plane's address questions in a cluster: a
// Service is its cluster DNS name (kube-proxy spreads the connections), a
// pool's endpoints are its ready Pods' IPs on each target port, read from
// the reader (the manager's cache).
type Resolver struct {
	Reader client.Reader
	// ClusterDomain; empty means DefaultClusterDomain.
	ClusterDomain string
}

// ServiceAddrs implements gateway.Resolver.
func (r *Resolver) ServiceAddrs(svc manifests.Ref, port int32) ([]string, error) {
	domain := r.ClusterDomain
	if domain == "" {
		domain = DefaultClusterDomain
	}
	host := svc.Name + "." + svc.Namespace + ".svc." + domain
	return []string{net.JoinHostPort(host, strconv.Itoa(int(port)))}, nil
}

// PoolEndpoints implements gateway.Resolver.
func (r *Resolver) PoolEndpoints(pool manifests.Ref) ([]string, error) {
	eps, err := PoolEndpoints(context.Background(), r.Reader, pool)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(eps))
	for i, ep := range eps {
		out[i] = ep.Address
	}
	return out, nil
}

// Endpoint is one ready model server of a pool.
type Endpoint struct {
	// Address is "podIP:targetPort".
	Address string
	// Pod is the Pod's name.
	Pod string
	// Labels are the Pod's labels.
	Labels map[string]string
}

// PoolEndpoints reads an InferencePool and lists its endpoints: the ready
// Pods its selector matches in its namespace, times its target ports.
func PoolEndpoints(ctx context.Context, r client.Reader, pool manifests.Ref) ([]Endpoint, error) {
	var p InferencePool
	if err := r.Get(ctx, types.NamespacedName{Namespace: pool.Namespace, Name: pool.Name}, &p); err != nil {
		return nil, fmt.Errorf("InferencePool %s: %w", pool, err)
	}
	if len(p.Spec.Selector.MatchLabels) == 0 {
		return nil, fmt.Errorf("InferencePool %s selects no Pods", pool)
	}
	var pods corev1.PodList
	if err := r.List(ctx, &pods, client.InNamespace(pool.Namespace), client.MatchingLabels(p.Spec.Selector.MatchLabels)); err != nil {
		return nil, fmt.Errorf("pods of InferencePool %s: %w", pool, err)
	}
	var ports []int32
	for _, tp := range p.Spec.TargetPorts {
		ports = append(ports, tp.Number)
	}
	return ReadyEndpoints(pods.Items, ports), nil
}

// ReadyEndpoints are the endpoints of the ready pods, each on every port,
// ordered by pod name then port.
func ReadyEndpoints(pods []corev1.Pod, ports []int32) []Endpoint {
	ready := slices.DeleteFunc(slices.Clone(pods), func(p corev1.Pod) bool { return !podReady(&p) })
	slices.SortFunc(ready, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	var out []Endpoint
	for _, p := range ready {
		for _, port := range ports {
			out = append(out, Endpoint{
				Address: net.JoinHostPort(p.Status.PodIP, strconv.Itoa(int(port))),
				Pod:     p.Name,
				Labels:  p.Labels,
			})
		}
	}
	return out
}

// podReady: running, not being deleted, with an IP and the Ready condition.
func podReady(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil || p.Status.PodIP == "" || p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
