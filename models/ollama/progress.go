package ollama

import (
	"fmt"
	"io"
	"strings"

	"github.com/ollama/ollama/api"
)

// barWidth is the number of cells of a progress bar.
const barWidth = 30

// ProgressBar draws the progress of a pull as plain text: one line per
// status or layer, and for a layer with a known size a bar redrawn in place
// (carriage return) as bytes arrive:
//
//	pulling manifest
//	pulling 8eeb52dfb3bb [=============>                ]  45%  612 MB / 1.3 GB
//	verifying sha256 digest
//
// The zero value is not usable; NewProgressBar(nil) draws nothing.
type ProgressBar struct {
	w       io.Writer
	key     string // status and digest of the line being drawn
	open    bool   // the line has no newline yet
	lastPct int
}

// NewProgressBar draws on w; nil draws nothing.
func NewProgressBar(w io.Writer) *ProgressBar {
	return &ProgressBar{w: w, lastPct: -1}
}

// Update draws one progress message.
func (p *ProgressBar) Update(r api.ProgressResponse) {
	if p.w == nil {
		return
	}
	key := r.Status + "\x00" + r.Digest
	if key != p.key {
		p.end()
		p.key, p.lastPct = key, -1
	}
	if r.Total <= 0 {
		if !p.open && p.lastPct == -1 {
			fmt.Fprintln(p.w, r.Status)
			p.lastPct = 0 // drawn
		}
		return
	}
	done := min(max(r.Completed, 0), r.Total)
	pct := int(done * 100 / r.Total)
	if pct == p.lastPct {
		return
	}
	p.lastPct = pct
	cells := int(done * barWidth / r.Total)
	bar := strings.Repeat("=", cells)
	if cells < barWidth {
		bar += ">" + strings.Repeat(" ", barWidth-cells-1)
	}
	fmt.Fprintf(p.w, "\r%s [%s] %3d%%  %s / %s", r.Status, bar, pct, humanBytes(done), humanBytes(r.Total))
	p.open = true
}

// Done ends the line being drawn.
func (p *ProgressBar) Done() { p.end() }

func (p *ProgressBar) end() {
	if p.w != nil && p.open {
		fmt.Fprintln(p.w)
	}
	p.open = false
}

// humanBytes writes n in B, KB, MB or GB (powers of 1000, as Ollama does).
func humanBytes(n int64) string {
	const k = 1000
	switch {
	case n >= k*k*k:
		return fmt.Sprintf("%.1f GB", float64(n)/(k*k*k))
	case n >= k*k:
		return fmt.Sprintf("%d MB", n/(k*k))
	case n >= k:
		return fmt.Sprintf("%d KB", n/k)
	}
	return fmt.Sprintf("%d B", n)
}
