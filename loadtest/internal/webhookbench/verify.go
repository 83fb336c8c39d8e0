// Package webhookbench measures Kiln's webhooks: how fast a receiver
// verifies Standard Webhooks signatures (webhook_verify), and how fast the
// dispatcher of a running Kiln delivers events to many endpoints
// (webhook_dispatch), each beside a same-run baseline.
package webhookbench

import (
	"crypto/hmac"
	"crypto/sha256"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kilnhq/kiln/webhooks/signature"
)

// VerifyResult is the webhook_verify line.
type VerifyResult struct {
	Bench     string  `json:"bench"`
	Value     float64 `json:"value"`
	Unit      string  `json:"unit"`
	Baseline  float64 `json:"baseline"`
	Ratio     float64 `json:"ratio"`
	BodyBytes int     `json:"body_bytes"`
	Workers   int     `json:"workers"`
	Target    float64 `json:"target"`
}

// Verify runs signature.Verify (one secret, a header with the valid entry
// after an invalid one, timestamp check) on all cores for d; the baseline
// is a bare HMAC-SHA256 over the same bytes, the floor of any verifier.
func Verify(d time.Duration, bodyBytes int) VerifyResult {
	secret, _ := signature.ParseSecret(signature.NewSecret())
	body := make([]byte, bodyBytes)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	now := time.Now()
	h := signature.Headers{ID: "msg_bench", Timestamp: strconv.FormatInt(now.Unix(), 10)}
	h.Signature = "v1,aW52YWxpZA== " + signature.Sign([]signature.Secret{secret}, h.ID, now, body)
	secrets := []signature.Secret{secret}
	workers := runtime.GOMAXPROCS(0)
	verify := func() {
		if _, err := signature.Verify(secrets, h, body, now, 5*time.Minute); err != nil {
			panic(err)
		}
	}
	bare := func() {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(h.ID + "." + h.Timestamp + "."))
		m.Write(body)
		var sum [sha256.Size]byte
		m.Sum(sum[:0])
	}
	// Alternate short rounds so a change in the machine's load hits both.
	const rounds = 6
	var value, base float64
	for range rounds {
		value += rate(d/rounds, workers, verify) / rounds
		base += rate(d/rounds, workers, bare) / rounds
	}
	return VerifyResult{Bench: "webhook_verify", Value: round(value), Unit: "verifications/s", Baseline: round(base),
		Ratio: round3(value / base), BodyBytes: bodyBytes, Workers: workers, Target: 50_000}
}

// rate runs f on workers goroutines for d and returns calls per second.
func rate(d time.Duration, workers int, f func()) float64 {
	var n atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			local := int64(0)
			for !stop.Load() {
				for range 64 {
					f()
				}
				local += 64
			}
			n.Add(local)
		})
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds()
}

func round(v float64) float64  { return float64(int64(v*10+0.5)) / 10 }
func round3(v float64) float64 { return float64(int64(v*1000+0.5)) / 1000 }
