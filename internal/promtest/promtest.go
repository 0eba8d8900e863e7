// Package promtest scrapes a metrics endpoint in tests and reads the values
// it exposes, parsed with the Prometheus text parser
// (github.com/prometheus/common/expfmt), as a Prometheus server would.
package promtest

import (
	"net/http"
	"slices"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Families are the metric families of one scrape, by name.
type Families map[string]*dto.MetricFamily

// Scrape gets url with client (nil: http.DefaultClient) and parses the
// answer in the Prometheus text exposition format, failing the test if it
// cannot.
func Scrape(t testing.TB, client *http.Client, url string) Families {
	t.Helper()
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("scrape %s: not the text exposition format: %v", url, err)
	}
	return fams
}

// Value returns the value of the sample of the family name whose labels
// are exactly labels (name, value pairs): a counter's or gauge's value, a
// histogram's sample count. It fails the test when the family or the
// sample is missing.
func (f Families) Value(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	v, ok := f.Lookup(name, labels...)
	if !ok {
		t.Fatalf("no sample %s%v in the scrape", name, labels)
	}
	return v
}

// Lookup is Value without failing: ok is false when there is no such sample.
func (f Families) Lookup(name string, labels ...string) (v float64, ok bool) {
	fam := f[name]
	if fam == nil {
		return 0, false
	}
	for _, m := range fam.GetMetric() {
		if !hasLabels(m, labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

// hasLabels reports whether m has exactly the labels given as pairs.
func hasLabels(m *dto.Metric, pairs []string) bool {
	if len(m.GetLabel())*2 != len(pairs) {
		return false
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool {
			return l.GetName() == pairs[i] && l.GetValue() == pairs[i+1]
		}) {
			return false
		}
	}
	return true
}
