package report

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	yamlv2 "go.yaml.in/yaml/v2"
	"sigs.k8s.io/yaml"
)

// MaxReportSize is the largest report ReadYAML accepts. Reports are read
// from vendors, so their size is bounded; a real one is a few kilobytes.
const MaxReportSize = 4 << 20

// WriteYAML validates the report and writes it as YAML. Nothing is written
// when the report is invalid.
func WriteYAML(w io.Writer, r *ConformanceReport) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("report: invalid: %w", err)
	}
	b, err := yaml.Marshal(r)
	if err != nil {
		return fmt.Errorf("report: encode: %w", err)
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("report: write: %w", err)
	}
	return nil
}

// ReadYAML reads one report written by WriteYAML, or by hand. Decoding is
// strict — an unknown or repeated field, or a second YAML document, is an
// error — and the report must pass Validate.
func ReadYAML(rd io.Reader) (*ConformanceReport, error) {
	b, err := io.ReadAll(io.LimitReader(rd, MaxReportSize+1))
	if err != nil {
		return nil, fmt.Errorf("report: read: %w", err)
	}
	if len(b) > MaxReportSize {
		return nil, fmt.Errorf("report: larger than %d bytes", MaxReportSize)
	}
	if err := oneDocument(b); err != nil {
		return nil, fmt.Errorf("report: decode: %w", err)
	}
	var r ConformanceReport
	if err := yaml.UnmarshalStrict(b, &r); err != nil {
		return nil, fmt.Errorf("report: decode: %w", err)
	}
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("report: invalid: %w", err)
	}
	return &r, nil
}

// oneDocument fails when b holds more than one YAML document:
// sigs.k8s.io/yaml reads the first and ignores the rest, which would let a
// second report pass unread.
func oneDocument(b []byte) error {
	dec := yamlv2.NewDecoder(bytes.NewReader(b))
	for n := 0; ; n++ {
		var doc any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if n == 1 {
			return errors.New("more than one YAML document")
		}
	}
}
