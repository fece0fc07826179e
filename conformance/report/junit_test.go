package report

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// What a CI system reads back, declared independently of the writer's types.
type readSuites struct {
	XMLName  xml.Name `xml:"testsuites"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Skipped  int      `xml:"skipped,attr"`
	Suites   []struct {
		Name      string  `xml:"name,attr"`
		Tests     int     `xml:"tests,attr"`
		Failures  int     `xml:"failures,attr"`
		Errors    int     `xml:"errors,attr"`
		Skipped   int     `xml:"skipped,attr"`
		Time      float64 `xml:"time,attr"`
		Timestamp string  `xml:"timestamp,attr"`
		Cases     []struct {
			Classname string  `xml:"classname,attr"`
			Name      string  `xml:"name,attr"`
			Time      float64 `xml:"time,attr"`
			Failure   *struct {
				Message string `xml:"message,attr"`
				Type    string `xml:"type,attr"`
				Text    string `xml:",chardata"`
			} `xml:"failure"`
			Skipped *struct {
				Message string `xml:"message,attr"`
			} `xml:"skipped"`
			SystemOut string `xml:"system-out"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

func TestWriteJUnit(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	require.NoError(t, WriteJUnit(&buf, "gatecheck-kind", fixedResults()))

	var got readSuites
	require.NoError(t, xml.Unmarshal(buf.Bytes(), &got))
	assert.Equal(t, 8, got.Tests)
	assert.Equal(t, 1, got.Failures)
	assert.Equal(t, 1, got.Skipped)
	require.Len(t, got.Suites, 1)
	s := got.Suites[0]
	assert.Equal(t, "gatecheck-kind", s.Name)
	assert.Equal(t, 8, s.Tests)
	assert.Equal(t, 1, s.Failures)
	assert.Equal(t, 0, s.Errors)
	assert.Equal(t, 1, s.Skipped)
	assert.Equal(t, "2026-05-27T16:15:59Z", s.Timestamp, "the earliest start")
	assert.InDelta(t, 4.5, s.Time, 0.0005, "wall-clock span: from the first start to the last end")
	require.Len(t, s.Cases, 8)

	byName := map[string]int{}
	for i, c := range s.Cases {
		byName[c.Classname+"."+c.Name] = i
	}
	first := s.Cases[0]
	assert.Equal(t, "gatecheck.authn", first.Classname, "sorted by scenario name")
	assert.Equal(t, "jwt_expired", first.Name)
	require.NotNil(t, first.Skipped)
	assert.Equal(t, "target does not claim JWTVerification", first.Skipped.Message)
	assert.Nil(t, first.Failure)

	failed := s.Cases[byName["gatecheck.routing.streaming"]]
	require.NotNil(t, failed.Failure)
	assert.Equal(t, "status: want 200, got 502", failed.Failure.Message)
	assert.Equal(t, "failure", failed.Failure.Type)
	assert.Equal(t, "status: want 200, got 502\nbody: upstream connect error", failed.Failure.Text)
	assert.Equal(t, "> chat --stream hello\n[stderr] 502 Bad Gateway\n", failed.SystemOut)
	assert.InDelta(t, 1.5, failed.Time, 0.0005)
	assert.Nil(t, failed.Skipped)

	passed := s.Cases[byName["gatecheck.authn.key_missing"]]
	assert.Nil(t, passed.Failure)
	assert.Nil(t, passed.Skipped)
	assert.InDelta(t, 0.12, passed.Time, 0.0005)
}

func TestWriteJUnitHostileText(t *testing.T) {
	t.Parallel()
	results := []ScenarioResult{
		{Name: "plain", Outcome: Failed, Reason: "]]> <script>&\x00\x1b[31mred\x1b[0m \"quoted\"", Log: "\x1b[1mbold\x1b[0m\x07 </system-out>", Duration: time.Second},
		{Name: "a/", Outcome: Skipped},
	}
	var buf bytes.Buffer
	require.NoError(t, WriteJUnit(&buf, "", results))

	var got readSuites
	require.NoError(t, xml.Unmarshal(buf.Bytes(), &got), buf.String())
	s := got.Suites[0]
	assert.Equal(t, "gatecheck", s.Name, "the default suite name")
	assert.Empty(t, s.Timestamp, "no start times, no timestamp")
	assert.InDelta(t, 1.0, s.Time, 0.0005, "without start times, the sum")
	c := s.Cases[1]
	assert.Equal(t, "gatecheck", c.Classname, "no area")
	assert.Equal(t, "plain", c.Name)
	assert.Equal(t, "]]> <script>&\uFFFD\uFFFD[31mred\uFFFD[0m \"quoted\"", c.Failure.Text)
	assert.Equal(t, "\uFFFD[1mbold\uFFFD[0m\uFFFD </system-out>", c.SystemOut)
	assert.Equal(t, "a/", s.Cases[0].Name, "a name with nothing after the slash is kept whole")
}

func TestWriteJUnitEmpty(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	require.NoError(t, WriteJUnit(&buf, "gatecheck", nil))
	var got readSuites
	require.NoError(t, xml.Unmarshal(buf.Bytes(), &got))
	assert.Equal(t, 0, got.Tests)
	require.Len(t, got.Suites, 1)
	assert.True(t, strings.HasPrefix(buf.String(), xml.Header))
}

func TestWriteJUnitRefusesBadResults(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	err := WriteJUnit(&buf, "gatecheck", []ScenarioResult{{Name: "a/b", Outcome: "maybe"}})
	require.EqualError(t, err, `junit: results[0]: scenario "a/b": unknown outcome "maybe"`)
	assert.Zero(t, buf.Len())
}
