package sim

import (
	"context"
	"fmt"
	"io"

	"github.com/gatecheck/gatecheck/manifests"
	"github.com/gatecheck/gatecheck/models/ollama"
	"github.com/gatecheck/gatecheck/models/tiny"
)

// OllamaOptions make real Ollama servers the model servers of the topology
// (issue 7): no fake model server starts; every InferencePool's endpoints,
// and the addresses of every Service in front of model servers, are the
// Ollama servers, as host:port. The endpoint picker finds no vLLM metrics
// there, says so once in its log, and spreads requests by its own count of
// requests in flight. Ollama's API (/api/chat, /api/generate) and its
// OpenAI-compatible API (/v1/...) both go through the gateway and every
// Apigee policy, and token quotas count the tokens Ollama reports.
type OllamaOptions struct {
	// Hosts are the Ollama servers, each as OLLAMA_HOST is written
	// ([http://]host[:port]); empty means OLLAMA_HOST (127.0.0.1:11434 when
	// unset). The gateway reaches them over plain HTTP.
	Hosts []string
	// Model is the model requests name; empty means the tiny model
	// (tiny.Name). Start makes sure every server has it: the tiny model is
	// created where it is missing; another model is pulled when Pull is set
	// and is otherwise an error saying how to get it.
	Model string
	// Pull pulls Model onto a server that lacks it.
	Pull bool
	// Progress receives the progress bars of pulls; nil draws none.
	Progress io.Writer
}

// ollamaBackend is what an Env runs on in Ollama mode.
type ollamaBackend struct {
	model   string
	servers []*ollama.Server
}

// startOllama makes sure every Ollama server answers and has the model, and
// makes the servers the replicas of every model Deployment, in place of the
// fake model servers startModels would run.
func (e *Env) startOllama(ctx context.Context) error {
	o := e.opts.Ollama
	hosts := o.Hosts
	if len(hosts) == 0 {
		hosts = []string{""} // OLLAMA_HOST
	}
	b := &ollamaBackend{model: o.Model}
	if b.model == "" {
		b.model = tiny.Name
	}
	seen := map[string]bool{}
	for _, h := range hosts {
		s, err := ollama.NewServer(h)
		if err != nil {
			return err
		}
		if s.URL.Scheme != "http" || (s.URL.Path != "" && s.URL.Path != "/") {
			return fmt.Errorf("ollama host %s: the gateway reaches pool endpoints as host:port over plain HTTP; give http://host:port", s)
		}
		if !seen[s.URL.Host] {
			seen[s.URL.Host] = true
			b.servers = append(b.servers, s)
		}
	}
	for _, s := range b.servers {
		vctx, cancel := context.WithTimeout(ctx, e.opts.ReadyTimeout)
		version, err := s.Client.Version(vctx)
		cancel()
		if err != nil {
			return fmt.Errorf("no Ollama answers at %s within %s (is `ollama serve` running?): %w", s, e.opts.ReadyTimeout, err)
		}
		outcome, err := s.Ensure(ctx, b.model, ollama.EnsureOptions{Pull: o.Pull, Progress: o.Progress})
		if err != nil {
			return err
		}
		e.log.Info("ollama server is a model endpoint", "url", s.String(), "version", version, "model", b.model, "model_was", string(outcome))
	}
	e.ollama = b
	for _, w := range modelWorkloads(e.snap) {
		for i, s := range b.servers {
			e.replicas[w.Ref] = append(e.replicas[w.Ref], &replica{
				name: fmt.Sprintf("ollama-%d", i), addr: s.URL.Host, labels: w.PodLabels,
			})
		}
	}
	return nil
}

// modelWorkloads are the Deployments that run model servers: those an
// InferencePool selects (pools first, in pool order), then the other
// Deployments whose command is `serve model`.
func modelWorkloads(snap *manifests.Snapshot) []*manifests.Workload {
	seen := map[manifests.Ref]bool{}
	var workloads []*manifests.Workload
	for _, ref := range sortedPools(snap) {
		for _, w := range snap.Pools[ref].Workloads {
			if !seen[w.Ref] {
				seen[w.Ref] = true
				workloads = append(workloads, w)
			}
		}
	}
	for _, w := range snap.Workloads {
		if !seen[w.Ref] && w.Component() == "model" {
			seen[w.Ref] = true
			workloads = append(workloads, w)
		}
	}
	return workloads
}

// OllamaHosts are the base URLs of the Ollama servers the environment runs
// on, nil unless it runs on Ollama (Options.Ollama).
func (e *Env) OllamaHosts() []string {
	if e.ollama == nil {
		return nil
	}
	out := make([]string, len(e.ollama.servers))
	for i, s := range e.ollama.servers {
		out[i] = s.String()
	}
	return out
}
