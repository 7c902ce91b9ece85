package bench

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// PercentileMethod names the way Percentile picks a value, for reports.
const PercentileMethod = "linear interpolation between closest ranks (R-7, numpy default)"

// Summary describes a set of duration samples.
type Summary struct {
	N      int
	Median time.Duration
	P95    time.Duration
	Mean   time.Duration
	Min    time.Duration
	Max    time.Duration
}

// Summarize returns the Summary of samples. It does not modify samples; an
// empty slice gives the zero Summary.
func Summarize(samples []time.Duration) Summary {
	if len(samples) == 0 {
		return Summary{}
	}
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	var sum float64
	for _, d := range sorted {
		sum += float64(d)
	}
	return Summary{
		N:      len(sorted),
		Median: Percentile(sorted, 50),
		P95:    Percentile(sorted, 95),
		Mean:   time.Duration(math.Round(sum / float64(len(sorted)))),
		Min:    sorted[0],
		Max:    sorted[len(sorted)-1],
	}
}

// Percentile returns the p-th percentile of sorted, which must be in
// ascending order. It interpolates linearly between the two closest ranks:
// the value at the 0-based fractional index p/100·(n−1), the method numpy and R
// (type 7) use by default, so Percentile(s, 50) is the usual median (the mean
// of the two middle values for an even count). It returns 0 for an empty slice
// and panics if p is not within [0, 100].
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if !(p >= 0 && p <= 100) { // also refuses NaN
		panic(fmt.Sprintf("bench: percentile %v outside [0, 100]", p))
	}
	n := len(sorted)
	if n == 0 {
		return 0
	}
	pos := p / 100 * float64(n-1)
	lo := int(math.Floor(pos))
	hi := int(math.Ceil(pos))
	if lo == hi {
		return sorted[lo]
	}
	frac := pos - float64(lo)
	v := float64(sorted[lo]) + frac*float64(sorted[hi]-sorted[lo])
	return time.Duration(math.Round(v))
}
