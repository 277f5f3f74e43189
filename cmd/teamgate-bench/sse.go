package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Streaming is where a proxy can hurt without showing in requests/s: an
// event held in a buffer reaches the user late. The upstream stamps each
// event with its clock just before writing and flushing it; the client
// reads the stamp on arrival. Both run on this host, so the difference is
// the time the event spent in transit: one loopback hop for direct, two
// for the proxies, plus whatever the proxy adds.

const (
	sseEvents   = 50
	sseInterval = 10 * time.Millisecond
)

// sseTarget is a URL that ends at the upstream's /sse.
type sseTarget struct {
	name   string
	url    string
	header http.Header
}

// measureSSE opens streams streams on each target, one stream at a time,
// alternating between the targets (reversed every other turn), and returns
// each target's per-event delays in nanoseconds.
func measureSSE(ctx context.Context, targets []sseTarget, streams int) ([][]int64, error) {
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableCompression: true}}
	out := make([][]int64, len(targets))
	for s := 0; s < streams; s++ {
		for k := range targets {
			i := k
			if s%2 == 1 {
				i = len(targets) - 1 - k
			}
			d, err := readStream(ctx, client, targets[i])
			if err != nil {
				return nil, fmt.Errorf("sse via %s: %w", targets[i].name, err)
			}
			out[i] = append(out[i], d...)
		}
	}
	return out, nil
}

func readStream(ctx context.Context, client *http.Client, t sseTarget) ([]int64, error) {
	u := t.url + "/sse?events=" + strconv.Itoa(sseEvents) + "&interval=" + sseInterval.String()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header = t.header.Clone()
	req.Header.Set("Accept", "text/event-stream")
	res, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", res.StatusCode)
	}
	delays := make([]int64, 0, sseEvents)
	r := bufio.NewReader(res.Body)
	for {
		line, err := r.ReadSlice('\n')
		now := time.Now().UnixNano()
		if err != nil {
			break // end of stream (or a broken one: the count below says so)
		}
		stamp, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte("data: "))
		if !ok {
			continue
		}
		sent, err := strconv.ParseInt(string(stamp), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bad event %q", line)
		}
		delays = append(delays, now-sent)
	}
	if len(delays) != sseEvents {
		return nil, fmt.Errorf("got %d of %d events", len(delays), sseEvents)
	}
	return delays, nil
}
