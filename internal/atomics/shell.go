package atomics

import (
	"regexp"
	"strings"
)

// This file is a small reader of POSIX shell text, enough to list the
// programs a test calls so that Plan can tell "needs a tool that is not
// installed" from "ran and failed". It is deliberately approximate: a word
// it cannot resolve (a variable, a path, a glob) is left out, never guessed.

// shellBuiltins are commands every sh and bash has without a program.
var shellBuiltins = set(
	".", ":", "[", "[[", "alias", "bg", "bind", "break", "builtin", "caller", "cd", "command", "compgen",
	"complete", "continue", "declare", "dirs", "disown", "echo", "enable", "eval", "exec", "exit", "export",
	"false", "fc", "fg", "getopts", "hash", "help", "history", "jobs", "kill", "let", "local", "logout",
	"popd", "printf", "pushd", "pwd", "read", "readarray", "mapfile", "readonly", "return", "set", "shift",
	"shopt", "source", "suspend", "test", "times", "trap", "true", "type", "typeset", "ulimit", "umask",
	"unalias", "unset", "wait",
)

// reserved words that may start a command; the next word is in command position.
var shellOpeners = set("if", "then", "else", "elif", "do", "while", "until", "!", "{", "time", "(", "((")

// reserved words that close a construct.
var shellClosers = set("fi", "done", "}", "esac", "]]", "))", ")")

// wrappers run the command named after their own options.
var wrappers = set("sudo", "nohup", "exec", "env", "nice", "time", "timeout", "xargs", "stdbuf", "setsid", "ionice", "doas", "builtin")

var assignmentRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\[[^]]*\])?\+?=`)

// guardRE finds tools a script tests for before using (command -v X,
// which X, type X, hash X): those are optional to it.
var guardRE = regexp.MustCompile(`(?:command\s+-v|which|type|hash)\s+["']?([A-Za-z0-9_.+-]+)`)

func set(words ...string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m
}

// token is one shell word or operator.
type token struct {
	text string // quotes removed; command substitutions kept verbatim
	op   bool   // an operator: ; & | && || ( ) newline or a redirection
	raw  bool   // the word had no quoting or expansion at all
}

// tokenize splits script into tokens and calls sub for the body of every
// command substitution ($(…) and `…`) it meets.
func tokenize(script string, sub func(string)) []token {
	var toks []token
	var cur strings.Builder
	inWord, raw := false, true
	flush := func() {
		if inWord {
			toks = append(toks, token{text: cur.String(), raw: raw})
		}
		cur.Reset()
		inWord, raw = false, true
	}
	s := script
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			if s[i+1] != '\n' {
				cur.WriteByte(s[i+1])
				inWord, raw = true, false
			}
			i++
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				j = len(s) - i - 1
			}
			cur.WriteString(s[i+1 : i+1+j])
			inWord, raw = true, false
			i += j + 1
		case c == '"':
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				switch {
				case s[j] == '\\' && j+1 < len(s):
					cur.WriteByte(s[j+1])
					j++
				case s[j] == '$' && j+1 < len(s) && s[j+1] == '(':
					end := matchParen(s, j+1)
					sub(s[j+2 : end])
					cur.WriteString(s[j:min(end+1, len(s))])
					j = end
				case s[j] == '`':
					end := strings.IndexByte(s[j+1:], '`')
					if end < 0 {
						end = len(s) - j - 1
					}
					sub(s[j+1 : j+1+end])
					j += end + 1
				default:
					cur.WriteByte(s[j])
				}
			}
			inWord, raw = true, false
			i = j
		case c == '$' && i+1 < len(s) && s[i+1] == '(':
			end := matchParen(s, i+1)
			if !(i+2 < len(s) && s[i+2] == '(') { // $(( arithmetic )) runs nothing
				sub(s[i+2 : end])
			}
			cur.WriteString(s[i:min(end+1, len(s))])
			inWord, raw = true, false
			i = end
		case c == '`':
			end := strings.IndexByte(s[i+1:], '`')
			if end < 0 {
				end = len(s) - i - 1
			}
			sub(s[i+1 : i+1+end])
			cur.WriteString("`")
			inWord, raw = true, false
			i += end + 1
		case c == '#' && !inWord:
			for i < len(s) && s[i] != '\n' {
				i++
			}
			i--
		case c == ' ' || c == '\t' || c == '\r':
			flush()
		case c == '\n' || c == ';' || c == '&' || c == '|' || c == '(' || c == ')':
			// "name()" declares a function: keep "()" on the word.
			if c == '(' && inWord && i+1 < len(s) && s[i+1] == ')' {
				cur.WriteString("()")
				i++
				flush()
				continue
			}
			if c == '&' && i+1 < len(s) && s[i+1] == '>' { // &> redirection
				flush()
				toks = append(toks, token{text: "&>", op: true})
				i++
				continue
			}
			flush()
			op := string(c)
			if i+1 < len(s) && (s[i+1] == c) && c != '\n' && c != '(' && c != ')' {
				op += string(c)
				i++
			}
			toks = append(toks, token{text: op, op: true})
		case c == '<' && strings.HasPrefix(s[i:], "<<") && !strings.HasPrefix(s[i:], "<<<"):
			// A here-document: its body is data, not commands.
			flush()
			i = skipHeredoc(s, i+2)
			toks = append(toks, token{text: ";", op: true})
		case c == '<' || c == '>':
			// A redirection: digits before it belong to it (2>).
			if inWord && isDigits(cur.String()) {
				cur.Reset()
				inWord = false
			}
			flush()
			j := i + 1
			for j < len(s) && (s[j] == '>' || s[j] == '<' || s[j] == '&' || s[j] == '|') {
				j++
			}
			if s[i] == '<' && j < len(s) && s[j] == '(' { // <( process substitution )
				end := matchParen(s, j)
				sub(s[j+1 : end])
				i = end
				continue
			}
			toks = append(toks, token{text: "redir", op: true})
			i = j - 1
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	flush()
	return toks
}

// skipHeredoc skips the delimiter word starting at i and the body up to
// the line holding only the delimiter; it returns the index of that
// line's last byte.
func skipHeredoc(s string, i int) int {
	tabs := false
	if i < len(s) && s[i] == '-' {
		tabs = true
		i++
	}
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	j := i
	for j < len(s) && !strings.ContainsRune(" \t\n;&|<>()", rune(s[j])) {
		j++
	}
	delim := strings.Trim(s[i:j], `'"\`)
	nl := strings.IndexByte(s[j:], '\n')
	if nl < 0 || delim == "" {
		return len(s) - 1
	}
	pos := j + nl + 1
	for pos < len(s) {
		end := strings.IndexByte(s[pos:], '\n')
		line := s[pos:]
		if end >= 0 {
			line = s[pos : pos+end]
		}
		if tabs {
			line = strings.TrimLeft(line, "\t")
		}
		if line == delim {
			if end < 0 {
				return len(s) - 1
			}
			return pos + end - 1
		}
		if end < 0 {
			break
		}
		pos += end + 1
	}
	return len(s) - 1
}

// matchParen returns the index of the ')' closing the '(' at open, or
// len(s) when it is missing.
func matchParen(s string, open int) int {
	depth := 0
	for i := open; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '\'':
			if j := strings.IndexByte(s[i+1:], '\''); j >= 0 {
				i += j + 1
			}
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return len(s)
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Programs lists the programs script runs by name (not by path), without
// builtins, functions it defines or duplicates, in order of appearance.
// Scripts given to sh -c / bash -c inside it and command substitutions
// are read too.
func Programs(script string) []string {
	var out []string
	seen := map[string]bool{}
	funcs := map[string]bool{}
	programs(script, 0, funcs, func(name string) {
		if !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	})
	// A function may be used before the line that defines it is read.
	kept := out[:0]
	for _, n := range out {
		if !funcs[n] {
			kept = append(kept, n)
		}
	}
	return kept
}

func programs(script string, depth int, funcs map[string]bool, emit func(string)) {
	if depth > 4 {
		return
	}
	nested := func(s string) { programs(s, depth+1, funcs, emit) }
	toks := tokenize(script, nested)
	expect := true  // the next word is in command position
	skipUntil := "" // inside for/case headers: skip words until this one
	afterRedir := false
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if t.op {
			afterRedir = t.text == "redir" || t.text == "&>"
			if !afterRedir {
				expect = true
				if skipUntil == ";" {
					skipUntil = ""
				}
			}
			continue
		}
		if afterRedir {
			afterRedir = false
			continue
		}
		if skipUntil != "" {
			if t.text == skipUntil {
				skipUntil = ""
				expect = true
			}
			continue
		}
		if !expect {
			continue
		}
		w := t.text
		switch {
		case t.raw && shellOpeners[w]:
			continue
		case t.raw && shellClosers[w]:
			expect = false
			continue
		case t.raw && (w == "for" || w == "select"):
			skipUntil = ";" // "for x in …" up to the separator, then "do"
			continue
		case t.raw && w == "case":
			skipUntil = "esac"
			continue
		case t.raw && w == "function":
			if i+1 < len(toks) && !toks[i+1].op {
				funcs[strings.TrimSuffix(toks[i+1].text, "()")] = true
				i++
			}
			continue
		case strings.HasSuffix(w, "()"):
			funcs[strings.TrimSuffix(w, "()")] = true
			continue
		case assignmentRE.MatchString(w):
			continue // VAR=value before a command
		}
		expect = false
		name := w
		// Wrappers: the command is the first word after their options.
		j := i
		for t.raw && wrappers[name] {
			if name == "builtin" {
				name = ""
				break
			}
			if name != "exec" && name != "time" {
				emitProgram(name, emit) // the wrapper is a program too
			}
			k := j + 1
			for k < len(toks) && !toks[k].op {
				a := toks[k].text
				if strings.HasPrefix(a, "-") || assignmentRE.MatchString(a) || (name == "timeout" && isDuration(a)) || (name == "nice" && isDigits(strings.TrimPrefix(a, "-"))) {
					if (name == "sudo" && (a == "-u" || a == "-g" || a == "-C" || a == "-p" || a == "-h")) || (name == "xargs" && (a == "-n" || a == "-I" || a == "-P" || a == "-L" || a == "-d")) || (name == "nice" && a == "-n") || (name == "timeout" && (a == "-s" || a == "-k")) {
						k++
					}
					k++
					continue
				}
				break
			}
			if k >= len(toks) || toks[k].op {
				name = ""
				break
			}
			j = k
			t = toks[k]
			name = t.text
		}
		i = j
		if name == "" {
			continue
		}
		if name == "command" && i+1 < len(toks) && toks[i+1].text == "-v" {
			continue // a query, not a run
		}
		if !t.raw && strings.ContainsAny(name, "$`*?[") {
			continue
		}
		emitProgram(name, emit)
		// sh -c 'SCRIPT': read SCRIPT too.
		if isShell(name) {
			for k := i + 1; k < len(toks) && !toks[k].op; k++ {
				if toks[k].text == "-c" && k+1 < len(toks) && !toks[k+1].op {
					nested(toks[k+1].text)
					break
				}
			}
		}
	}
}

func emitProgram(name string, emit func(string)) {
	if name == "" || strings.Contains(name, "/") || strings.ContainsAny(name, "$`*?[=") || shellBuiltins[name] || shellOpeners[name] || shellClosers[name] {
		return
	}
	emit(name)
}

func isShell(name string) bool {
	switch name {
	case "sh", "bash", "dash", "zsh", "ksh", "ash":
		return true
	}
	return false
}

func isDuration(s string) bool {
	s = strings.TrimRight(s, "smhd")
	return isDigits(strings.ReplaceAll(s, ".", ""))
}

// Guarded lists the programs script checks for before it uses them
// (command -v X, which X, type X, hash X).
func Guarded(script string) map[string]bool {
	m := map[string]bool{}
	for _, g := range guardRE.FindAllStringSubmatch(script, -1) {
		m[g[1]] = true
	}
	return m
}
