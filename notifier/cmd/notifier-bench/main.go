// Command notifier-bench prints one JSON line measuring the notifier's rule
// evaluation (bench "notifier_eval"): events/s evaluated against 100 rules
// and, as the baseline, the same events consumed with no rules.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/kilnhq/kiln/notifier/evalbench"
)

func main() {
	d := flag.Duration("duration", 4*time.Second, "how long to measure")
	flag.Parse()
	r, err := evalbench.Run(*d)
	if err != nil {
		fmt.Fprintln(os.Stderr, "notifier-bench:", err)
		os.Exit(1)
	}
	fmt.Println(r.JSON())
}
