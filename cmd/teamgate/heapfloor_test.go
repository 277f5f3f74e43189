package main

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"testing"
	"time"
)

func TestGCPercentFor(t *testing.T) {
	for _, tt := range []struct {
		live uint64
		want int
	}{
		{0, 100},       // before the first collection
		{1, 10000},     // bounded
		{4 << 20, 400}, // 16 MiB of headroom over 4 MiB
		{minHeapHeadroom / 2, 200},
		{minHeapHeadroom - 1, 100}, // rounds down, never below 100
		{minHeapHeadroom, 100},     // from here on, the default
		{10 * minHeapHeadroom, 100},
		{minHeapHeadroom * 100, 100},
		{minHeapHeadroom * 2 / 3, 150},
	} {
		if got := gcPercentFor(tt.live); got != tt.want {
			t.Errorf("gcPercentFor(%d) = %d, want %d", tt.live, got, tt.want)
		}
	}
}

func TestSettle(t *testing.T) {
	for _, tt := range []struct {
		current, want int
		move          bool
	}{
		{100, 100, false},
		{100, 110, false}, // near the edge of the floor: stay at the default
		{100, 400, true},
		{400, 100, true}, // back to the default at once
		{400, 440, false},
		{400, 500, true},
		{400, 300, true},
		{400, 350, false},
	} {
		if got := settle(tt.current, tt.want); got != tt.move {
			t.Errorf("settle(%d, %d) = %v, want %v", tt.current, tt.want, got, tt.move)
		}
	}
}

func gogc(t *testing.T) int {
	t.Helper()
	s := []rtmetrics.Sample{{Name: "/gc/gogc:percent"}}
	rtmetrics.Read(s)
	return int(s[0].Value.Uint64())
}

// With a small heap the floor raises GOGC after a collection, and puts it
// back when it stops; a GOGC from the environment is left alone.
func TestKeepHeapHeadroom(t *testing.T) {
	if v, ok := os.LookupEnv("GOGC"); ok || gogc(t) != 100 {
		t.Skipf("GOGC is not the default here (%q)", v)
	}
	defer debug.SetGCPercent(100)

	ctx, cancel := context.WithCancel(context.Background())
	keepHeapHeadroom(ctx, mapEnv(map[string]string{"GOGC": "100"}))
	runtime.GC()
	runtime.GC()
	if got := gogc(t); got != 100 {
		t.Fatalf("GOGC set in the environment, yet the floor set %d", got)
	}

	keepHeapHeadroom(ctx, mapEnv(nil))
	waitFor(t, "GOGC above 100 with this test's small heap", func() bool { return gogc(t) > 100 })
	cancel()
	waitFor(t, "GOGC back to 100 after the floor stopped", func() bool { return gogc(t) == 100 })
}

// waitFor collects until cond holds (the floor acts after collections).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
}
