package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Names of the load targets, as printed.
const (
	nameDirect    = "direct"
	nameBare      = "bare proxy"
	nameCookie    = "teamgate, cookie"
	nameAssertion = "teamgate, assertion"
	nameAPIKey    = "teamgate, API key"
)

// sessionCacheTTL is session.cache_ttl's default, which the generated
// configs keep: how often a busy session is re-read from the database.
const sessionCacheTTL = 30 * time.Second

// signInConcurrency is how many sign-ins run at once outside the storm.
const signInConcurrency = 32

// memoryLoad is how long the sessions of the memory figure are used under
// load before the RSS is read, so that it is the RSS of a gateway serving
// them rather than of one just done with a burst of sign-ins.
const memoryLoad = 5 * time.Second

// bench is one run: its temp dir, child processes and the fake tenant.
type bench struct {
	o        options
	getenv   func(string) string
	progress io.Writer
	start    time.Time
	dir      string
	procs    []*proc
	cleanups []func()
	tenant   *tenant
}

func (b *bench) say(format string, args ...any) {
	fmt.Fprintf(b.progress, "[%6.1fs] %s\n", time.Since(b.start).Seconds(), fmt.Sprintf(format, args...))
}

// close stops every child, the tenant, drops the PostgreSQL schemas and
// removes the temp dir (unless --keep).
func (b *bench) close() {
	for i := len(b.procs) - 1; i >= 0; i-- {
		b.procs[i].stop()
	}
	if b.tenant != nil {
		b.tenant.close()
	}
	for _, c := range b.cleanups {
		c()
	}
	if b.dir != "" && !b.o.keep {
		os.RemoveAll(b.dir)
	} else if b.dir != "" {
		fmt.Fprintf(b.progress, "kept %s\n", b.dir)
	}
}

// teamgate starts one teamgate process with a database of its own: a
// SQLite file in the temp dir, or a fresh schema on the PostgreSQL server
// of pgBase.
func (b *bench) teamgate(ctx context.Context, bin, name, pgBase string, assertion bool, upstream *proc) (*proc, error) {
	dbURL := "sqlite:" + filepath.Join(b.dir, name+".db")
	if pgBase != "" {
		u, drop, err := postgresSchema(ctx, pgBase)
		if err != nil {
			return nil, err
		}
		b.cleanups = append(b.cleanups, drop)
		dbURL = u
	}
	p, err := startTeamgate(ctx, bin, teamgateOptions{
		name: name, upstream: "http://" + upstream.addr, dbURL: dbURL, logLevel: b.o.logLevel, syncEvery: b.o.syncEvery, assertion: assertion,
		entra: b.tenant.settings,
	}, b.dir)
	if err != nil {
		return nil, err
	}
	b.procs = append(b.procs, p)
	return p, nil
}

// scripts gives connection i the requests of users i, i+conns, … in
// turn, so that every user's session is in use, as with many people behind
// one gateway.
func scripts(addr string, conns, users int, header func(user int) []string) [][][]byte {
	out := make([][][]byte, conns)
	for i := range out {
		for u := i % users; ; u += conns {
			out[i] = append(out[i], chatRequest(addr, header(u%users)...))
			if u+conns >= users {
				break
			}
		}
	}
	return out
}

func cookieOf(cookies []string) func(int) []string {
	return func(u int) []string { return []string{"Cookie", sessionCookie + "=" + cookies[u]} }
}

func userIDs(from, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = benchUserID(from + i)
	}
	return ids
}

func (b *bench) run(ctx context.Context) (*report, error) {
	o := b.o
	b.start = time.Now()
	var err error
	if b.dir, err = os.MkdirTemp("", "teamgate-bench-"); err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	backend := "SQLite"
	if o.db != "" {
		backend = "PostgreSQL"
	}
	r := &report{header: machine(o, backend), cacheTTL: sessionCacheTTL}

	b.say("building teamgate")
	bin, err := buildTeamgate(ctx, b.dir, o.symbols)
	if err != nil {
		return nil, err
	}
	if b.tenant, err = startTenant(max(o.users+o.sessions, o.storm)); err != nil {
		return nil, err
	}
	up, err := startChild(self, "upstream", nil, b.dir)
	if err != nil {
		return nil, err
	}
	b.procs = append(b.procs, up)
	bare, err := startChild(self, "bareproxy", []string{"--upstream", "http://" + up.addr}, b.dir)
	if err != nil {
		return nil, err
	}
	b.procs = append(b.procs, bare)
	tgc, err := b.teamgate(ctx, bin, "teamgate-cookie", o.db, false, up)
	if err != nil {
		return nil, err
	}
	tga, err := b.teamgate(ctx, bin, "teamgate-assertion", o.db, true, up)
	if err != nil {
		return nil, err
	}

	b.say("signing in %d users to each teamgate", o.users)
	ids := userIDs(0, o.users)
	cookiesC, _, _, err := signInAll(ctx, "http://"+tgc.addr, ids, signInConcurrency)
	if err != nil {
		return nil, err
	}
	cookiesA, _, _, err := signInAll(ctx, "http://"+tga.addr, ids, signInConcurrency)
	if err != nil {
		return nil, err
	}

	script := func(addr string, header func(user int) []string) [][][]byte {
		return scripts(addr, o.connections, o.users, header)
	}
	apiKey := func(u int) []string { return []string{"Authorization", fmt.Sprintf("Bearer sk-bench-%04d", u)} }
	targets := []*loadTarget{
		{name: nameDirect, addr: up.addr, conns: script(up.addr, cookieOf(cookiesC)), server: up},
		{name: nameBare, addr: bare.addr, conns: script(bare.addr, cookieOf(cookiesC)), server: bare},
		{name: nameCookie, addr: tgc.addr, conns: script(tgc.addr, cookieOf(cookiesC)), server: tgc, tg: tgc},
		{name: nameAssertion, addr: tga.addr, conns: script(tga.addr, cookieOf(cookiesA)), server: tga, tg: tga},
		{name: nameAPIKey, addr: tgc.addr, conns: script(tgc.addr, apiKey), server: tgc, tg: tgc},
	}
	// One request per session loads the session caches, and tells what a
	// session lookup costs in statements.
	for _, c := range []struct {
		tg      *proc
		cookies []string
	}{{tgc, cookiesC}, {tga, cookiesA}} {
		n, err := lookupStatements(c.tg, c.cookies)
		if err != nil {
			return nil, err
		}
		r.perLookup = max(r.perLookup, n)
	}

	b.say("load: %d rounds × %d targets × %s", o.rounds, len(targets), o.duration)
	loadStart := time.Now()
	if r.load, err = runRounds(ctx, targets, o.rounds, o.duration, func(s string) { b.say("%s", s) }); err != nil {
		return nil, err
	}
	r.refreshSpan, r.refreshSessions = time.Since(loadStart), 2*o.users
	for _, s := range r.load {
		r.statements += s.statements
		r.proxied += s.proxied
	}

	if o.sseStreams > 0 {
		b.say("SSE: %d streams per target", o.sseStreams)
		cookie := http.Header{"Cookie": {sessionCookie + "=" + cookiesC[0]}}
		sse := []sseTarget{
			{name: nameDirect, url: "http://" + up.addr, header: cookie},
			{name: nameBare, url: "http://" + bare.addr, header: cookie},
			{name: nameCookie, url: "http://" + tgc.addr, header: cookie},
		}
		if r.sse, err = measureSSE(ctx, sse, o.sseStreams); err != nil {
			return nil, err
		}
		for _, t := range sse {
			r.sseNames = append(r.sseNames, t.name)
		}
		r.sseCount = fmt.Sprintf("%d streams × %d events, %s apart, one stream at a time", o.sseStreams, sseEvents, sseInterval)
	}

	if o.sessions > 0 {
		if err := b.memory(ctx, r, tga); err != nil {
			return nil, err
		}
	}
	if o.storm > 0 {
		b.stormRun(ctx, r, bin, up)
	}
	r.header = append(r.header, "load average at end: "+loadAverage())
	return r, nil
}

// memory signs in --sessions more users on the teamgate with assertions
// (the default configuration, and the one holding the most per session),
// sends one proxied request with each session so that it is cached with its
// assertion, and reads the process's RSS.
func (b *bench) memory(ctx context.Context, r *report, tg *proc) error {
	var err error
	if r.memBefore, err = tg.memory(); err != nil {
		return err
	}
	b.say("memory: signing in %d users, %d at a time", b.o.sessions, signInConcurrency)
	cookies, _, wall, err := signInAll(ctx, "http://"+tg.addr, userIDs(b.o.users, b.o.sessions), signInConcurrency)
	if err != nil {
		return err
	}
	b.say("memory: %d sign-ins took %s; one request per session, then %s of load over all of them",
		b.o.sessions, wall.Round(100*time.Millisecond), memoryLoad)
	if err := touchAll(tg.addr, cookies); err != nil {
		return err
	}
	res, err := drive(ctx, tg.addr, scripts(tg.addr, b.o.connections, len(cookies), cookieOf(cookies)), memoryLoad)
	if err != nil {
		return err
	}
	if res.errors > 0 {
		return fmt.Errorf("memory: %d errors under load, first: %s", res.errors, res.firstErr)
	}
	r.sessions, r.sessWall, r.sessConc = b.o.sessions, wall, signInConcurrency
	r.memAfter, err = tg.memory()
	return err
}

// lookupStatements sends one request with each (not yet cached) session
// and returns the database statements per session lookup.
func lookupStatements(tg *proc, cookies []string) (float64, error) {
	st0, _, err := tg.counters()
	if err != nil {
		return 0, err
	}
	if err := touchAll(tg.addr, cookies); err != nil {
		return 0, err
	}
	st1, _, err := tg.counters()
	return (st1 - st0) / float64(len(cookies)), err
}

// touchAll sends one proxied request with each cookie.
func touchAll(addr string, cookies []string) error {
	next := make(chan string)
	errc := make(chan error, signInConcurrency)
	var wg sync.WaitGroup
	for w := 0; w < signInConcurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &rawConn{addr: addr}
			defer c.close()
			for cookie := range next {
				if err := c.roundTrip(chatRequest(addr, "Cookie", sessionCookie+"="+cookie)); err != nil {
					select {
					case errc <- err:
					default:
					}
				}
			}
		}()
	}
	for _, c := range cookies {
		next <- c
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errc:
		return fmt.Errorf("request with a new session: %w", err)
	default:
		return nil
	}
}

// stormRun starts a teamgate on a fresh PostgreSQL schema and signs in
// --storm users at once, none of whom (nor any team) exists yet. A failure
// is reported in the table rather than ending the run.
func (b *bench) stormRun(ctx context.Context, r *report, bin string, up *proc) {
	base := b.o.db
	if base == "" {
		base = b.getenv("TEAMGATE_TEST_POSTGRES_URL")
	}
	if base == "" {
		r.stormNote = "skipped: no PostgreSQL (give --db or TEAMGATE_TEST_POSTGRES_URL)"
		return
	}
	tg, err := b.teamgate(ctx, bin, "teamgate-storm", base, true, up)
	if err != nil {
		r.stormNote = "failed to start: " + err.Error()
		return
	}
	defer tg.stop()
	b.say("sign-in storm: %d concurrent first sign-ins", b.o.storm)
	_, took, wall, err := signInAll(ctx, "http://"+tg.addr, userIDs(0, b.o.storm), b.o.storm)
	if err != nil {
		r.stormNote = err.Error()
		return
	}
	r.storm, r.stormWall = took, wall
}
