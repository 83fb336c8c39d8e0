package ssefanout

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// settledRSS is the median of a process's VmRSS sampled over two seconds
// of quiet: single samples jump with the garbage collector.
func settledRSS(ctx context.Context, pid int) (int64, error) {
	var samples []int64
	for range 11 {
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return 0, err
		}
		kib, err := readRSS(pid)
		if err != nil {
			return 0, err
		}
		samples = append(samples, kib)
	}
	slices.Sort(samples)
	return samples[len(samples)/2], nil
}

// readRSS is a process's resident set size in KiB (VmRSS of
// /proc/<pid>/status; Linux only).
func readRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("gateway memory: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("gateway memory: VmRSS %q: %w", rest, err)
		}
		return kib, nil
	}
	return 0, fmt.Errorf("gateway memory: no VmRSS in /proc/%d/status", pid)
}
