package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/keyward/keyward/chains/tezos"
	"github.com/keyward/keyward/signer"
	"github.com/keyward/keyward/signer/local"
)

const benchHelp = `Usage: keyward bench --url URL --key PKH[,PKH...] [-c 16] [-d 10s] [--payload HEX | --kind generic|michelson|attestation]

Drives a running keyward over HTTP with concurrent Tezos signing requests and
prints requests/s, p50 and p99 latency and the error count. The default payload
is a generic operation (0x03) holding one transaction from the key to itself,
which the key's policy must allow (allow: [generic], operations: [transaction]).
--kind attestation sends attestations at rising levels (one counter per key,
starting at --start-level), which exercises the durable watermark; several
keys given as a comma-separated list share the clients round-robin.
With --pid the daemon's resident memory (VmRSS, VmHWM) and its CPU time per
request (from /proc/PID/stat) are printed at the end, next to the floor: the
CPU time of one signature plus its mandatory verification (signer.SignDigest
on a local key of the same curve, measured in this process before the load),
and the ratio of the two.
`

func cmdBench(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", benchHelp, stdout)
	url := fs.String("url", "http://127.0.0.1:6732", "keyward Tezos listener")
	key := fs.String("key", "", "key address (tz1/tz2/tz3/tz4), or several separated by commas")
	conc := fs.Int("c", 16, "concurrent clients")
	dur := fs.Duration("d", 10*time.Second, "duration")
	payloadHex := fs.String("payload", "", "payload to sign (hex); default built from --kind")
	kind := fs.String("kind", "generic", "generic (one transaction), michelson (packed data) or attestation (rising levels)")
	startLevel := fs.Int64("start-level", 1, "first level for --kind attestation (must be above the keys' marks)")
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
	keys := strings.Split(*key, ",")
	targets := make([]string, len(keys))
	bodies := make([][]byte, len(keys))
	levels := make([]atomic.Int64, len(keys))
	for i, k := range keys {
		targets[i] = strings.TrimRight(*url, "/") + "/keys/" + k
		levels[i].Store(*startLevel - 1)
		payload := *payloadHex
		if payload == "" && *kind != "attestation" {
			b, err := benchPayload(*kind, k)
			if err != nil {
				return err
			}
			payload = hex.EncodeToString(b)
		}
		bodies[i] = []byte(`"` + payload + `"`)
	}
	bodyFor := func(i int) []byte {
		if *kind == "attestation" && *payloadHex == "" {
			return []byte(`"` + hex.EncodeToString(attestationPayload(levels[i].Add(1), strings.HasPrefix(keys[i], "tz4"))) + `"`)
		}
		return bodies[i]
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *conc, MaxConnsPerHost: *conc}, Timeout: 30 * time.Second}
	// One warm-up request per key, which also checks the setup.
	for i := range keys {
		if err := benchOnce(client, targets[i], bodyFor(i)); err != nil {
			return fmt.Errorf("first request for %s failed: %w", keys[i], err)
		}
	}
	// A lean HTTP/1.1 keep-alive client per worker, so the load generator
	// spends little of the machine's CPU next to the daemon.
	host := strings.TrimPrefix(strings.TrimPrefix(strings.TrimRight(*url, "/"), "http://"), "https://")
	if strings.HasPrefix(*url, "https://") {
		return errors.New("bench drives plain http listeners only")
	}
	paths := make([]string, len(keys))
	for i, k := range keys {
		paths[i] = "/keys/" + k
	}
	conns := make([]*benchConn, *conc)
	for i := range conns {
		conns[i] = &benchConn{addr: host}
	}
	defer func() {
		for _, c := range conns {
			c.close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), *dur)
	defer cancel()
	var errs atomic.Int64
	var maxRSS atomic.Int64
	if *pid > 0 {
		go func() {
			for ctx.Err() == nil {
				if kb := rssKB(*pid); kb > maxRSS.Load() {
					maxRSS.Store(kb)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
	}
	var floor time.Duration
	var cpu0 time.Duration
	if *pid > 0 {
		curve, _, err := tezos.ParsePublicKeyHash(keys[0])
		if err != nil {
			return err
		}
		if floor, err = signFloor(curve); err != nil {
			return err
		}
		if cpu0, err = procCPU(*pid); err != nil {
			return err
		}
	}
	lat := make([][]time.Duration, *conc)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < *conc; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for ctx.Err() == nil {
				k := i % len(keys)
				t := time.Now()
				if err := conns[i].do(paths[k], bodyFor(k)); err != nil {
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
		fmt.Fprintf(stdout, "daemon memory: peak RSS under load %d kB; now VmRSS %s; VmHWM since start %s\n", maxRSS.Load(), rss, hwm)
		if cpu1, err := procCPU(*pid); err == nil {
			per := (cpu1 - cpu0) / time.Duration(len(all)+int(errs.Load()))
			fmt.Fprintf(stdout, "daemon CPU: %.1f µs/request; floor (sign + verify, same library): %.1f µs; ratio %.2f×\n",
				float64(per.Nanoseconds())/1e3, float64(floor.Nanoseconds())/1e3, float64(per)/float64(floor))
		}
	}
	return nil
}

// signFloor is the CPU time of one signature and its verification on a
// local key of curve c: what no daemon can do below.
func signFloor(c signer.Curve) (time.Duration, error) {
	k, err := local.Generate(c)
	if err != nil {
		return 0, err
	}
	d := tezos.Digest([]byte("floor"))
	const n = 4000
	for i := 0; i < n/10; i++ { // warm up
		if _, err := signer.SignDigest(context.Background(), k, d[:]); err != nil {
			return 0, err
		}
	}
	t0 := selfCPU()
	for i := 0; i < n; i++ {
		d[0] = byte(i)
		if _, err := signer.SignDigest(context.Background(), k, d[:]); err != nil {
			return 0, err
		}
	}
	return (selfCPU() - t0) / n, nil
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is a process's user plus system CPU time (/proc/PID/stat,
// in clock ticks of 1/100 s).
func procCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: fields count from its ")".
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, errors.New("unreadable /proc stat")
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("bad /proc stat")
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

// benchConn is one keep-alive HTTP/1.1 connection.
type benchConn struct {
	addr string
	c    net.Conn
	r    *bufio.Reader
	buf  []byte
}

func (b *benchConn) close() {
	if b.c != nil {
		b.c.Close()
		b.c = nil
	}
}

// do POSTs body to path and reads the answer; non-200 is an error.
func (b *benchConn) do(path string, body []byte) error {
	if b.c == nil {
		c, err := net.Dial("tcp", b.addr)
		if err != nil {
			return err
		}
		b.c, b.r = c, bufio.NewReaderSize(c, 4096)
	}
	b.buf = b.buf[:0]
	b.buf = append(b.buf, "POST "...)
	b.buf = append(b.buf, path...)
	b.buf = append(b.buf, " HTTP/1.1\r\nHost: "...)
	b.buf = append(b.buf, b.addr...)
	b.buf = append(b.buf, "\r\nContent-Type: application/json\r\nContent-Length: "...)
	b.buf = strconv.AppendInt(b.buf, int64(len(body)), 10)
	b.buf = append(b.buf, "\r\n\r\n"...)
	b.buf = append(b.buf, body...)
	b.c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := b.c.Write(b.buf); err != nil {
		b.close()
		return err
	}
	status, n := 0, -1
	for {
		line, err := b.r.ReadSlice('\n')
		if err != nil {
			b.close()
			return err
		}
		l := strings.TrimRight(string(line), "\r\n")
		if status == 0 {
			f := strings.Fields(l)
			if len(f) < 2 {
				b.close()
				return fmt.Errorf("bad status line %q", l)
			}
			status, _ = strconv.Atoi(f[1])
			continue
		}
		if l == "" {
			break
		}
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, "Content-Length") {
			n, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	if n < 0 {
		b.close()
		return errors.New("response without Content-Length")
	}
	resp := make([]byte, n)
	if _, err := io.ReadFull(b.r, resp); err != nil {
		b.close()
		return err
	}
	if status != 200 {
		return fmt.Errorf("HTTP %d: %s", status, strings.TrimSpace(string(resp)))
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

func rssKB(pid int) int64 {
	rss, _ := procMem(pid)
	var kb int64
	fmt.Sscanf(rss, "%d", &kb)
	return kb
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

// attestationPayload is a 0x13 attestation on mainnet's chain id at level:
// tag 21 with slot 1, or for a tz4 key tag 41 (no slot).
func attestationPayload(level int64, tz4 bool) []byte {
	b := []byte{0x13, 0x7a, 0x06, 0xa7, 0x70}
	b = append(b, make([]byte, 32)...) // branch
	if tz4 {
		b = append(b, 41)
	} else {
		b = append(b, 21, 0, 1) // attestation, slot 1
	}
	b = binary.BigEndian.AppendUint32(b, uint32(level))
	b = binary.BigEndian.AppendUint32(b, 0) // round
	return append(b, make([]byte, 32)...)
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
