package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"text/tabwriter"
	"time"
)

// report is everything one run measured, printed as one table and a few
// lines, then the targets of issue 7 with PASS/MISS.
type report struct {
	header     []string // machine and run parameters
	load       []*targetStats
	statements float64 // teamgate's database statements during the timed runs
	proxied    float64 // requests teamgate proxied during them
	// What session refreshes alone may account for: each of refreshSessions
	// sessions is re-read at most once per cacheTTL during refreshSpan, at
	// perLookup statements a time.
	cacheTTL        time.Duration
	perLookup       float64
	refreshSessions int
	refreshSpan     time.Duration

	sseNames  []string
	sse       [][]int64
	sseCount  string   // what was streamed
	memBefore memUsage // with only the load users' sessions
	memAfter  memUsage // with --sessions more active sessions
	sessions  int
	sessWall  time.Duration
	sessConc  int
	storm     []time.Duration // empty: not run
	stormWall time.Duration
	stormNote string
}

// percentile of sorted values (nearest rank).
func percentile(sorted []int64, p float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(ns int64) string { return fmt.Sprintf("%.3f ms", float64(ns)/1e6) }

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func durations(ds []time.Duration) []int64 {
	out := make([]int64, len(ds))
	for i, d := range ds {
		out[i] = int64(d)
	}
	slices.Sort(out)
	return out
}

// check is one target of the issue.
type check struct {
	what  string
	value string
	pass  bool
}

func (r *report) print(w io.Writer) []check {
	for _, h := range r.header {
		fmt.Fprintln(w, h)
	}
	fmt.Fprintln(w)
	for _, s := range r.load {
		slices.Sort(s.lat)
	}
	var bare *targetStats
	for _, s := range r.load {
		if s.target.name == nameBare {
			bare = s
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\treq/s\tp50\tp99\t÷bare req/s\t÷bare p99\tper-round ÷bare req/s\thop CPU/req\terrors\t")
	var checks []check
	for _, s := range r.load {
		p50, p99 := percentile(s.lat, 50), percentile(s.lat, 99)
		cpuPerReq := "-"
		if s.requests > 0 && s.target.server != nil {
			cpuPerReq = fmt.Sprintf("%.1f µs", float64(s.cpu.Microseconds())/float64(s.requests))
		}
		ratio, ratioP99, spread := "", "", ""
		if bare != nil && s != bare && bare.rps() > 0 {
			rr := s.rps() / bare.rps()
			rp := float64(p99) / float64(percentile(bare.lat, 99))
			ratio, ratioP99 = fmt.Sprintf("%.2f", rr), fmt.Sprintf("%.2f", rp)
			var per []float64
			for i := range min(len(s.perRound), len(bare.perRound)) {
				per = append(per, s.perRound[i]/bare.perRound[i])
			}
			if len(per) > 0 {
				spread = fmt.Sprintf("%.2f–%.2f", slices.Min(per), slices.Max(per))
			}
			checks = append(checks, r.loadChecks(s.target.name, rr, rp)...)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t\n",
			s.target.name, s.rps(), ms(p50), ms(p99), ratio, ratioP99, spread, cpuPerReq, s.errors)
	}
	tw.Flush()
	for _, s := range r.load {
		if s.errors > 0 {
			fmt.Fprintf(w, "  %s: first error: %s\n", s.target.name, s.firstErr)
		}
	}
	fmt.Fprintln(w)

	perReq := 0.0
	if r.proxied > 0 {
		perReq = r.statements / r.proxied
	}
	refreshes := float64(r.refreshSessions) * math.Floor(r.refreshSpan.Seconds()/r.cacheTTL.Seconds()+1)
	bound := refreshes * r.perLookup
	fmt.Fprintf(w, "database statements during the timed runs: %.0f in %.0f proxied requests (%.5f per request).\n"+
		"  A session lookup costs %.0f statements, and each of the %d sessions is re-read at most once per\n"+
		"  session.cache_ttl (%s) whatever its request rate: over %s that allows %.0f statements.\n",
		r.statements, r.proxied, perReq, r.perLookup, r.refreshSessions, r.cacheTTL, r.refreshSpan.Round(time.Second), bound)
	checks = append(checks, check{"0 statements per proxied request (only cache_ttl refreshes)",
		fmt.Sprintf("%.0f ≤ %.0f", r.statements, bound), r.statements <= bound})

	if len(r.sse) > 0 {
		fmt.Fprintf(w, "\nSSE delay from the upstream's flush to the client's receipt (%s):\n", r.sseCount)
		medians := make([]int64, len(r.sse))
		for i, d := range r.sse {
			slices.Sort(d)
			medians[i] = percentile(d, 50)
			fmt.Fprintf(w, "  %-20s median %s  p99 %s\n", r.sseNames[i], ms(medians[i]), ms(percentile(d, 99)))
		}
		if len(medians) >= 3 { // direct, bare proxy, teamgate
			added := medians[2] - medians[1]
			fmt.Fprintf(w, "  teamgate adds %s per event at the median over the bare proxy\n", ms(added))
			checks = append(checks, check{"SSE: ≤ 1 ms added per event at the median", ms(added), added <= int64(time.Millisecond)})
		}
	}

	if r.sessions > 0 {
		a := r.memAfter
		other := a.anon - a.heapInuse - a.heapIdleKept - a.stacks
		fmt.Fprintf(w, "\nmemory: teamgate (assertions on) RSS %s with the load users' sessions, %s with %d more active\n"+
			"  sessions after %s of load over them (peak %s): program text %s, Go heap in use %s, idle Go heap not yet returned %s,\n"+
			"  stacks %s, other (runtime, SQLite's own allocator) %s. The %d sign-ins took %s (%.0f/s, %d at a time).\n",
			mib(r.memBefore.rss), mib(a.rss), r.sessions, memoryLoad, mib(a.peak), mib(a.file), mib(a.heapInuse), mib(a.heapIdleKept),
			mib(a.stacks), mib(other), r.sessions, r.sessWall.Round(100*time.Millisecond),
			float64(r.sessions)/r.sessWall.Seconds(), r.sessConc)
		checks = append(checks, check{fmt.Sprintf("RSS ≤ 100 MiB with %d sessions", r.sessions), mib(a.rss), a.rss <= 100<<20})
	}

	if len(r.storm) > 0 {
		d := durations(r.storm)
		fmt.Fprintf(w, "\nsign-in storm: %d concurrent first sign-ins (sync included) against PostgreSQL: all done in %s; "+
			"per sign-in p50 %s, p99 %s\n", len(d), r.stormWall.Round(time.Millisecond), ms(percentile(d, 50)), ms(percentile(d, 99)))
	} else if r.stormNote != "" {
		fmt.Fprintf(w, "\nsign-in storm: %s\n", r.stormNote)
	}

	fmt.Fprintln(w, "\ntargets:")
	for _, c := range checks {
		verdict := "PASS"
		if !c.pass {
			verdict = "MISS"
		}
		fmt.Fprintf(w, "  %s  %-62s %s\n", verdict, c.what, c.value)
	}
	return checks
}

// loadChecks are the throughput and latency targets of one teamgate row.
func (r *report) loadChecks(name string, ratio, p99Ratio float64) []check {
	f := func(v float64) string { return fmt.Sprintf("%.2f", v) }
	switch name {
	case nameCookie:
		return []check{
			{"cookie session: req/s ≥ 0.85 × bare proxy", f(ratio), ratio >= 0.85},
			{"cookie session: p99 ≤ 1.3 × bare proxy", f(p99Ratio), p99Ratio <= 1.3},
		}
	case nameAssertion:
		return []check{{"signed assertion: req/s ≥ 0.8 × bare proxy", f(ratio), ratio >= 0.8}}
	}
	return nil
}
