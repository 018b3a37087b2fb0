package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward/chains/tezos"
	"github.com/keyward/keyward/signer"
)

const benchHelp = `Usage: keyward bench --url URL --key PKH [-c 16] [-d 10s] [--payload HEX | --kind generic|michelson]

Drives a running keyward over HTTP with concurrent Tezos signing requests and
prints requests/s, p50 and p99 latency and the error count. The default payload
is a generic operation (0x03) holding one transaction from the key to itself,
which the key's policy must allow (allow: [generic], operations: [transaction]).
With --pid the daemon's resident memory (VmRSS, VmHWM) is printed at the end.
`

func cmdBench(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", benchHelp, stdout)
	url := fs.String("url", "http://127.0.0.1:6732", "keyward Tezos listener")
	key := fs.String("key", "", "key address (tz1/tz2/tz3)")
	conc := fs.Int("c", 16, "concurrent clients")
	dur := fs.Duration("d", 10*time.Second, "duration")
	payloadHex := fs.String("payload", "", "payload to sign (hex); default built from --kind")
	kind := fs.String("kind", "generic", "generic (one transaction) or michelson (packed data)")
	pid := fs.Int("pid", 0, "daemon process id, to report its resident memory")
	if _, err := parse(fs, args, stderr); err != nil {
		return err
	}
	if *key == "" {
		return errors.New("--key PKH is required")
	}
	if *dur > 10*time.Minute {
		return errors.New("-d is limited to 10m")
	}
	payload := *payloadHex
	if payload == "" {
		b, err := benchPayload(*kind, *key)
		if err != nil {
			return err
		}
		payload = hex.EncodeToString(b)
	}
	body := []byte(`"` + payload + `"`)
	target := strings.TrimRight(*url, "/") + "/keys/" + *key
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *conc, MaxConnsPerHost: *conc}, Timeout: 30 * time.Second}
	// One warm-up request, which also checks the setup.
	if err := benchOnce(client, target, body); err != nil {
		return fmt.Errorf("first request failed: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *dur)
	defer cancel()
	var errs atomic.Int64
	lat := make([][]time.Duration, *conc)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < *conc; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for ctx.Err() == nil {
				t := time.Now()
				if err := benchOnce(client, target, body); err != nil {
					if ctx.Err() == nil {
						errs.Add(1)
					}
					continue
				}
				lat[i] = append(lat[i], time.Since(t))
			}
		}(i)
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	if len(all) == 0 {
		return fmt.Errorf("no successful requests (%d errors)", errs.Load())
	}
	pct := func(p float64) time.Duration { return all[int(float64(len(all)-1)*p)] }
	fmt.Fprintf(stdout, "requests: %d in %s with %d clients, errors: %d\n", len(all), elapsed.Round(time.Millisecond), *conc, errs.Load())
	fmt.Fprintf(stdout, "throughput: %.0f req/s\nlatency: p50 %s  p99 %s\n", float64(len(all))/elapsed.Seconds(), pct(0.5), pct(0.99))
	if *pid > 0 {
		rss, hwm := procMem(*pid)
		fmt.Fprintf(stdout, "daemon memory: VmRSS %s  VmHWM %s\n", rss, hwm)
	}
	return nil
}

func benchOnce(c *http.Client, url string, body []byte) error {
	resp, err := c.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return nil
}

func procMem(pid int) (rss, hwm string) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?", "?"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			rss = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			hwm = strings.TrimSpace(v)
		}
	}
	return rss, hwm
}

// benchPayload builds a generic operation holding one transaction of 1 mutez
// from the key to itself, or a packed Michelson string.
func benchPayload(kind, pkh string) ([]byte, error) {
	switch kind {
	case "michelson":
		return hex.DecodeString("05010000000568656c6c6f")
	case "generic":
	default:
		return nil, fmt.Errorf("unknown --kind %q", kind)
	}
	curve, hash, err := tezos.ParsePublicKeyHash(pkh)
	if err != nil {
		return nil, err
	}
	tag := map[signer.Curve]byte{signer.Ed25519: 0, signer.Secp256k1: 1, signer.P256: 2}[curve]
	b := []byte{0x03}
	branch := make([]byte, 32)
	rand.Read(branch)
	b = append(b, branch...)
	b = append(b, 108)        // transaction
	b = append(b, tag)        // source: implicit account
	b = append(b, hash...)    //
	b = append(b, 0xe8, 0x07) // fee 1000 mutez
	b = append(b, 0x01)       // counter 1
	b = append(b, 0xa0, 0x0b) // gas limit 1440
	b = append(b, 0x00)       // storage limit 0
	b = append(b, 0x01)       // amount 1 mutez
	b = append(b, 0x00, tag)  // destination: implicit
	b = append(b, hash...)    //
	b = append(b, 0x00)       // no parameters
	return b, nil
}
