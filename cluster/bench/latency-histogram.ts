/**
 * Latency recording with HdrHistogram (npm hdr-histogram-js): values are recorded in
 * microseconds from 1 µs to 10 minutes with 3 significant digits (so a percentile is within 0.1%
 * of the true value), in constant memory whatever the number of records. Reported in ms.
 */
import * as hdr from "hdr-histogram-js";

const LOWEST_US = 1;
const HIGHEST_US = 10 * 60 * 1_000_000;
const SIGNIFICANT_DIGITS = 3;

export interface LatencySummary {
  /** Records measured. */
  readonly count: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
  readonly meanMs: number;
}

export class LatencyHistogram {
  private readonly histogram = hdr.build({
    lowestDiscernibleValue: LOWEST_US,
    highestTrackableValue: HIGHEST_US,
    numberOfSignificantValueDigits: SIGNIFICANT_DIGITS,
    bitBucketSize: 32,
    autoResize: false,
    useWebAssembly: false,
  });

  /** Records one latency given in milliseconds (as performance.now() differences are). */
  recordMs(ms: number): void {
    const us = Math.round(ms * 1000);
    this.histogram.recordValue(Math.min(Math.max(us, LOWEST_US), HIGHEST_US));
  }

  get count(): number {
    return this.histogram.totalCount;
  }

  summary(): LatencySummary {
    const h = this.histogram;
    const at = (p: number): number => (h.totalCount === 0 ? NaN : h.getValueAtPercentile(p) / 1000);
    return {
      count: h.totalCount,
      p50Ms: at(50),
      p90Ms: at(90),
      p99Ms: at(99),
      p999Ms: at(99.9),
      maxMs: h.totalCount === 0 ? NaN : h.maxValue / 1000,
      meanMs: h.totalCount === 0 ? NaN : h.mean / 1000,
    };
  }
}
