package harness

import (
	"slices"

	"github.com/gatecheck/gatecheck/fakes/model"
	"github.com/gatecheck/gatecheck/manifests"
)

// ModelNames lists the model names a topology's fake model servers answer
// to — base models, served names and LoRA adapters, sorted — read from the
// model Deployments' flags, as the simulation and the kind target run them.
func ModelNames(snap *manifests.Snapshot) []string {
	set := map[string]bool{}
	for _, w := range snap.Workloads {
		if w.Component() != "model" {
			continue
		}
		cfg, err := model.ParseFlags(w.ComponentArgs())
		if err != nil {
			continue
		}
		set[cfg.Model] = true
		for _, n := range cfg.ServedModelNames {
			set[n] = true
		}
		for _, n := range cfg.LoRAModules {
			set[n] = true
		}
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
