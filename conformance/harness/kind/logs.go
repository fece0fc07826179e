package kind

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// writePodLogs writes dir/<pod>_<container>.log for every container of every
// pod in namespace, and <pod>_<container>.previous.log for a container that
// restarted.
func writePodLogs(ctx context.Context, cfg *rest.Config, c client.Client, namespace, dir string) error {
	core, err := corev1client.NewForConfig(cfg)
	if err != nil {
		return err
	}
	var pods corev1.PodList
	if err := c.List(ctx, &pods, client.InNamespace(namespace)); err != nil {
		return fmt.Errorf("list pods: %w", err)
	}
	var errs []error
	for _, p := range pods.Items {
		restarted := map[string]bool{}
		for _, s := range p.Status.ContainerStatuses {
			restarted[s.Name] = s.RestartCount > 0
		}
		for _, ctr := range append(p.Spec.InitContainers, p.Spec.Containers...) {
			base := filepath.Join(dir, p.Name+"_"+ctr.Name)
			if err := copyLog(ctx, core, namespace, p.Name, ctr.Name, false, base+".log"); err != nil {
				errs = append(errs, err)
			}
			if restarted[ctr.Name] {
				if err := copyLog(ctx, core, namespace, p.Name, ctr.Name, true, base+".previous.log"); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

func copyLog(ctx context.Context, core corev1client.CoreV1Interface, ns, pod, container string, previous bool, path string) error {
	rc, err := core.Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: container, Previous: previous, Timestamps: true}).Stream(ctx)
	if err != nil {
		return fmt.Errorf("logs of %s/%s: %w", pod, container, err)
	}
	defer rc.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return fmt.Errorf("logs of %s/%s: %w", pod, container, err)
	}
	return f.Close()
}
