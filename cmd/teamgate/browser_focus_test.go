package main

import (
	"fmt"
	"strings"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// focusedElement is what the browser computes for document.activeElement.
type focusedElement struct {
	Desc         string  `json:"desc"`
	Matches      bool    `json:"matches"` // it is the element tabUntil looks for
	FocusVisible bool    `json:"focusVisible"`
	OutlineStyle string  `json:"outlineStyle"`
	OutlineWidth string  `json:"outlineWidth"`
	BoxShadow    string  `json:"boxShadow"`
	Left         float64 `json:"left"`
	Top          float64 `json:"top"`
	Width        float64 `json:"width"`
	Height       float64 `json:"height"`
	ViewWidth    float64 `json:"viewWidth"`
	ViewHeight   float64 `json:"viewHeight"`
}

const focusedElementJS = `(() => {
  const e = document.activeElement;
  if (!e || e === document.body || e === document.documentElement) return {desc: "nothing"};
  const s = getComputedStyle(e), r = e.getBoundingClientRect();
  const desc = e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + " " + JSON.stringify((e.innerText || e.value || "").trim().slice(0, 40));
  return {desc, matches: e.matches(%q), focusVisible: e.matches(":focus-visible"),
    outlineStyle: s.outlineStyle, outlineWidth: s.outlineWidth, boxShadow: s.boxShadow,
    left: r.left, top: r.top, width: r.width, height: r.height,
    viewWidth: window.innerWidth, viewHeight: window.innerHeight};
})()`

// tabUntil presses Tab from the top of the current page until the element
// that target (a CSS selector) selects has the focus, and fails unless
// every element on the way shows a keyboard focus indicator the browser
// really draws (outline-style not none with a width, or a box-shadow) and
// is on screen (the skip link moves into view when focused). Focus
// emulation makes the headless tab behave as the focused window, so the
// result does not depend on which window the browser thinks is in front.
func (b *tab) tabUntil(target string, maxTabs int) {
	b.t.Helper()
	if _, err := chromedp.Call(b.ctx, emulation.SetFocusEmulationEnabled, emulation.SetFocusEmulationEnabledParams{Enabled: true}); err != nil {
		b.t.Fatalf("enable focus emulation: %v", err)
	}
	defer func() {
		_ = chromedp.Do(b.ctx, chromedp.Evaluate[chromedp.Void](`document.activeElement && document.activeElement.blur()`))
		_, _ = chromedp.Call(b.ctx, emulation.SetFocusEmulationEnabled, emulation.SetFocusEmulationEnabledParams{Enabled: false})
	}()
	var path []string
	for range maxTabs {
		b.do("press Tab", chromedp.KeyEvent(kb.Tab))
		el, err := chromedp.Run(b.ctx, chromedp.Evaluate[focusedElement](fmt.Sprintf(focusedElementJS, target)))
		if err != nil {
			b.t.Fatalf("read the focused element: %v", err)
		}
		path = append(path, el.Desc)
		if el.Desc == "nothing" {
			b.t.Fatalf("Tab moved the focus to nothing (after %s)", strings.Join(path, " → "))
		}
		outline := el.OutlineStyle != "none" && el.OutlineStyle != "" && el.OutlineWidth != "0px"
		ring := el.BoxShadow != "" && el.BoxShadow != "none"
		if !el.FocusVisible || !(outline || ring) {
			b.t.Errorf("focused %s shows no focus indicator: :focus-visible %v, outline %s %s, box-shadow %s",
				el.Desc, el.FocusVisible, el.OutlineStyle, el.OutlineWidth, el.BoxShadow)
		}
		if el.Width <= 0 || el.Height <= 0 || el.Left < 0 || el.Top < 0 || el.Left+el.Width > el.ViewWidth || el.Top+el.Height > el.ViewHeight {
			b.t.Errorf("focused %s is not on screen: %gx%g at (%g, %g) in a %gx%g viewport",
				el.Desc, el.Width, el.Height, el.Left, el.Top, el.ViewWidth, el.ViewHeight)
		}
		if el.Matches {
			return
		}
	}
	b.t.Errorf("%d presses of Tab did not reach %s: %s", maxTabs, target, strings.Join(path, " → "))
}
