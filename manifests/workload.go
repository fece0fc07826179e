package manifests

// Component is the gatecheck component a Deployment runs: the word after
// "serve" in its command line ("model" for `/gatecheck serve model --port
// 8000`), or "" for anything else.
func (w *Workload) Component() string {
	cmd := w.commandLine()
	for i, a := range cmd {
		if a == "serve" && i+1 < len(cmd) {
			return cmd[i+1]
		}
	}
	return ""
}

// ComponentArgs are the flags after `serve <component>` in the command line,
// or the container args when the command line is not a gatecheck one (for
// example an llm-d-inference-sim image, whose args are the same flags).
func (w *Workload) ComponentArgs() []string {
	cmd := w.commandLine()
	for i, a := range cmd {
		if a == "serve" && i+1 < len(cmd) {
			return cmd[i+2:]
		}
	}
	return w.Args
}

func (w *Workload) commandLine() []string {
	cmd := make([]string, 0, len(w.Command)+len(w.Args))
	return append(append(cmd, w.Command...), w.Args...)
}
