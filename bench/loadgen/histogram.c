/* histogram.c - see histogram.h for the bucket layout and its error bound. */
#include "histogram.h"

#include <math.h>
#include <string.h>

#define SUB_COUNT (1u << LG_HISTOGRAM_SUB_BITS)

static unsigned bucket_of(uint64_t value)
{
    if (value < SUB_COUNT) {
        return (unsigned)value;
    }
    unsigned msb = 63u - (unsigned)__builtin_clzll(value);
    if (msb >= LG_HISTOGRAM_MAX_BITS) {
        return LG_HISTOGRAM_BUCKETS - 1;
    }
    /* [2^msb, 2^(msb+1)) is cut into SUB_COUNT buckets of width 2^(msb - SUB_BITS). */
    unsigned shift = msb - LG_HISTOGRAM_SUB_BITS;
    return SUB_COUNT + shift * SUB_COUNT + (unsigned)((value >> shift) - SUB_COUNT);
}

/* The middle of a bucket (the inverse of bucket_of, up to half a bucket's width). */
static uint64_t bucket_middle(unsigned bucket)
{
    if (bucket < SUB_COUNT) {
        return bucket;
    }
    unsigned shift = (bucket - SUB_COUNT) / SUB_COUNT;
    uint64_t mantissa = SUB_COUNT + (bucket - SUB_COUNT) % SUB_COUNT;
    uint64_t low = mantissa << shift;
    return low + ((UINT64_C(1) << shift) >> 1);
}

void lg_histogram_init(struct lg_histogram *histogram)
{
    memset(histogram, 0, sizeof(*histogram));
    histogram->min_ns = UINT64_MAX;
}

void lg_histogram_record(struct lg_histogram *histogram, uint64_t value_ns)
{
    histogram->counts[bucket_of(value_ns)]++;
    histogram->total++;
    histogram->sum_ns += (double)value_ns;
    if (value_ns < histogram->min_ns) {
        histogram->min_ns = value_ns;
    }
    if (value_ns > histogram->max_ns) {
        histogram->max_ns = value_ns;
    }
}

void lg_histogram_merge(struct lg_histogram *into, const struct lg_histogram *from)
{
    for (unsigned i = 0; i < LG_HISTOGRAM_BUCKETS; i++) {
        into->counts[i] += from->counts[i];
    }
    into->total += from->total;
    into->sum_ns += from->sum_ns;
    if (from->min_ns < into->min_ns) {
        into->min_ns = from->min_ns;
    }
    if (from->max_ns > into->max_ns) {
        into->max_ns = from->max_ns;
    }
}

uint64_t lg_histogram_quantile(const struct lg_histogram *histogram, double q)
{
    if (histogram->total == 0) {
        return 0;
    }
    double wanted = ceil(q * (double)histogram->total);
    uint64_t rank = wanted < 1.0 ? 1 : (uint64_t)wanted;
    if (rank >= histogram->total) {
        return histogram->max_ns; /* the largest sample is known exactly */
    }
    uint64_t seen = 0;
    for (unsigned i = 0; i < LG_HISTOGRAM_BUCKETS; i++) {
        seen += histogram->counts[i];
        if (seen >= rank) {
            uint64_t value = bucket_middle(i);
            if (value < histogram->min_ns) {
                value = histogram->min_ns;
            }
            if (value > histogram->max_ns) {
                value = histogram->max_ns;
            }
            return value;
        }
    }
    return histogram->max_ns;
}
