package threat

import (
	"strings"
	"unicode/utf8"
)

// StreamScanner scans text that arrives in chunks, such as the deltas of a
// streamed model answer, and finds what Detectors.Scan would find in the
// whole text, matches across chunk boundaries included.
//
// In redact mode, Write returns the text with findings replaced by their
// RedactionToken, exactly as Redact(whole, Scan(whole)) would, holding back
// only the tail that could still start a finding (at most
// Detectors.HoldBack bytes, plus up to 256 bytes it collects before
// searching again) so the stream keeps flowing. Output is cut at
// UTF-8 character boundaries, so each piece can be re-encoded as JSON.
//
// In block mode, Write reports findings as soon as they are certain and
// returns only text that precedes every finding; once a finding has been
// reported the scanner stops: later calls return nothing. The caller is
// expected to end the stream.
//
// A StreamScanner is not safe for concurrent use.
type StreamScanner struct {
	core    *scanCore
	redact  bool
	emitted int       // absolute offset of the output so far
	pending []Finding // decided, not yet emitted
	tripped bool      // block mode: a finding has been reported
	stepped int       // absolute end of the text at the last step
}

// minStep is how much new text a StreamScanner waits for before it searches
// again. Every search re-reads the undecided tail, so searching on every
// few-byte delta would cost a tail per delta; waiting for minStep bytes
// bounds that, at the price of holding back up to minStep more bytes.
const minStep = 256

// NewStreamScanner returns a scanner over d in redact or block mode.
func NewStreamScanner(d *Detectors, redact bool) *StreamScanner {
	return &StreamScanner{core: newScanCore(d), redact: redact}
}

// Write adds a chunk and returns the output that is now certain and the
// findings decided by it.
func (s *StreamScanner) Write(chunk string) (out string, findings []Finding) {
	if s.tripped {
		return "", nil
	}
	s.core.buf += chunk
	if s.core.end()-s.stepped < minStep {
		return "", nil
	}
	return s.advance(false)
}

// Flush ends the stream: it decides what is left and returns the rest of
// the output and the last findings.
func (s *StreamScanner) Flush() (out string, findings []Finding) {
	if s.tripped {
		return "", nil
	}
	return s.advance(true)
}

func (s *StreamScanner) advance(final bool) (string, []Finding) {
	s.stepped = s.core.end()
	found := s.core.step(final)
	sortFindings(found)
	limit := s.core.minPos() // nothing before it can still change
	if final {
		limit = s.core.end()
	}
	// Cut at a character boundary: a JSON re-encoding of half a character
	// would corrupt it.
	for !final && limit > s.emitted && limit < s.core.end() && !utf8.RuneStart(s.core.buf[limit-s.core.base]) {
		limit--
	}
	var out string
	if s.redact {
		s.pending = append(s.pending, found...)
		sortFindings(s.pending)
		out = s.emitRedacted(limit)
	} else {
		if len(found) > 0 {
			limit = min(limit, found[0].Start)
			s.tripped = true
		}
		if limit > s.emitted {
			out = s.core.buf[s.emitted-s.core.base : limit-s.core.base]
			s.emitted = limit
		}
	}
	s.core.trim(min(s.core.minPos(), s.emitted))
	return out, found
}

// emitRedacted writes the text up to limit with pending findings that start
// before limit replaced, merging overlaps as Redact does. A redaction may
// carry the output past limit, to the end of its finding.
func (s *StreamScanner) emitRedacted(limit int) string {
	var b strings.Builder
	text := func(from, to int) string { return s.core.buf[from-s.core.base : to-s.core.base] }
	n := 0
	for _, f := range s.pending {
		if f.Start >= limit {
			break
		}
		n++
		if f.Start < s.emitted {
			s.emitted = max(s.emitted, f.End)
			continue
		}
		b.WriteString(text(s.emitted, f.Start))
		b.WriteString(RedactionToken(f.Kind))
		s.emitted = f.End
	}
	s.pending = s.pending[n:]
	if limit > s.emitted {
		b.WriteString(text(s.emitted, limit))
		s.emitted = limit
	}
	return b.String()
}
