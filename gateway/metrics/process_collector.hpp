// process_* metrics read from /proc/self, as the Prometheus client libraries name them.
#pragma once

#include <prometheus/metric_family.h>

#include <vector>

namespace ssegw::metrics {

// Appends process_resident_memory_bytes, process_open_fds and process_cpu_seconds_total.
void append_process_metrics(std::vector<prometheus::MetricFamily>& families);

}  // namespace ssegw::metrics
