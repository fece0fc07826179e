package threat

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// corpusEntry is one line of testdata/corpus/*.jsonl (written by
// corpus_gen.go).
type corpusEntry struct {
	ID       string `json:"id"`
	Label    string `json:"label"` // malicious or benign
	Detector string `json:"detector"`
	Request  struct {
		Method  string            `json:"method"`
		Path    string            `json:"path"`
		Headers map[string]string `json:"headers"`
		Body    string            `json:"body"`
	} `json:"request"`
	Note string `json:"note"`
}

func loadCorpus(t *testing.T) []corpusEntry {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "corpus", "*.jsonl"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus files: %v", err)
	}
	var out []corpusEntry
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 0, 1<<20), 8<<20)
		for n := 1; sc.Scan(); n++ {
			var e corpusEntry
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatalf("%s:%d: %v", f, n, err)
			}
			if e.Label != "malicious" && e.Label != "benign" {
				t.Fatalf("%s:%d: label %q", f, n, e.Label)
			}
			out = append(out, e)
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func (e corpusEntry) view() RequestView {
	path, rawQuery, _ := strings.Cut(e.Request.Path, "?")
	h := http.Header{}
	for k, v := range e.Request.Headers {
		h.Set(k, v)
	}
	return RequestView{Method: e.Request.Method, Path: path, RawQuery: rawQuery, Header: h, ContentType: h.Get("Content-Type"), Body: []byte(e.Request.Body)}
}

// TestCorpus runs the default protection set over the labelled corpus and
// holds it to the bar: at least 95% of malicious requests blocked, at most
// 2% of benign ones. Run with -v to see the figures per detector and every
// miss and false positive. The holdout entries were written after the
// detectors were tuned on the rest; their line estimates performance on
// requests nobody fitted the defaults to.
func TestCorpus(t *testing.T) {
	t.Parallel()
	p, err := DefaultProtection()
	if err != nil {
		t.Fatal(err)
	}
	type tally struct{ mal, malBlocked, ben, benBlocked int }
	per := map[string]*tally{}
	var total, holdout tally
	for _, e := range loadCorpus(t) {
		v := p.CheckRequest(e.view())
		if strings.HasPrefix(e.ID, "holdout-") {
			if e.Label == "malicious" {
				holdout.mal++
				if v.Blocked {
					holdout.malBlocked++
				}
			} else {
				holdout.ben++
				if v.Blocked {
					holdout.benBlocked++
				}
			}
		}
		tl := per[e.Detector]
		if tl == nil {
			tl = &tally{}
			per[e.Detector] = tl
		}
		if e.Label == "malicious" {
			tl.mal++
			total.mal++
			if v.Blocked {
				tl.malBlocked++
				total.malBlocked++
			} else {
				t.Logf("MISS %s (%s): %.160q", e.ID, e.Note, e.Request.Body+e.Request.Path)
			}
		} else {
			tl.ben++
			total.ben++
			if v.Blocked {
				tl.benBlocked++
				total.benBlocked++
				t.Logf("FALSE POSITIVE %s (%s): %s: %.160q", e.ID, e.Note, v.Reason, e.Request.Body+e.Request.Path)
			}
		}
	}
	pct := func(a, b int) float64 {
		if b == 0 {
			return 0
		}
		return 100 * float64(a) / float64(b)
	}
	names := make([]string, 0, len(per))
	for n := range per {
		names = append(names, n)
	}
	slices.Sort(names)
	t.Logf("%-17s %9s %9s %9s %9s", "detector", "malicious", "detected", "benign", "FP")
	for _, n := range names {
		tl := per[n]
		t.Logf("%-17s %9d %8.1f%% %9d %8.1f%%", n, tl.mal, pct(tl.malBlocked, tl.mal), tl.ben, pct(tl.benBlocked, tl.ben))
	}
	detection, fp := pct(total.malBlocked, total.mal), pct(total.benBlocked, total.ben)
	t.Logf("%-17s %9d %8.1f%% %9d %8.1f%%", "overall", total.mal, detection, total.ben, fp)
	t.Logf("%-17s %9d %8.1f%% %9d %8.1f%%", "of which holdout", holdout.mal, pct(holdout.malBlocked, holdout.mal), holdout.ben, pct(holdout.benBlocked, holdout.ben))
	if total.mal < 300 || total.ben < 300 {
		t.Errorf("corpus has %d malicious and %d benign requests, want at least 300 of each", total.mal, total.ben)
	}
	if detection < 95 {
		t.Errorf("detection rate %.1f%%, want at least 95%%", detection)
	}
	if fp > 2 {
		t.Errorf("false-positive rate %.1f%%, want at most 2%%", fp)
	}
}
