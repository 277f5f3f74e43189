package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"
)

// The load generator keeps a fixed number of keep-alive connections busy,
// one request in flight on each, like wrk. It speaks just enough HTTP/1.1
// to do that with prebuilt request bytes and no per-request allocation, so
// that on a small machine as much CPU as possible is left to the servers
// under test (net/http's client costs about as much per request as the
// proxy being measured).

// loadTarget is one thing to drive load at.
type loadTarget struct {
	name   string
	addr   string     // host:port
	conns  [][][]byte // per connection, the raw requests it sends in turn (one per user)
	server *proc      // the process that does this target's extra hop (CPU is charged to it)
	tg     *proc      // the teamgate process, to read its statement counter; nil otherwise
}

// chatRequest is a small chat-completion POST, with extra headers (a
// session cookie or an API key) as given.
func chatRequest(host string, extra ...string) []byte {
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say ok."}],"max_tokens":1}`
	var b bytes.Buffer
	fmt.Fprintf(&b, "POST /v1/chat/completions HTTP/1.1\r\nHost: %s\r\nUser-Agent: teamgate-bench\r\n"+
		"Accept: application/json\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", host, len(body))
	for i := 0; i+1 < len(extra); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", extra[i], extra[i+1])
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	return b.Bytes()
}

// runResult is one timed run against one target.
type runResult struct {
	requests int
	errors   int
	firstErr string
	elapsed  time.Duration
	lat      []int64 // nanoseconds, one per successful request
}

// drive runs len(conns) connections against addr for d, each sending its
// requests in turn. Every connection first completes one untimed request,
// so dialing and the proxies' own upstream dials are not measured; then
// all start together.
func drive(ctx context.Context, addr string, conns [][][]byte, d time.Duration) (runResult, error) {
	type worker struct {
		n, errs  int
		firstErr string
		lat      []int64
		end      time.Time
	}
	workers := make([]worker, len(conns))
	ready, startGate := sync.WaitGroup{}, make(chan struct{})
	var wg sync.WaitGroup
	var dialErr error
	var dialOnce sync.Once
	var start time.Time
	for i := range conns {
		ready.Add(1)
		wg.Add(1)
		go func(w *worker, script [][]byte) {
			defer wg.Done()
			c := &rawConn{addr: addr}
			defer c.close()
			if err := c.roundTrip(script[0]); err != nil {
				dialOnce.Do(func() { dialErr = err })
			}
			ready.Done()
			<-startGate
			w.lat = make([]int64, 0, 1<<14)
			deadline := start.Add(d)
			for k := 1; ctx.Err() == nil; k++ {
				t0 := time.Now()
				if !t0.Before(deadline) {
					break
				}
				if err := c.roundTrip(script[k%len(script)]); err != nil {
					w.errs++
					if w.firstErr == "" {
						w.firstErr = err.Error()
					}
					continue
				}
				w.lat = append(w.lat, int64(time.Since(t0)))
				w.n++
			}
			w.end = time.Now()
		}(&workers[i], conns[i])
	}
	ready.Wait()
	if dialErr != nil {
		close(startGate)
		wg.Wait()
		return runResult{}, fmt.Errorf("%s: %w", addr, dialErr)
	}
	start = time.Now()
	close(startGate)
	wg.Wait()
	var res runResult
	var end time.Time
	for _, w := range workers {
		res.requests += w.n
		res.errors += w.errs
		if res.firstErr == "" {
			res.firstErr = w.firstErr
		}
		res.lat = append(res.lat, w.lat...)
		if w.end.After(end) {
			end = w.end
		}
	}
	res.elapsed = end.Sub(start)
	return res, ctx.Err()
}

// rawConn is one keep-alive HTTP/1.1 connection, redialed after an error.
type rawConn struct {
	addr string
	c    net.Conn
	r    *bufio.Reader
}

func (c *rawConn) close() {
	if c.c != nil {
		c.c.Close()
		c.c = nil
	}
}

// roundTrip sends req and reads the whole response; anything but a 200 is
// an error (its status and the start of its body say which).
func (c *rawConn) roundTrip(req []byte) error {
	if c.c == nil {
		conn, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
		if err != nil {
			return err
		}
		c.c = conn
		if c.r == nil {
			c.r = bufio.NewReaderSize(conn, 16<<10)
		} else {
			c.r.Reset(conn)
		}
	}
	_ = c.c.SetDeadline(time.Now().Add(30 * time.Second))
	status, keep, err := c.write(req)
	if err != nil || !keep {
		c.close()
	}
	if err != nil {
		return err
	}
	if status != 200 {
		return fmt.Errorf("status %d", status)
	}
	return nil
}

var errMalformed = errors.New("malformed response")

// write sends req and consumes the response. keep is false when the
// server will close the connection.
func (c *rawConn) write(req []byte) (status int, keep bool, err error) {
	if _, err := c.c.Write(req); err != nil {
		return 0, false, err
	}
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, false, errMalformed
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, false, errMalformed
	}
	length, chunked, keep := -1, false, true
	for {
		line, err = c.r.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		if len(line) <= 2 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, false, errMalformed
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil {
				return 0, false, errMalformed
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			keep = !bytes.EqualFold(value, []byte("close"))
		}
	}
	switch {
	case chunked:
		err = c.discardChunks()
	case length >= 0:
		_, err = c.r.Discard(length)
	case status == 204 || status == 304:
	default:
		return status, false, nil // body until close: nothing to keep
	}
	return status, keep && err == nil, err
}

func (c *rawConn) discardChunks() error {
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		size, _, _ := bytes.Cut(bytes.TrimSpace(line), []byte(";"))
		n, err := strconv.ParseInt(string(size), 16, 64)
		if err != nil || n < 0 {
			return errMalformed
		}
		if n == 0 {
			for { // trailers, then the final CRLF
				if line, err = c.r.ReadSlice('\n'); err != nil || len(line) <= 2 {
					return err
				}
			}
		}
		if _, err := c.r.Discard(int(n) + 2); err != nil {
			return err
		}
	}
}

// targetStats accumulate a target's timed runs over all rounds.
type targetStats struct {
	target   *loadTarget
	requests int
	errors   int
	firstErr string
	elapsed  time.Duration
	lat      []int64
	cpu      time.Duration // CPU time of target.server during the runs
	perRound []float64     // requests/s of each round
	// teamgate's counters over the runs: database statements and proxied requests.
	statements, proxied float64
}

func (s *targetStats) rps() float64 {
	if s.elapsed <= 0 {
		return 0
	}
	return float64(s.requests) / s.elapsed.Seconds()
}

// runRounds drives every target for d per round, rounds times. Odd rounds
// go through the targets in reverse order (A B C, C B A, A B C …), so a
// drift of the machine's speed over the run (another job starting, thermal
// limits) weighs on every target alike. A short untimed warm-up of each
// target comes first.
func runRounds(ctx context.Context, targets []*loadTarget, rounds int, d time.Duration, progress func(string)) ([]*targetStats, error) {
	stats := make([]*targetStats, len(targets))
	for i, t := range targets {
		stats[i] = &targetStats{target: t}
		if _, err := drive(ctx, t.addr, t.conns, min(d, time.Second)); err != nil {
			return nil, fmt.Errorf("warm-up of %s: %w", t.name, err)
		}
	}
	for r := 0; r < rounds; r++ {
		for k := range targets {
			i := k
			if r%2 == 1 {
				i = len(targets) - 1 - k
			}
			t, s := targets[i], stats[i]
			time.Sleep(200 * time.Millisecond) // let the previous run's connections close
			cpu0 := t.server.cpu()
			var st0, px0 float64
			if t.tg != nil {
				var err error
				if st0, px0, err = t.tg.counters(); err != nil {
					return nil, err
				}
			}
			res, err := drive(ctx, t.addr, t.conns, d)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", t.name, err)
			}
			s.cpu += t.server.cpu() - cpu0
			if t.tg != nil {
				st1, px1, err := t.tg.counters()
				if err != nil {
					return nil, err
				}
				s.statements += st1 - st0
				s.proxied += px1 - px0
			}
			s.requests += res.requests
			s.errors += res.errors
			if s.firstErr == "" {
				s.firstErr = res.firstErr
			}
			s.elapsed += res.elapsed
			s.lat = append(s.lat, res.lat...)
			rps := float64(res.requests) / res.elapsed.Seconds()
			s.perRound = append(s.perRound, rps)
			progress(fmt.Sprintf("round %d/%d  %-22s %9.0f req/s", r+1, rounds, t.name, rps))
		}
	}
	return stats, nil
}
