package testkit

import (
	"fmt"
	"strings"
	"unicode"

	"golang.org/x/net/html"
)

// XSS payloads for the console's tests: every string that an attacker can
// put in an event (command line, file name, user name, host name, rule
// title) is rendered inert, whatever it looks like. Each payload calls
// __xss(N) with its own number N if it ever runs; no page defines __xss, so
// a payload that ran shows as a ReferenceError (and, under the CSP, as a
// violation) in the browser.

// xssVectors are ways to run script: tags, event handlers, URLs, SVG and
// MathML, template syntax of client-side frameworks. %d is the number.
var xssVectors = []string{
	`<script>__xss(%d)</script>`,
	`<ScRiPt src=//evil.example/%d.js></ScRiPt>`,
	`<img src=x onerror=__xss(%d)>`,
	`<svg onload=__xss(%d)>`,
	`<svg><script>__xss(%d)</script></svg>`,
	`<iframe src="javascript:__xss(%d)"></iframe>`,
	`<a href="javascript:__xss(%d)">click %d</a>`,
	`<body onload=__xss(%d)>`,
	`<details open ontoggle=__xss(%d)>`,
	`<input autofocus onfocus=__xss(%d)>`,
	`<math><mtext><table><mglyph><style><img src=x onerror=__xss(%d)>`,
	`<object data="javascript:__xss(%d)">`,
	`<meta http-equiv="refresh" content="0;url=javascript:__xss(%d)">`,
	`<base href="javascript:__xss(%d)//">`,
	`<style>*{background:url("javascript:__xss(%d)")}</style>`,
	`<div style="background:url(javascript:__xss(%d))">%d</div>`,
	`{{constructor.constructor('__xss(%d)')()}}`,
	"${__xss(%d)}`${__xss(%d)}`",
	`<template><script>__xss(%d)</script></template>`,
	`<noscript><p title="</noscript><img src=x onerror=__xss(%d)>">`,
	`<video><source onerror=__xss(%d)></video>`,
	`<form action="javascript:__xss(%d)"><button>%d</button></form>`,
	`<embed src="data:text/html,<script>__xss(%d)</script>">`,
	`javascript:__xss(%d)`,
	`data:text/html,<script>__xss(%d)</script>`,
}

// xssContexts put a vector where it would break out of what surrounds it:
// attribute values, raw-text elements, script strings, comments; with bidi
// and zero-width characters and HTML entities that must stay literal.
var xssContexts = []func(v string, n int) string{
	func(v string, n int) string { return v },
	func(v string, n int) string { return `"><` + strings.TrimPrefix(v, "<") },
	func(v string, n int) string { return `' onmouseover='__xss(` + fmt.Sprint(n) + `)' x='` + v },
	func(v string, n int) string { return `</textarea></title></script></style></pre>` + v },
	func(v string, n int) string { return `';__xss(` + fmt.Sprint(n) + `);//"` + `</script>` + v },
	func(v string, n int) string { return "\u202e" + v + "\u200b\ufeff\u2066" },
	func(v string, n int) string {
		return `&lt;` + v + `&#x3c;script&#x3e;__xss(` + fmt.Sprint(n) + `)&#x3c;/script&#x3e;`
	},
	func(v string, n int) string { return v + `<!--` + `--><script>__xss(` + fmt.Sprint(n) + `)</script>` },
}

// XSSPayloads returns the 200 distinct payloads, numbered 0 to 199.
func XSSPayloads() []string {
	out := make([]string, 0, len(xssVectors)*len(xssContexts))
	for _, ctx := range xssContexts {
		for _, v := range xssVectors {
			n := len(out)
			out = append(out, ctx(strings.ReplaceAll(v, "%d", fmt.Sprint(n)), n))
		}
	}
	return out
}

// Printable is s without the characters a printable-only field (a host
// name at enrolment) refuses: controls and format characters such as the
// bidi overrides.
func Printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) || r == ' ' {
			return r
		}
		return -1
	}, s)
}

// consoleTags are the elements the console's templates and scripts make.
// A parsed page holding any other element has markup that came from data.
var consoleTags = map[string]bool{}

func init() {
	for _, t := range strings.Fields(`html head body meta title link script header nav footer main section article aside
		div span p a h1 h2 h3 h4 br hr strong em small code pre kbd mark abbr time
		table caption colgroup col thead tbody tfoot tr th td dl dt dd ul ol li
		form fieldset legend label input button select option optgroup datalist textarea dialog output progress meter details summary`) {
		consoleTags[t] = true
	}
	for _, t := range strings.Fields(`svg g rect line polyline path circle text tspan title desc`) {
		svgTags[t] = true
	}
}

// svgTags are the SVG elements of the console's charts: shapes and text,
// nothing that links, animates, embeds or scripts (no a, use, image,
// foreignObject, animate, set, script).
var svgTags = map[string]bool{}

// urlAttrs hold URLs: javascript:, vbscript: and data: are refused there
// (except the empty data: icon of the layout).
var urlAttrs = map[string]bool{"href": true, "src": true, "action": true, "formaction": true, "data": true,
	"srcdoc": true, "xlink:href": true, "poster": true, "background": true, "ping": true}

// CheckInertHTML parses page as a browser would and reports every sign
// that data became markup: an element the console never makes, an event
// handler or style attribute, a script that is not one of /static/, inline
// style, a dangerous URL. Then it checks that each of want appears as text
// (in a text node or an attribute value, as the parser decoded it). It
// returns the problems found, each naming where.
func CheckInertHTML(page string, want ...string) []string {
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		return []string{"parse: " + err.Error()}
	}
	var problems []string
	var text strings.Builder
	var walk func(n *html.Node, path string)
	walk = func(n *html.Node, path string) {
		switch n.Type {
		case html.TextNode:
			text.WriteString(n.Data)
			text.WriteByte(0)
		case html.ElementNode:
			path += "/" + n.Data
			if n.Namespace == "svg" && !svgTags[n.Data] || n.Namespace != "svg" && (n.Namespace != "" || !consoleTags[n.Data]) {
				problems = append(problems, fmt.Sprintf("element <%s> (namespace %q) at %s", n.Data, n.Namespace, path))
			}
			rel := ""
			for _, a := range n.Attr {
				if a.Key == "rel" {
					rel = a.Val
				}
			}
			for _, a := range n.Attr {
				key := strings.ToLower(a.Key)
				text.WriteString(a.Val)
				text.WriteByte(0)
				switch {
				case strings.HasPrefix(key, "on"):
					problems = append(problems, fmt.Sprintf("event handler %s=%q at %s", a.Key, clipText(a.Val), path))
				case key == "style":
					problems = append(problems, fmt.Sprintf("style attribute at %s", path))
				case key == "http-equiv":
					problems = append(problems, fmt.Sprintf("meta http-equiv at %s", path))
				case urlAttrs[key]:
					u := strings.ToLower(strings.TrimSpace(strings.Map(func(r rune) rune {
						if unicode.IsSpace(r) || unicode.IsControl(r) {
							return -1
						}
						return r
					}, a.Val)))
					if n.Data == "link" && rel == "icon" && u == "data:," {
						break
					}
					if strings.HasPrefix(u, "javascript:") || strings.HasPrefix(u, "vbscript:") || strings.HasPrefix(u, "data:") {
						problems = append(problems, fmt.Sprintf("%s=%q at %s", a.Key, clipText(a.Val), path))
					}
					if n.Data == "script" && key == "src" && !strings.HasPrefix(a.Val, "/static/") {
						problems = append(problems, fmt.Sprintf("script from %q at %s", a.Val, path))
					}
				}
			}
			if n.Data == "script" {
				if n.FirstChild != nil && strings.TrimSpace(n.FirstChild.Data) != "" {
					problems = append(problems, fmt.Sprintf("inline script %q at %s", clipText(n.FirstChild.Data), path))
				}
				src := false
				for _, a := range n.Attr {
					src = src || a.Key == "src"
				}
				if !src {
					problems = append(problems, "script without src at "+path)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, path)
		}
	}
	walk(doc, "")
	all := text.String()
	for _, w := range want {
		if !strings.Contains(all, w) {
			problems = append(problems, fmt.Sprintf("payload %q is not on the page as text", clipText(w)))
		}
	}
	return problems
}

func clipText(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
