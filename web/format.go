package web

import (
	"fmt"
	"html/template"
	"strconv"
	"strings"
	"time"
)

// The template functions format values the same way on every page. Times
// are shown in UTC with the zone named, so that a user and an operator in
// different places read the same instant.
var funcs = template.FuncMap{
	"money":    money,
	"when":     when,
	"whenp":    whenPtr,
	"took":     took,
	"models":   models,
	"limit":    limit,
	"orDash":   orDash,
	"teamName": teamName,
	"plural":   plural,
	"kind":     kindLabel,
}

// kindLabel names what produced a sync event.
func kindLabel(kind string) string {
	switch kind {
	case "background":
		return "Background sync"
	case "revalidate":
		return "Re-validation"
	case "admin":
		return "Admin change"
	default:
		return "Sign-in"
	}
}

// money formats a LiteLLM budget (USD); nil means no budget.
func money(v *float64) string {
	if v == nil {
		return "No limit"
	}
	return "$" + strconv.FormatFloat(*v, 'f', 2, 64)
}

func when(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func whenPtr(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return when(*t)
}

// took formats a duration for people: "850 µs", "12 ms", "1.4 s".
func took(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%d µs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	default:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + " s"
	}
}

// models lists model names; LiteLLM reads an empty list as "all models".
func models(m []string) string {
	if len(m) == 0 {
		return "All models"
	}
	return strings.Join(m, ", ")
}

func limit(v *int64) string {
	if v == nil {
		return "—"
	}
	return strconv.FormatInt(*v, 10)
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func teamName(t TeamName) string {
	if t.Alias != "" {
		return t.Alias
	}
	return t.ID
}

// plural picks the word for n: plural 1 "team" "teams".
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
