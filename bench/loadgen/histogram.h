/*
 * histogram.h - a latency histogram with bounded memory and a bounded relative error.
 *
 * Log-linear buckets (the HdrHistogram layout): values below 128 ns have a bucket each; every
 * power of two above is split into 128 equal buckets, so a bucket is at most 1/128 (0.8 %) of
 * its value wide. Values are nanoseconds up to 2^40 (about 18 minutes); larger ones land in the
 * last bucket. Memory is fixed (LG_HISTOGRAM_BUCKETS counters), whatever the number of samples,
 * so a run of millions of operations never keeps its samples.
 *
 * Not thread-safe: each worker thread records into its own histogram, and the main thread merges
 * them after the workers are done.
 */
#ifndef KPKI_LOADGEN_HISTOGRAM_H
#define KPKI_LOADGEN_HISTOGRAM_H

#include <stdint.h>

#define LG_HISTOGRAM_SUB_BITS 7
#define LG_HISTOGRAM_MAX_BITS 40
#define LG_HISTOGRAM_BUCKETS                                                                       \
    ((LG_HISTOGRAM_MAX_BITS - LG_HISTOGRAM_SUB_BITS + 1) << LG_HISTOGRAM_SUB_BITS)

struct lg_histogram {
    uint64_t counts[LG_HISTOGRAM_BUCKETS];
    uint64_t total;  /* samples recorded */
    uint64_t min_ns; /* exact; UINT64_MAX while empty */
    uint64_t max_ns; /* exact */
    double sum_ns;   /* for the mean */
};

/* Empties the histogram (the caller owns the struct; nothing is allocated). */
void lg_histogram_init(struct lg_histogram *histogram);

void lg_histogram_record(struct lg_histogram *histogram, uint64_t value_ns);

/* Adds every sample of `from` into `into`. */
void lg_histogram_merge(struct lg_histogram *into, const struct lg_histogram *from);

/* The value at quantile q (0 < q <= 1): the middle of the bucket holding the sample of rank
 * ceil(q * total), clamped to the exact min and max; the exact max for the last rank; 0 when
 * empty. */
uint64_t lg_histogram_quantile(const struct lg_histogram *histogram, double q);

#endif
