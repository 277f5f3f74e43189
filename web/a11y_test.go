package web

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Accessibility checks that run without a browser: the stylesheet's
// colours meet WCAG 2.x contrast in both colour schemes, every interactive
// element has a visible keyboard focus style, and every golden page is
// labelled, titled, zoomable and has one h1. Each checker returns the
// problems it finds, so that TestA11yCheckersCatchRegressions can prove
// that it fails on a broken stylesheet or page.

const stylesheetPath = "static/style.css"

func readStylesheet(t *testing.T) []cssRule {
	t.Helper()
	src, err := os.ReadFile(stylesheetPath)
	if err != nil {
		t.Fatal(err)
	}
	rules, err := parseCSS(string(src))
	if err != nil {
		t.Fatalf("parse %s: %v", stylesheetPath, err)
	}
	return rules
}

// ---- A small CSS reader: rules at the top level and inside @media. ----

type cssDecl struct{ prop, value string }

type cssRule struct {
	media     string // "" at the top level, else the @media condition
	selectors []string
	decls     []cssDecl
}

var spaces = regexp.MustCompile(`\s+`)

func normSpace(s string) string { return spaces.ReplaceAllString(strings.TrimSpace(s), " ") }

func parseCSS(src string) ([]cssRule, error) {
	for {
		i := strings.Index(src, "/*")
		if i < 0 {
			break
		}
		j := strings.Index(src[i+2:], "*/")
		if j < 0 {
			return nil, fmt.Errorf("unterminated comment")
		}
		src = src[:i] + " " + src[i+2+j+2:]
	}
	return parseCSSBlock(src, "")
}

func parseCSSBlock(src, media string) ([]cssRule, error) {
	var rules []cssRule
	for {
		open := strings.IndexByte(src, '{')
		if open < 0 {
			if strings.TrimSpace(src) != "" {
				return nil, fmt.Errorf("text after the last rule: %q", strings.TrimSpace(src))
			}
			return rules, nil
		}
		prelude := normSpace(src[:open])
		depth, end := 0, -1
		for i := open; i < len(src) && end < 0; i++ {
			switch src[i] {
			case '{':
				depth++
			case '}':
				depth--
				if depth == 0 {
					end = i
				}
			}
		}
		if end < 0 {
			return nil, fmt.Errorf("unbalanced braces after %q", prelude)
		}
		body := src[open+1 : end]
		src = src[end+1:]
		switch {
		case strings.HasPrefix(prelude, "@media"):
			if media != "" {
				return nil, fmt.Errorf("nested @media in %q", media)
			}
			inner, err := parseCSSBlock(body, normSpace(strings.TrimPrefix(prelude, "@media")))
			if err != nil {
				return nil, err
			}
			rules = append(rules, inner...)
		case strings.HasPrefix(prelude, "@"):
			return nil, fmt.Errorf("at-rule %q is not understood by this test; teach it", prelude)
		case strings.ContainsRune(body, '{'):
			return nil, fmt.Errorf("nested rules in %q are not understood by this test; teach it", prelude)
		default:
			r := cssRule{media: media}
			for _, s := range splitTop(prelude, ',') {
				r.selectors = append(r.selectors, normSpace(s))
			}
			for _, d := range splitTop(body, ';') {
				if strings.TrimSpace(d) == "" {
					continue
				}
				p, v, ok := strings.Cut(d, ":")
				if !ok {
					return nil, fmt.Errorf("declaration without a colon in %q: %q", prelude, d)
				}
				r.decls = append(r.decls, cssDecl{prop: strings.ToLower(strings.TrimSpace(p)), value: normSpace(v)})
			}
			rules = append(rules, r)
		}
	}
}

// splitTop splits s at sep outside parentheses, brackets and quotes.
func splitTop(s string, sep byte) []string {
	var out []string
	depth, quote, start := 0, byte(0), 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '(' || c == '[':
			depth++
		case c == ')' || c == ']':
			depth--
		case c == sep && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// ---- Colour schemes and colours. ----

type colourScheme struct {
	name string
	vars map[string]string
}

// colourSchemes returns the light scheme (the top-level :root custom
// properties) and the dark one (light overridden by :root inside
// @media (prefers-color-scheme: dark)).
func colourSchemes(rules []cssRule) []colourScheme {
	light, dark := map[string]string{}, map[string]string{}
	for _, dst := range []struct {
		vars map[string]string
		dark bool
	}{{light, false}, {dark, false}, {dark, true}} {
		for _, r := range rules {
			inDark := strings.Contains(strings.ReplaceAll(r.media, " ", ""), "prefers-color-scheme:dark")
			if (r.media != "" && !inDark) || inDark != dst.dark || !hasSelector(r, ":root") {
				continue
			}
			for _, d := range r.decls {
				if strings.HasPrefix(d.prop, "--") {
					dst.vars[d.prop] = d.value
				}
			}
		}
	}
	return []colourScheme{{"light", light}, {"dark", dark}}
}

func hasSelector(r cssRule, sel string) bool {
	for _, s := range r.selectors {
		if s == sel {
			return true
		}
	}
	return false
}

// resolveVars replaces var(--x) and var(--x, fallback) with their values.
func resolveVars(value string, vars map[string]string) (string, error) {
	for range 20 {
		i := strings.Index(value, "var(")
		if i < 0 {
			return value, nil
		}
		depth, end := 0, -1
		for j := i + 3; j < len(value) && end < 0; j++ {
			switch value[j] {
			case '(':
				depth++
			case ')':
				depth--
				if depth == 0 {
					end = j
				}
			}
		}
		if end < 0 {
			return "", fmt.Errorf("unbalanced var() in %q", value)
		}
		name, fallback, hasFallback := strings.Cut(value[i+4:end], ",")
		v, ok := vars[strings.TrimSpace(name)]
		switch {
		case ok:
		case hasFallback:
			v = strings.TrimSpace(fallback)
		default:
			return "", fmt.Errorf("%s is not defined", strings.TrimSpace(name))
		}
		value = value[:i] + v + value[end+1:]
	}
	return "", fmt.Errorf("var() nested too deeply in %q", value)
}

type rgb struct {
	r, g, b     float64 // 0..255
	transparent bool
}

func (c rgb) String() string {
	if c.transparent {
		return "transparent"
	}
	return fmt.Sprintf("#%02x%02x%02x", int(c.r), int(c.g), int(c.b))
}

var namedColours = map[string]rgb{
	"white": {r: 255, g: 255, b: 255}, "black": {}, "transparent": {transparent: true},
}

// parseColour reads one colour token: #rgb, #rrggbb, rgb(r, g, b), or a
// few names. ok is false for a token that is not a colour; err is set for
// a colour this test cannot judge (so the test is taught rather than fooled).
func parseColour(tok string) (c rgb, ok bool, err error) {
	tok = strings.ToLower(strings.TrimSpace(tok))
	if c, ok := namedColours[tok]; ok {
		return c, true, nil
	}
	switch {
	case strings.HasPrefix(tok, "#"):
		h := tok[1:]
		if len(h) == 3 {
			h = string([]byte{h[0], h[0], h[1], h[1], h[2], h[2]})
		}
		if len(h) != 6 {
			return c, true, fmt.Errorf("colour %q: only opaque #rgb and #rrggbb are understood", tok)
		}
		n, perr := strconv.ParseUint(h, 16, 32)
		if perr != nil {
			return c, true, fmt.Errorf("colour %q: %v", tok, perr)
		}
		return rgb{r: float64(n >> 16 & 0xff), g: float64(n >> 8 & 0xff), b: float64(n & 0xff)}, true, nil
	case strings.HasPrefix(tok, "rgb(") && strings.HasSuffix(tok, ")"):
		parts := strings.FieldsFunc(tok[4:len(tok)-1], func(r rune) bool { return r == ',' || r == ' ' })
		if len(parts) != 3 {
			return c, true, fmt.Errorf("colour %q: only opaque rgb(r, g, b) is understood", tok)
		}
		var v [3]float64
		for i, p := range parts {
			f, perr := strconv.ParseFloat(p, 64)
			if perr != nil {
				return c, true, fmt.Errorf("colour %q: %v", tok, perr)
			}
			v[i] = f
		}
		return rgb{r: v[0], g: v[1], b: v[2]}, true, nil
	case strings.HasPrefix(tok, "rgba(") || strings.HasPrefix(tok, "hsl") || strings.HasPrefix(tok, "oklch(") ||
		strings.HasPrefix(tok, "color-mix(") || tok == "currentcolor":
		return c, true, fmt.Errorf("colour %q is not understood by this test; teach it", tok)
	}
	return c, false, nil
}

// colourIn finds the one colour in a resolved declaration value (for
// shorthands such as `border: 1px solid #ccc`).
func colourIn(value string) (c rgb, found bool, err error) {
	for _, tok := range splitTop(value, ' ') {
		cc, ok, err := parseColour(tok)
		if err != nil {
			return c, true, err
		}
		if ok {
			if found {
				return c, true, fmt.Errorf("more than one colour in %q", value)
			}
			c, found = cc, true
		}
	}
	return c, found, nil
}

func luminance(c rgb) float64 {
	lin := func(v float64) float64 {
		v /= 255
		if v <= 0.04045 {
			return v / 12.92
		}
		return math.Pow((v+0.055)/1.055, 2.4)
	}
	return 0.2126*lin(c.r) + 0.7152*lin(c.g) + 0.0722*lin(c.b)
}

// contrastRatio is the WCAG 2.x contrast ratio, 1 to 21.
func contrastRatio(a, b rgb) float64 {
	la, lb := luminance(a), luminance(b)
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

// ---- Contrast. ----

// cssRef names one declaration: the property prop of the rule, in media,
// whose selector list includes sel (the last such rule wins, as in the
// cascade for equal specificity).
type cssRef struct{ media, sel, prop string }

func at(sel, prop string) cssRef { return cssRef{sel: sel, prop: prop} }

const phoneMedia = "(max-width: 40rem)"

func (r cssRef) String() string {
	s := fmt.Sprintf("%s of `%s`", r.prop, r.sel)
	if r.media != "" {
		s += " in @media " + r.media
	}
	return s
}

const (
	minText  = 4.5 // WCAG 1.4.3, normal text
	minLarge = 3.0 // WCAG 1.4.3, large or bold headings
	minUI    = 3.0 // WCAG 1.4.11, component boundaries and focus indicators
)

type contrastPair struct {
	what   string
	fg, bg cssRef
	min    float64
}

// contrastPairs lists every foreground the pages draw and each background
// it is drawn on, read from the stylesheet's selectors and from where the
// templates use them. Text with no colour of its own (body text, headings,
// notices) takes body's colour; a transparent background shows the card.
var (
	pageBG = at("body", "background")
	cardBG = at(".card", "background")
	rowBG  = at("tbody tr:nth-child(even)", "background") // zebra rows inside cards
	bodyFG = at("body", "color")

	contrastPairs = []contrastPair{
		{"body text on the page", bodyFG, pageBG, minText},
		{"body text on a card", bodyFG, cardBG, minText},
		{"body text in an even table row", bodyFG, rowBG, minText},
		{"h1–h3 headings (large or bold) on a card", bodyFG, cardBG, minLarge},
		{"links in the top bar, on the page", at("a", "color"), pageBG, minText},
		{"links on a card", at("a", "color"), cardBG, minText},
		{"links in an even table row", at("a", "color"), rowBG, minText},
		{"skip link when focused", at("a", "color"), at(".skip:focus", "background"), minText},
		{"'signed in as' line on the page", at(".who", "color"), pageBG, minText},
		{"footer with the request id, on the page", at("footer.meta", "color"), pageBG, minText},
		{"brand line (small caps, not large) on a card", at(".brand", "color"), cardBG, minText},
		{"hints, error codes and ids on a card", at(".hint", "color"), cardBG, minText},
		{"hints, error codes and ids in an even table row", at(".hint", "color"), rowBG, minText},
		{"table column headings on a card", at("thead th", "color"), cardBG, minText},
		{"pager status on a card", at(".pager .status", "color"), cardBG, minText},
		{"phone row labels (rows show the card)", cssRef{phoneMedia, ".stack [data-label]::before", "color"}, cardBG, minText},
		{"button text", at("button", "color"), at("button", "background"), minText},
		{"button boundary against the card", at("button", "border"), cardBG, minUI},
		{"secondary button text on a card", at("button.secondary", "color"), cardBG, minText},
		{"remove-member button text on a card", at("button.danger", "color"), cardBG, minText},
		{"remove-member button text in an even row", at("button.danger", "color"), rowBG, minText},
		{"remove-member button boundary on a card", at("button.danger", "border-color"), cardBG, minUI},
		{"remove-member button boundary in an even row", at("button.danger", "border-color"), rowBG, minUI},
		{"text in form fields", at("select", "color"), at("select", "background"), minText},
		{"form field boundary against the card", at("select", "border"), cardBG, minUI},
		{"plain badge", at(".badge", "color"), at(".badge", "background"), minText},
		{"ok badge", at(".badge.ok", "color"), at(".badge.ok", "background"), minText},
		{"failed badge", at(".badge.bad", "color"), at(".badge.bad", "background"), minText},
		{"plain notice", bodyFG, at(".notice", "background"), minText},
		{"ok notice", at(".notice.ok", "color"), at(".notice.ok", "background"), minText},
		{"error notice", at(".notice.bad", "color"), at(".notice.bad", "background"), minText},
		{"'show all' disclosure on a card", at("details summary", "color"), cardBG, minText},
		{"'show all' disclosure in an even row", at("details summary", "color"), rowBG, minText},
		{"focus outline on the page", at(":focus-visible", "outline"), pageBG, minUI},
		{"focus outline on a card", at(":focus-visible", "outline"), cardBG, minUI},
		{"focus outline in an even row", at(":focus-visible", "outline"), rowBG, minUI},
	}

	// Colour declarations no pair needs, with the reason.
	contrastExempt = map[cssRef]string{
		at(".card", "border"):                                  "decorative edge; WCAG 1.4.11 covers UI components and meaningful graphics only",
		at("th", "border-bottom"):                              "decorative row separator",
		at(".subnav", "border-bottom"):                         "decorative separator under the admin sub-navigation",
		{phoneMedia, ".stack tr", "border-bottom"}:             "decorative separator between phone row cards",
		at("button.secondary", "background"):                   "transparent: shows the card, which the pairs use",
		at("button.danger", "background"):                      "transparent: shows the card or the row, which the pairs use",
		{phoneMedia, "tbody tr:nth-child(even)", "background"}: "transparent on a phone: rows show the card, which the pairs use",
	}
)

// lookup returns the rule index and value of ref.
func lookup(rules []cssRule, ref cssRef) (int, string, bool) {
	idx, val := -1, ""
	for i, r := range rules {
		if r.media != ref.media || !hasSelector(r, ref.sel) {
			continue
		}
		for _, d := range r.decls {
			if d.prop == ref.prop {
				idx, val = i, d.value
			}
		}
	}
	return idx, val, idx >= 0
}

func contrastProblems(rules []cssRule) []string {
	var problems []string
	type declKey struct {
		rule int
		prop string
	}
	covered := map[declKey]bool{}
	colourOf := func(ref cssRef, s colourScheme) (rgb, error) {
		i, v, ok := lookup(rules, ref)
		if !ok {
			return rgb{}, fmt.Errorf("the stylesheet has no %s (update the pair list)", ref)
		}
		covered[declKey{i, ref.prop}] = true
		resolved, err := resolveVars(v, s.vars)
		if err != nil {
			return rgb{}, fmt.Errorf("%s: %v", ref, err)
		}
		c, found, err := colourIn(resolved)
		switch {
		case err != nil:
			return rgb{}, fmt.Errorf("%s: %v", ref, err)
		case !found:
			return rgb{}, fmt.Errorf("%s = %q has no colour", ref, v)
		case c.transparent:
			return rgb{}, fmt.Errorf("%s is transparent; name the background behind it", ref)
		}
		return c, nil
	}
	for _, s := range colourSchemes(rules) {
		for _, p := range contrastPairs {
			fg, err := colourOf(p.fg, s)
			if err == nil {
				var bg rgb
				bg, err = colourOf(p.bg, s)
				if err == nil {
					if r := contrastRatio(fg, bg); r < p.min {
						problems = append(problems, fmt.Sprintf("%s scheme: %s: %s on %s is %.2f:1, want at least %.1f:1 (%s is %s, %s is %s)",
							s.name, p.what, fg, bg, r, p.min, p.fg, fg, p.bg, bg))
					}
				}
			}
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s scheme: %s: %v", s.name, p.what, err))
			}
		}
	}
	// Every colour in the stylesheet is either checked or exempt with a reason.
	exempt := map[declKey]bool{}
	for ref := range contrastExempt {
		if i, _, ok := lookup(rules, ref); ok {
			exempt[declKey{i, ref.prop}] = true
		} else {
			problems = append(problems, fmt.Sprintf("exemption for %s matches nothing in the stylesheet", ref))
		}
	}
	light := colourSchemes(rules)[0]
	for i, r := range rules {
		for _, d := range r.decls {
			if strings.HasPrefix(d.prop, "--") || covered[declKey{i, d.prop}] || exempt[declKey{i, d.prop}] {
				continue
			}
			resolved, err := resolveVars(d.value, light.vars)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s { %s: %s }: %v", strings.Join(r.selectors, ", "), d.prop, d.value, err))
				continue
			}
			if _, found, _ := colourIn(resolved); found {
				problems = append(problems, fmt.Sprintf("%s%s { %s: %s } sets a colour that no contrast pair checks: add a pair (or an exemption with a reason)",
					mediaPrefix(r.media), strings.Join(r.selectors, ", "), d.prop, d.value))
			}
		}
	}
	return problems
}

func mediaPrefix(media string) string {
	if media == "" {
		return ""
	}
	return "@media " + media + " "
}

func TestStylesheetContrast(t *testing.T) {
	rules := readStylesheet(t)
	var dark bool
	for _, r := range rules {
		dark = dark || (hasSelector(r, ":root") && strings.Contains(r.media, "prefers-color-scheme: dark"))
	}
	if s := colourSchemes(rules); len(s[0].vars) == 0 || !dark {
		t.Fatalf("found %d light custom properties and dark :root %v; the :root blocks moved?", len(s[0].vars), dark)
	}
	for _, p := range contrastProblems(rules) {
		t.Error(p)
	}
}

// ---- Keyboard focus. ----

var interactiveElements = []string{"a", "button", "input", "select", "textarea", "summary"}

// focusSubject returns the element a selector's focus rule applies to
// generally ("" for every element), or ok=false when the selector is not a
// focus rule or is narrowed by a class, attribute or other pseudo-class.
func focusSubject(sel string) (elem string, ok bool) {
	parts := strings.FieldsFunc(sel, func(r rune) bool { return r == ' ' || r == '>' || r == '+' || r == '~' })
	if len(parts) == 0 {
		return "", false
	}
	last := parts[len(parts)-1]
	rest, n := last, 0
	for _, pseudo := range []string{":focus-visible", ":focus"} {
		if strings.HasSuffix(rest, pseudo) {
			rest, n = strings.TrimSuffix(rest, pseudo), n+1
		}
	}
	if n == 0 || strings.ContainsAny(rest, ".#[:") {
		return "", false
	}
	if rest == "*" {
		rest = ""
	}
	return rest, true
}

// outlineVisible reports whether a rule draws a focus indicator: an
// outline with a style other than none and a width of at least 2px, or a
// box-shadow.
func outlineVisible(r cssRule) bool {
	style, width := "", "medium"
	shadow := false
	for _, d := range r.decls {
		switch d.prop {
		case "outline":
			style, width = "", "medium"
			for _, tok := range strings.Fields(d.value) {
				switch {
				case isOutlineStyle(tok):
					style = tok
				case tok == "0" || strings.HasSuffix(tok, "px") || tok == "thin" || tok == "medium" || tok == "thick":
					width = tok
				}
			}
		case "outline-style":
			style = d.value
		case "outline-width":
			width = d.value
		case "box-shadow":
			shadow = d.value != "none"
		}
	}
	if shadow {
		return true
	}
	if style == "" || style == "none" || style == "hidden" {
		return false
	}
	switch width {
	case "thin", "0":
		return false
	case "medium", "thick":
		return true
	}
	px, err := strconv.ParseFloat(strings.TrimSuffix(width, "px"), 64)
	return err == nil && px >= 2
}

func isOutlineStyle(tok string) bool {
	switch tok {
	case "none", "hidden", "auto", "solid", "dotted", "dashed", "double", "groove", "ridge", "inset", "outset":
		return true
	}
	return false
}

// removesOutline reports whether a rule turns the outline off.
func removesOutline(r cssRule) bool {
	for _, d := range r.decls {
		switch d.prop {
		case "outline":
			if d.value == "none" || d.value == "0" || strings.Contains(" "+d.value+" ", " none ") {
				return true
			}
		case "outline-style":
			if d.value == "none" || d.value == "hidden" {
				return true
			}
		case "outline-width":
			if d.value == "0" || d.value == "0px" {
				return true
			}
		}
	}
	return false
}

func focusProblems(rules []cssRule) []string {
	var problems []string
	for _, el := range interactiveElements {
		var found bool
		for _, r := range rules {
			if r.media != "" || !outlineVisible(r) {
				continue
			}
			for _, s := range r.selectors {
				if subject, ok := focusSubject(s); ok && (subject == "" || subject == el) {
					found = true
				}
			}
		}
		if !found {
			problems = append(problems, fmt.Sprintf("<%s> has no visible :focus-visible (or :focus) style: want an outline of at least 2px, or a box-shadow", el))
		}
	}
	for _, r := range rules {
		if removesOutline(r) && !outlineVisible(r) {
			problems = append(problems, fmt.Sprintf("%s%s removes the outline without a replacement (a box-shadow)",
				mediaPrefix(r.media), strings.Join(r.selectors, ", ")))
		}
	}
	// The skip link hides off-screen until it has keyboard focus.
	if _, left, ok := lookup(rules, at(".skip:focus", "left")); !ok || strings.HasPrefix(left, "-") {
		problems = append(problems, "the skip link does not come on screen when focused (.skip:focus { left: … })")
	}
	return problems
}

func TestStylesheetFocusStyles(t *testing.T) {
	for _, p := range focusProblems(readStylesheet(t)) {
		t.Error(p)
	}
}

// ---- Golden pages. ----

var (
	tagRE    = regexp.MustCompile(`<(/?)([a-zA-Z][a-zA-Z0-9]*)((?:\s+[^\s=>/"]+(?:="[^"]*")?)*)\s*/?>`)
	attrRE   = regexp.MustCompile(`([^\s=]+)(?:="([^"]*)")?`)
	anyTagRE = regexp.MustCompile(`<[^>]*>`)
)

type htmlTag struct {
	name  string
	close bool
	attrs map[string]string // present attributes; "" for valueless ones
	text  string            // for <title>, <h1>, <button>, <a>, <label>: their text
}

func (t htmlTag) has(a string) bool { _, ok := t.attrs[a]; return ok }

// scanTags reads the tags of a page rendered by html/template (attributes
// always double-quoted, < and > in values escaped) and fails on a tag it
// cannot read, so that the checks cannot be fooled by markup they skip.
func scanTags(page string) ([]htmlTag, error) {
	src := page
	if i := strings.Index(strings.ToLower(src), "<!doctype html>"); i == 0 {
		src = src[len("<!doctype html>"):]
	} else {
		return nil, fmt.Errorf("page does not start with <!doctype html>")
	}
	var tags []htmlTag
	locs := tagRE.FindAllStringSubmatchIndex(src, -1)
	if n := strings.Count(src, "<"); n != len(locs) {
		return nil, fmt.Errorf("read %d tags but the page has %d '<'; teach scanTags", len(locs), n)
	}
	textUntilClose := func(name string, from int) string {
		end := strings.Index(src[from:], "</"+name+">")
		if end < 0 {
			return ""
		}
		inner := anyTagRE.ReplaceAllString(src[from:from+end], " ")
		return normSpace(inner)
	}
	for _, l := range locs {
		t := htmlTag{close: src[l[2]:l[3]] == "/", name: strings.ToLower(src[l[4]:l[5]]), attrs: map[string]string{}}
		for _, a := range attrRE.FindAllStringSubmatch(src[l[6]:l[7]], -1) {
			t.attrs[strings.ToLower(a[1])] = a[2]
		}
		if !t.close {
			switch t.name {
			case "title", "h1", "button", "a", "label":
				t.text = textUntilClose(t.name, l[1])
			}
		}
		tags = append(tags, t)
	}
	return tags, nil
}

func pageProblems(page string) []string {
	tags, err := scanTags(page)
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	ids, labelFor := map[string]int{}, map[string]bool{}
	count := map[string]int{}
	for _, t := range tags {
		if t.close {
			continue
		}
		count[t.name]++
		if id := t.attrs["id"]; id != "" {
			ids[id]++
		}
		if t.name == "label" && t.attrs["for"] != "" {
			labelFor[t.attrs["for"]] = true
		}
	}
	for id, n := range ids {
		if n > 1 {
			bad("id %q is used %d times", id, n)
		}
	}
	for f := range labelFor {
		if ids[f] == 0 {
			bad(`<label for=%q> names no element`, f)
		}
	}
	if count["h1"] != 1 {
		bad("page has %d <h1>, want exactly 1", count["h1"])
	}
	if count["title"] != 1 {
		bad("page has %d <title>, want 1", count["title"])
	}
	if count["main"] != 1 {
		bad("page has %d <main>, want 1", count["main"])
	}
	var viewport bool
	labelDepth := 0
	for _, t := range tags {
		if t.name == "label" {
			if t.close {
				labelDepth--
			} else {
				labelDepth++
			}
			continue
		}
		if t.close {
			continue
		}
		switch t.name {
		case "html":
			if strings.TrimSpace(t.attrs["lang"]) == "" {
				bad("<html> has no lang")
			}
		case "title", "h1":
			if t.text == "" {
				bad("<%s> is empty", t.name)
			}
		case "meta":
			if t.attrs["name"] == "viewport" {
				viewport = true
				c := strings.ReplaceAll(t.attrs["content"], " ", "")
				if !strings.Contains(c, "width=device-width") {
					bad("viewport %q lacks width=device-width", t.attrs["content"])
				}
				if strings.Contains(c, "user-scalable=no") || strings.Contains(c, "user-scalable=0") || strings.Contains(c, "maximum-scale=1") {
					bad("viewport %q stops people zooming", t.attrs["content"])
				}
			}
		case "img":
			if !t.has("alt") {
				bad("<img src=%q> has no alt", t.attrs["src"])
			}
		case "input", "select", "textarea":
			if t.name == "input" {
				switch t.attrs["type"] {
				case "hidden", "submit", "button", "reset", "image":
					continue
				}
			}
			labelled := strings.TrimSpace(t.attrs["aria-label"]) != "" || labelDepth > 0 ||
				(t.attrs["id"] != "" && labelFor[t.attrs["id"]])
			if by := t.attrs["aria-labelledby"]; by != "" {
				labelled = true
				for _, id := range strings.Fields(by) {
					if ids[id] == 0 {
						bad("<%s> aria-labelledby names missing id %q", t.name, id)
					}
				}
			}
			if !labelled {
				bad("<%s name=%q id=%q> has no <label for>, enclosing <label>, aria-label or aria-labelledby", t.name, t.attrs["name"], t.attrs["id"])
			}
		case "button", "a":
			if t.text == "" && strings.TrimSpace(t.attrs["aria-label"]) == "" {
				bad("<%s> has no accessible name (text or aria-label)", t.name)
			}
		}
	}
	if !viewport {
		bad(`page has no <meta name="viewport">`)
	}
	return problems
}

// TestGoldenPagesAccessible checks every golden file, as a browser would
// receive it.
func TestGoldenPagesAccessible(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.html"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < len(samplePages()) {
		t.Fatalf("found %d golden files, want at least one per sample page (%d)", len(files), len(samplePages()))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			page, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range pageProblems(string(page)) {
				t.Error(p)
			}
		})
	}
}

// ---- The checkers catch regressions. ----

func TestA11yCheckersCatchRegressions(t *testing.T) {
	src, err := os.ReadFile(stylesheetPath)
	if err != nil {
		t.Fatal(err)
	}
	css := string(src)
	mustParse := func(s string) []cssRule {
		t.Helper()
		rules, err := parseCSS(s)
		if err != nil {
			t.Fatal(err)
		}
		return rules
	}
	replace := func(old, new string) string {
		t.Helper()
		if !strings.Contains(css, old) {
			t.Fatalf("stylesheet no longer contains %q; update this test", old)
		}
		return strings.Replace(css, old, new, 1)
	}
	if p := contrastProblems(mustParse(css)); len(p) != 0 {
		t.Fatalf("the real stylesheet has contrast problems: %v", p)
	}
	if p := focusProblems(mustParse(css)); len(p) != 0 {
		t.Fatalf("the real stylesheet has focus problems: %v", p)
	}

	contrast := []struct{ name, css, want string }{
		{"grey hints in the dark scheme", replace("--muted: #b4b9c1;", "--muted: #5c6068;"), "dark scheme: hints"},
		{"pale focus outline in the light scheme", replace("--focus: #b3261e;", "--focus: #dcdcdc;"), "light scheme: focus outline"},
		{"a new colour nobody checks", css + "\n.new { color: #777777; }", "no contrast pair checks"},
		{"an undefined custom property", replace("a { color: var(--accent); }", "a { color: var(--link); }"), "--link is not defined"},
		{"a dropped rule", replace(".pager .status { color: var(--muted); }", ""), "has no color of `.pager .status`"},
	}
	for _, tc := range contrast {
		if p := strings.Join(contrastProblems(mustParse(tc.css)), "\n"); !strings.Contains(p, tc.want) {
			t.Errorf("contrast, %s: want a problem containing %q, got:\n%s", tc.name, tc.want, p)
		}
	}

	focusRule := ":focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }"
	focus := []struct{ name, css, want string }{
		{"no focus style", replace(focusRule, ""), "<summary> has no visible"},
		{"outline: none", replace(focusRule, ":focus-visible { outline: none; }"), "<a> has no visible"},
		{"focus style only on links", replace(focusRule, "a:focus-visible { outline: 3px solid var(--focus); }"), "<button> has no visible"},
		{"hairline outline", replace(focusRule, ":focus-visible { outline: 1px dotted var(--focus); }"), "<input> has no visible"},
		{"a later rule removes it", css + "\nbutton:focus { outline: 0; }", "button:focus removes the outline"},
		{"skip link stays hidden", replace(".skip:focus { left: 1rem;", ".skip:focus { left: -999rem;"), "skip link"},
	}
	for _, tc := range focus {
		if p := strings.Join(focusProblems(mustParse(tc.css)), "\n"); !strings.Contains(p, tc.want) {
			t.Errorf("focus, %s: want a problem containing %q, got:\n%s", tc.name, tc.want, p)
		}
	}
	// A box-shadow is an accepted replacement for the outline.
	if p := focusProblems(mustParse(replace(focusRule, ":focus-visible { outline: none; box-shadow: 0 0 0 3px var(--focus); }"))); len(p) != 0 {
		t.Errorf("focus ring as a box-shadow reported as a problem: %v", p)
	}

	good, err := os.ReadFile(filepath.Join("testdata", "admin_events.html"))
	if err != nil {
		t.Fatal(err)
	}
	page := string(good)
	if p := pageProblems(page); len(p) != 0 {
		t.Fatalf("admin_events.html has problems: %v", p)
	}
	edit := func(old, new string) string {
		t.Helper()
		if !strings.Contains(page, old) {
			t.Fatalf("admin_events.html no longer contains %q; update this test", old)
		}
		return strings.Replace(page, old, new, 1)
	}
	pages := []struct{ name, page, want string }{
		{"unlabelled input", edit(`<label for="user_id">User ID</label>`, ""), `<input name="user_id" id="user_id"> has no`},
		{"label pointing elsewhere", edit(`<label for="kind">`, `<label for="kinds">`), `<select name="kind" id="kind"> has no`},
		{"aria-label is enough", edit(`<label for="kind">Source</label>`+"\n"+`<select id="kind"`, `<select aria-label="Source" id="kind"`), ""},
		{"no lang", edit(`<html lang="en">`, `<html>`), "<html> has no lang"},
		{"no title", edit(`<title>`, `<meta name="x">`), "0 <title>"},
		{"no viewport", edit(`<meta name="viewport"`, `<meta name="theme"`), "no <meta name=\"viewport\">"},
		{"zoom disabled", edit(`initial-scale=1"`, `initial-scale=1, user-scalable=no"`), "stops people zooming"},
		{"two h1", edit(`</h1>`, `</h1><h1>More</h1>`), "2 <h1>"},
		{"image without alt", edit(`</h1>`, `</h1><img src="/x.png">`), `<img src="/x.png"> has no alt`},
		{"empty button", edit(`>Filter</button>`, `></button>`), "<button> has no accessible name"},
	}
	for _, tc := range pages {
		p := strings.Join(pageProblems(tc.page), "\n")
		if tc.want == "" && p != "" || !strings.Contains(p, tc.want) {
			t.Errorf("page, %s: want a problem containing %q, got:\n%s", tc.name, tc.want, p)
		}
	}
}
