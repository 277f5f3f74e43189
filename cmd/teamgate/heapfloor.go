package main

import (
	"context"
	"runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"sync/atomic"
)

// minHeapHeadroom is the least the heap may grow between two garbage
// collections.
//
// With the runtime's default (GOGC=100) the heap may grow by as much as is
// live before the next collection, and each collection marks everything
// live plus every goroutine's stack. teamgate's live heap is small (3 to 4
// MB under load with 100 sessions: templates, the router, the copy
// buffers, the caches), while a proxied request leaves about 12 KB of
// garbage, nearly all of it net/http's; so at 13,000 requests per second
// the runtime collected some 45 times a second, and collecting cost more
// per request than teamgate's own handler code (docs/performance.md). A
// bare proxy's 1 MB heap sits under the runtime's 4 MB minimum goal: it
// marks a third as much per byte allocated. A floor of 16 MiB between
// collections costs at most 16 MiB of memory, and only while the live heap
// is below 16 MiB: from there on GOGC stays at 100 and nothing changes.
const minHeapHeadroom = 16 << 20

// heapFloor raises GOGC while the live heap is small, so that collections
// are at least minHeapHeadroom apart. It looks at the live heap after every
// collection (a cleanup on an object that each collection frees), so the
// next heap goal already follows a heap that grew.
type heapFloor struct {
	stopped atomic.Bool
	// percent is the GOGC last set. One afterGC runs at a time (each arms
	// the next as its last step), so these need no lock.
	percent int
	sample  []rtmetrics.Sample
}

// gcSentinel is garbage by design: its cleanup runs after the collection
// that frees it. It is large enough not to share a tiny-allocation block,
// which could keep it alive for several collections.
type gcSentinel struct{ _ [2]*int }

// keepHeapHeadroom starts the floor until ctx ends. It does nothing when
// the GOGC environment variable is set: the operator's choice stands.
func keepHeapHeadroom(ctx context.Context, getenv env) {
	if v, ok := getenv("GOGC"); ok && v != "" {
		return
	}
	f := &heapFloor{percent: 100, sample: []rtmetrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	f.arm()
	context.AfterFunc(ctx, func() { f.stopped.Store(true) })
}

func (f *heapFloor) arm() {
	runtime.AddCleanup(new(gcSentinel), func(f *heapFloor) { f.afterGC() }, f)
}

func (f *heapFloor) afterGC() {
	if f.stopped.Load() {
		if f.percent != 100 {
			debug.SetGCPercent(100)
		}
		return
	}
	rtmetrics.Read(f.sample)
	if f.sample[0].Value.Kind() == rtmetrics.KindUint64 {
		if want := gcPercentFor(f.sample[0].Value.Uint64()); settle(f.percent, want) {
			debug.SetGCPercent(want)
			f.percent = want
		}
	}
	f.arm()
}

// settle reports whether GOGC should move from current to want: back to
// 100 at once, otherwise only by more than a fifth, so that a heap that
// breathes does not change it at every collection.
func settle(current, want int) bool {
	if want == 100 {
		return current != 100
	}
	d := want - current
	return d*5 > current || -d*5 > current
}

// gcPercentFor is the GOGC that lets the heap grow by minHeapHeadroom
// beyond live bytes, and never less than the default 100.
func gcPercentFor(live uint64) int {
	if live == 0 { // no collection yet
		return 100
	}
	return max(int(min(minHeapHeadroom*100/live, 10000)), 100)
}
