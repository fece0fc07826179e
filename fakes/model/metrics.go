package model

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the vLLM metrics of one server, on the server's own registry
// (many servers share a process). Load gauges are read from the scheduler at
// scrape time, so one scrape never sees a half-made update.
type metrics struct {
	registry *prometheus.Registry

	promptTokens     prometheus.Counter
	generationTokens prometheus.Counter
	success          *prometheus.CounterVec // finished_reason
	e2e              prometheus.Histogram
	ttft             prometheus.Histogram
	tpot             prometheus.Histogram
}

func newMetrics(modelName string, maxLoRAs, kvBlocks int, sched *scheduler) (*metrics, error) {
	// Bucket bounds in seconds, as vLLM's (vllm/v1/metrics/loggers.py).
	ttftBuckets := []float64{0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560}
	tpotBuckets := []float64{0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80}
	e2eBuckets := []float64{0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680}
	labels := prometheus.Labels{"model_name": modelName}
	m := &metrics{
		registry: prometheus.NewRegistry(),
		promptTokens: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vllm:prompt_tokens_total", Help: "Number of prefill tokens processed.", ConstLabels: labels,
		}),
		generationTokens: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vllm:generation_tokens_total", Help: "Number of generation tokens processed.", ConstLabels: labels,
		}),
		success: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vllm:request_success_total", Help: "Count of successfully processed requests.", ConstLabels: labels,
		}, []string{"finished_reason"}),
		e2e: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "vllm:e2e_request_latency_seconds", Help: "Histogram of end to end request latency in seconds.",
			ConstLabels: labels, Buckets: e2eBuckets,
		}),
		ttft: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "vllm:time_to_first_token_seconds", Help: "Histogram of time to first token in seconds.",
			ConstLabels: labels, Buckets: ttftBuckets,
		}),
		tpot: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "vllm:time_per_output_token_seconds", Help: "Histogram of time per output token in seconds.",
			ConstLabels: labels, Buckets: tpotBuckets,
		}),
	}
	load := &loadCollector{
		sched:    sched,
		model:    modelName,
		maxLoRAs: strconv.Itoa(maxLoRAs),
		kvBlocks: kvBlocks,
		running: prometheus.NewDesc("vllm:num_requests_running",
			"Number of requests in model execution batches.", []string{"model_name"}, nil),
		waiting: prometheus.NewDesc("vllm:num_requests_waiting",
			"Number of requests waiting to be processed.", []string{"model_name"}, nil),
		kvUsage: prometheus.NewDesc("vllm:kv_cache_usage_perc",
			"KV-cache usage. 1 means 100 percent usage.", []string{"model_name"}, nil),
		gpuUsage: prometheus.NewDesc("vllm:gpu_cache_usage_perc",
			"GPU KV-cache usage. 1 means 100 percent usage (older name of vllm:kv_cache_usage_perc).", []string{"model_name"}, nil),
		loraInfo: prometheus.NewDesc("vllm:lora_requests_info",
			"Running stats on lora requests.", []string{"max_lora", "running_lora_adapters", "waiting_lora_adapters"}, nil),
		cacheInfo: prometheus.NewDesc("vllm:cache_config_info",
			"Information of the LLMEngine CacheConfig.", []string{"block_size", "num_gpu_blocks"}, nil),
	}
	for _, c := range []prometheus.Collector{m.promptTokens, m.generationTokens, m.success, m.e2e, m.ttft, m.tpot, load} {
		if err := m.registry.Register(c); err != nil {
			return nil, fmt.Errorf("register model server metrics: %w", err)
		}
	}
	return m, nil
}

// finished records one request that ended normally.
func (m *metrics) finished(promptTokens, completionTokens int, reason string, e2e, ttft time.Duration, gaps []time.Duration) {
	m.promptTokens.Add(float64(promptTokens))
	m.generationTokens.Add(float64(completionTokens))
	m.success.WithLabelValues(reason).Inc()
	m.e2e.Observe(e2e.Seconds())
	if completionTokens > 0 {
		m.ttft.Observe(ttft.Seconds())
	}
	for _, g := range gaps {
		m.tpot.Observe(g.Seconds())
	}
}

// loadCollector reports the scheduler's state as vLLM's load gauges.
type loadCollector struct {
	sched    *scheduler
	model    string
	maxLoRAs string
	kvBlocks int

	running, waiting, kvUsage, gpuUsage, loraInfo, cacheInfo *prometheus.Desc
}

func (c *loadCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.running, c.waiting, c.kvUsage, c.gpuUsage, c.loraInfo, c.cacheInfo} {
		ch <- d
	}
}

func (c *loadCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.sched.state()
	usage := 0.0
	if capacity := c.kvBlocks * BlockSize; capacity > 0 {
		usage = min(1, float64(st.kvTokens)/float64(capacity))
	}
	changed := float64(st.changed.UnixNano()) / 1e9
	for _, m := range []struct {
		desc   *prometheus.Desc
		value  float64
		labels []string
	}{
		{c.running, float64(st.running), []string{c.model}},
		{c.waiting, float64(st.waiting), []string{c.model}},
		{c.kvUsage, usage, []string{c.model}},
		{c.gpuUsage, usage, []string{c.model}},
		// vLLM sets this gauge to the time of the update; one series,
		// whose labels change.
		{c.loraInfo, changed, []string{c.maxLoRAs, strings.Join(st.runningLoRAs, ","), strings.Join(st.waitingLoRAs, ",")}},
		{c.cacheInfo, 1, []string{strconv.Itoa(BlockSize), strconv.Itoa(c.kvBlocks)}},
	} {
		metric, err := prometheus.NewConstMetric(m.desc, prometheus.GaugeValue, m.value, m.labels...)
		if err != nil {
			metric = prometheus.NewInvalidMetric(m.desc, err)
		}
		ch <- metric
	}
}
