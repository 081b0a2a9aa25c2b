package syslog

import (
	"strings"

	"github.com/vigil-edr/vigil/internal/event"
)

// Sigma service lists. Events point at these shared slices; nothing may
// modify them.
var (
	svcSyslog    = []string{"syslog"}
	svcAuth      = []string{"auth", "syslog"}
	svcSSHD      = []string{"sshd", "auth", "syslog"}
	svcSudo      = []string{"sudo", "auth", "syslog"}
	svcCron      = []string{"cron", "syslog"}
	svcVsftpd    = []string{"vsftpd", "syslog"}
	svcClamav    = []string{"clamav", "syslog"}
	svcGuacamole = []string{"guacamole", "syslog"}
)

// program kinds, by the tag's base name (before any "(pam_…)" or "/").
type kind uint8

const (
	kindOther kind = iota
	kindSSHD
	kindSudo
	kindSu
	kindUserTool // useradd, usermod, userdel, groupadd, groupdel, groupmod, passwd, chpasswd, …
	kindLogin
	kindAuthOther // other programs that only log authentication: polkitd, systemd-logind, gdm …
	kindCron
	kindVsftpd
	kindFtpd
	kindClamav
	kindGuacamole
)

var kinds = map[string]kind{
	"sshd": kindSSHD, "sshd-session": kindSSHD, "sshd-auth": kindSSHD,
	"sudo": kindSudo,
	"su":   kindSu, "su-l": kindSu, "sudo-i": kindSudo,
	"useradd": kindUserTool, "usermod": kindUserTool, "userdel": kindUserTool,
	"groupadd": kindUserTool, "groupmod": kindUserTool, "groupdel": kindUserTool,
	"gpasswd": kindUserTool, "passwd": kindUserTool, "chpasswd": kindUserTool,
	"chage": kindUserTool, "chsh": kindUserTool, "chfn": kindUserTool,
	"adduser": kindUserTool, "deluser": kindUserTool, "addgroup": kindUserTool, "delgroup": kindUserTool,
	"login": kindLogin, "-- root": kindLogin,
	"systemd-logind": kindAuthOther, "polkitd": kindAuthOther, "gdm": kindAuthOther,
	"gdm-password": kindAuthOther, "lightdm": kindAuthOther, "pkexec": kindAuthOther,
	"cron": kindCron, "crond": kindCron, "anacron": kindCron,
	"vsftpd": kindVsftpd,
	"ftpd":   kindFtpd,
	"clamd":  kindClamav, "freshclam": kindClamav, "clamav": kindClamav, "clamav-milter": kindClamav,
	"guacd": kindGuacamole, "guacamole": kindGuacamole,
}

// programKind looks the tag's base name up case-insensitively without
// allocating.
func programKind(tag string) kind {
	base := tag
	if i := strings.IndexAny(base, "(/"); i > 0 {
		base = base[:i]
	}
	var buf [32]byte
	if len(base) > len(buf) {
		return kindOther
	}
	b := buf[:len(base)]
	for i := 0; i < len(base); i++ {
		c := base[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	return kinds[string(b)]
}

func classify(tag string, pri int, msg string) []string {
	switch programKind(tag) {
	case kindSSHD:
		return svcSSHD
	case kindSudo:
		return svcSudo
	case kindSu, kindUserTool, kindLogin, kindAuthOther:
		return svcAuth
	case kindCron:
		return svcCron
	case kindVsftpd:
		return svcVsftpd
	case kindClamav:
		return svcClamav
	case kindGuacamole:
		return svcGuacamole
	}
	if pri >= 0 {
		if f := pri >> 3; f == 4 || f == 10 { // auth, authpriv
			return svcAuth
		}
	}
	if strings.Contains(tag, "(pam_") || strings.HasPrefix(msg, "pam_") {
		return svcAuth
	}
	return svcSyslog
}

// extract adds EventType and the facts of authentication records.
func extract(ev *event.Event, tag, msg string) {
	k := programKind(tag)
	// PAM: "pam_unix(sshd:auth): …" in the message, or the old
	// "sshd(pam_unix)[pid]: …" tag form.
	if strings.HasPrefix(msg, "pam_") {
		if mod, rest, ok := strings.Cut(msg, "("); ok && !strings.ContainsRune(mod, ' ') {
			if svc, rest2, ok := strings.Cut(rest, "): "); ok {
				svc, _, _ = strings.Cut(svc, ":")
				ev.Add(FieldPamModule, mod)
				ev.Add(FieldPamService, svc)
				pam(ev, programKind(svc), rest2)
				return
			}
		}
	}
	if i := strings.Index(tag, "(pam_"); i > 0 && strings.HasSuffix(tag, ")") {
		ev.Add(FieldPamModule, tag[i+1:len(tag)-1])
		ev.Add(FieldPamService, tag[:i])
		pam(ev, k, msg)
		return
	}
	switch k {
	case kindSSHD:
		sshd(ev, msg)
	case kindSudo:
		sudo(ev, msg)
	case kindSu:
		su(ev, msg)
	case kindUserTool:
		userTool(ev, msg)
	case kindLogin:
		login(ev, msg)
	case kindCron:
		cron(ev, msg)
	case kindVsftpd:
		vsftpd(ev, msg)
	case kindFtpd:
		ftpd(ev, msg)
	}
}

// sshd understands the OpenSSH server's log lines.
func sshd(ev *event.Event, msg string) {
	// "message repeated N times: [ Failed password for root from … port …]"
	if rest, ok := strings.CutPrefix(msg, "message repeated "); ok {
		n, rest, ok := strings.Cut(rest, " times: [ ")
		if !ok {
			return
		}
		ev.Add(FieldCount, n)
		msg = strings.TrimSuffix(rest, "]")
	}
	msg = strings.TrimSuffix(msg, " [preauth]")
	msg = strings.TrimPrefix(msg, "error: ")
	switch {
	case strings.HasPrefix(msg, "Accepted "):
		sshLogin(ev, EventSSHLoginSuccess, msg[len("Accepted "):])
	case strings.HasPrefix(msg, "Failed "):
		sshLogin(ev, EventSSHLoginFailed, msg[len("Failed "):])
	case strings.HasPrefix(msg, "Invalid user "):
		// "Invalid user NAME from ADDR[ port PORT]"; NAME may be empty or hold spaces.
		rest := msg[len("Invalid user "):]
		i := strings.LastIndex(rest, " from ")
		if i < 0 {
			return
		}
		ev.Add(FieldEventType, EventSSHInvalidUser)
		addUser(ev, FieldUser, rest[:i])
		addrPort(ev, rest[i+len(" from "):])
	case strings.HasPrefix(msg, "input_userauth_request: invalid user "):
		ev.Add(FieldEventType, EventSSHInvalidUser)
		addUser(ev, FieldUser, msg[len("input_userauth_request: invalid user "):])
	case strings.HasSuffix(msg, "POSSIBLE BREAK-IN ATTEMPT!"):
		ev.Add(FieldEventType, EventSSHBreakIn)
		if rest, ok := strings.CutPrefix(msg, "reverse mapping checking getaddrinfo for "); ok {
			// "HOST [IP] failed - POSSIBLE BREAK-IN ATTEMPT!"
			host, rest, _ := strings.Cut(rest, " [")
			ip, _, _ := strings.Cut(rest, "]")
			addAddr(ev, ip)
			ev.Add(FieldSourceHostname, host)
		} else if rest, ok := strings.CutPrefix(msg, "Address "); ok {
			// "Address IP maps to HOST, but this does not map back to the address - …"
			ip, rest, _ := strings.Cut(rest, " maps to ")
			host, _, _ := strings.Cut(rest, ",")
			addAddr(ev, ip)
			ev.Add(FieldSourceHostname, host)
		}
	case strings.HasPrefix(msg, "Connection closed by "), strings.HasPrefix(msg, "Connection reset by "):
		ev.Add(FieldEventType, EventSSHConnClosed)
		userAddrPort(ev, msg[len("Connection closed by "):])
	case strings.HasPrefix(msg, "Received disconnect from "):
		// "Received disconnect from ADDR[ port PORT]: CODE: REASON"
		ev.Add(FieldEventType, EventSSHDisconnect)
		rest := msg[len("Received disconnect from "):]
		addr, reason, _ := strings.Cut(rest, ": ")
		addrPort(ev, addr)
		if reason != "" {
			ev.Add(FieldReason, reason)
		}
	case strings.HasPrefix(msg, "Disconnected from "):
		ev.Add(FieldEventType, EventSSHDisconnect)
		userAddrPort(ev, msg[len("Disconnected from "):])
	case strings.HasPrefix(msg, "Did not receive identification string from "):
		ev.Add(FieldEventType, EventSSHNoIdent)
		addrPort(ev, msg[len("Did not receive identification string from "):])
	case strings.HasPrefix(msg, "Disconnecting: Too many authentication failures"):
		ev.Add(FieldEventType, EventSSHTooManyFails)
		if u, ok := strings.CutPrefix(msg, "Disconnecting: Too many authentication failures for "); ok {
			addUser(ev, FieldUser, u)
		}
	case strings.HasPrefix(msg, "Disconnecting ") && strings.HasSuffix(msg, "Too many authentication failures"):
		// "Disconnecting invalid user NAME ADDR port PORT: Too many authentication failures"
		ev.Add(FieldEventType, EventSSHTooManyFails)
		rest, _, _ := strings.Cut(msg[len("Disconnecting "):], ": ")
		userAddrPort(ev, rest)
	case strings.HasPrefix(msg, "maximum authentication attempts exceeded for "):
		ev.Add(FieldEventType, EventSSHTooManyFails)
		userFromAddrPort(ev, strings.TrimPrefix(msg[len("maximum authentication attempts exceeded for "):], "invalid user "))
	case strings.HasPrefix(msg, "Connection from "):
		// "Connection from ADDR port PORT on ADDR port PORT"
		ev.Add(FieldEventType, EventSSHConnection)
		rest, _, _ := strings.Cut(msg[len("Connection from "):], " on ")
		addrPort(ev, rest)
	case strings.HasPrefix(msg, "PAM "):
		pamSummary(ev, msg)
	}
}

// sshLogin reads "METHOD for [invalid user ]USER from ADDR port PORT ssh2[: KEY]".
func sshLogin(ev *event.Event, typ, rest string) {
	method, rest, ok := strings.Cut(rest, " for ")
	if !ok || strings.ContainsRune(method, ' ') {
		return
	}
	ev.Add(FieldEventType, typ)
	ev.Add(FieldAuthMethod, method)
	rest = strings.TrimPrefix(rest, "invalid user ")
	userFromAddrPort(ev, rest)
}

// userFromAddrPort reads "USER from ADDR port PORT[ ssh2…]". The user name is
// everything before the last " from ", so names with spaces survive.
func userFromAddrPort(ev *event.Event, rest string) {
	i := strings.LastIndex(rest, " from ")
	if i < 0 {
		return
	}
	addUser(ev, FieldUser, rest[:i])
	addrPort(ev, rest[i+len(" from "):])
}

// userAddrPort reads "[authenticating user |invalid user |user ]NAME ADDR port PORT"
// or just "ADDR[ port PORT]".
func userAddrPort(ev *event.Event, rest string) {
	for _, p := range [...]string{"authenticating user ", "invalid user ", "user "} {
		if r, ok := strings.CutPrefix(rest, p); ok {
			i := strings.LastIndex(r, " port ")
			if i < 0 {
				i = len(r)
			}
			j := strings.LastIndexByte(r[:i], ' ')
			if j < 0 {
				return
			}
			addUser(ev, FieldUser, r[:j])
			rest = r[j+1:]
			break
		}
	}
	addrPort(ev, rest)
}

// addrPort reads "ADDR[ port PORT][ …]".
func addrPort(ev *event.Event, s string) {
	addr, rest, _ := strings.Cut(s, " ")
	addAddr(ev, addr)
	if p, ok := strings.CutPrefix(rest, "port "); ok {
		p, _, _ = strings.Cut(p, " ")
		if _, ok := atoi(p); ok {
			ev.Add(FieldSourcePort, p)
		}
	}
}

// addAddr adds an address as SourceIp when it looks like an IP and as
// SourceHostname otherwise (sshd with UseDNS, pam rhost).
func addAddr(ev *event.Event, addr string) {
	if addr == "" {
		return
	}
	if looksLikeIP(addr) {
		ev.Add(FieldSourceIP, addr)
	} else {
		ev.Add(FieldSourceHostname, addr)
	}
}

func looksLikeIP(s string) bool {
	dots, colons := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			dots++
		case c == ':':
			colons++
		case isDigit(c), 'a' <= c && c <= 'f', 'A' <= c && c <= 'F', c == '%' && colons > 0:
		default:
			return false
		}
	}
	return dots == 3 && colons == 0 || colons >= 2
}

func addUser(ev *event.Event, name, user string) {
	if user != "" {
		ev.Add(name, user)
	}
}

// pamSummary reads sshd's "PAM N more authentication failure(s); logname= …"
// and "PAM service(sshd) ignoring max retries; 6 > 3".
func pamSummary(ev *event.Event, msg string) {
	if strings.HasPrefix(msg, "PAM service(") && strings.Contains(msg, "ignoring max retries") {
		ev.Add(FieldEventType, EventPamMaxRetries)
		return
	}
	n, rest, ok := strings.Cut(msg[len("PAM "):], " more authentication failure")
	if !ok {
		return
	}
	ev.Add(FieldEventType, EventPamAuthFailure)
	ev.Add(FieldCount, n)
	if _, kv, ok := strings.Cut(rest, "; "); ok {
		pamKV(ev, kv)
	}
}

// pam understands pam_unix and friends: the message after
// "pam_unix(svc:type): " or after an old-style "svc(pam_unix)" tag.
func pam(ev *event.Event, svc kind, msg string) {
	switch {
	case strings.HasPrefix(msg, "authentication failure; "):
		ev.Add(FieldEventType, EventPamAuthFailure)
		pamKV(ev, msg[len("authentication failure; "):])
	case strings.HasPrefix(msg, "check pass; user unknown"):
		ev.Add(FieldEventType, EventPamUserUnknown)
	case strings.HasPrefix(msg, "session opened for user "):
		// "session opened for user TARGET[(uid=N)] by [ACTOR](uid=N)"
		// Uid is the uid of whoever User names.
		rest := msg[len("session opened for user "):]
		target, by, _ := strings.Cut(rest, " by ")
		target, targetUID, _ := strings.Cut(target, "(uid=")
		targetUID = strings.TrimSuffix(targetUID, ")")
		actor, actorUID, _ := strings.Cut(by, "(uid=")
		actorUID = strings.TrimSuffix(actorUID, ")")
		switch svc {
		case kindSu, kindSudo:
			if svc == kindSu {
				ev.Add(FieldEventType, EventSuSessionOpen)
			} else {
				ev.Add(FieldEventType, EventSudoSessionOpen)
			}
			addUser(ev, FieldTargetUser, target)
			addUser(ev, FieldUser, actor)
			addUser(ev, FieldUID, actorUID)
		default:
			if svc == kindSSHD {
				ev.Add(FieldEventType, EventSSHSessionOpen)
			} else {
				ev.Add(FieldEventType, EventSessionOpen)
			}
			addUser(ev, FieldUser, target)
			addUser(ev, FieldUID, targetUID)
		}
	case strings.HasPrefix(msg, "session closed for user "):
		user := msg[len("session closed for user "):]
		switch svc {
		case kindSu:
			ev.Add(FieldEventType, EventSuSessionClose)
			addUser(ev, FieldTargetUser, user)
		case kindSudo:
			ev.Add(FieldEventType, EventSudoSessionClose)
			addUser(ev, FieldTargetUser, user)
		case kindSSHD:
			ev.Add(FieldEventType, EventSSHSessionClose)
			addUser(ev, FieldUser, user)
		default:
			ev.Add(FieldEventType, EventSessionClose)
			addUser(ev, FieldUser, user)
		}
	case strings.HasPrefix(msg, "password changed for "):
		ev.Add(FieldEventType, EventPasswordChanged)
		addUser(ev, FieldTargetUser, msg[len("password changed for "):])
	}
}

// pamKV reads "logname= uid=0 euid=0 tty=ssh ruser= rhost=1.2.3.4  user=root".
func pamKV(ev *event.Event, s string) {
	var user, ruser, logname string
	for s != "" {
		var tok string
		tok, s, _ = strings.Cut(s, " ")
		k, v, ok := strings.Cut(tok, "=")
		if !ok || v == "" {
			continue
		}
		switch k {
		case "logname":
			logname = v
		case "uid":
			ev.Add(FieldUID, v)
		case "euid":
			ev.Add(FieldEUID, v)
		case "tty":
			ev.Add(FieldTty, v)
		case "ruser":
			ruser = v
		case "rhost":
			addAddr(ev, v)
		case "user":
			user = v
		}
	}
	// user= is the account being authenticated; without it fall back to the
	// remote or login name.
	switch {
	case user != "":
		ev.Add(FieldUser, user)
	case ruser != "":
		ev.Add(FieldUser, ruser)
	case logname != "":
		ev.Add(FieldUser, logname)
	}
}

// sudo reads "USER : [reason ; ]TTY=pts/0 ; PWD=/x ; USER=root ; COMMAND=/bin/id".
// COMMAND comes last and may itself hold " ; ".
func sudo(ev *event.Event, msg string) {
	user, rest, ok := strings.Cut(strings.TrimLeft(msg, " "), " : ")
	if !ok || user == "" || strings.ContainsRune(user, ' ') {
		return
	}
	typ := EventSudoCommand
	command, hasCommand := "", false
	if i := strings.Index(rest, "COMMAND="); i >= 0 && (i == 0 || strings.HasSuffix(rest[:i], " ; ")) {
		command, hasCommand = rest[i+len("COMMAND="):], true
		rest = strings.TrimSuffix(rest[:i], " ; ")
	}
	for rest != "" {
		var f string
		f, rest, _ = strings.Cut(rest, " ; ")
		k, v, ok := strings.Cut(f, "=")
		if !ok || strings.ContainsRune(k, ' ') {
			switch {
			case strings.Contains(f, "incorrect password"), strings.Contains(f, "authentication failure"):
				typ = EventSudoAuthFailure
			case strings.Contains(f, "NOT in sudoers"), strings.Contains(f, "NOT allowed"), strings.Contains(f, "not allowed"):
				typ = EventSudoNotAllowed
			}
			ev.Add(FieldReason, f)
			continue
		}
		switch k {
		case "TTY":
			ev.Add(FieldTty, v)
		case "PWD":
			ev.Add(FieldPwd, v)
		case "USER":
			ev.Add(FieldTargetUser, v)
		}
	}
	if hasCommand {
		ev.Add(FieldCommand, command)
	}
	ev.Add(FieldEventType, typ)
	ev.Add(FieldUser, user)
}

// su reads the shadow and util-linux su lines.
func su(ev *event.Event, msg string) {
	switch {
	case strings.HasPrefix(msg, "Successful su for "):
		ev.Add(FieldEventType, EventSuSuccess)
		suForBy(ev, msg[len("Successful su for "):])
	case strings.HasPrefix(msg, "FAILED su for "):
		ev.Add(FieldEventType, EventSuFailed)
		suForBy(ev, msg[len("FAILED su for "):])
	case strings.HasPrefix(msg, "(to "):
		// util-linux: "(to root) alice on pts/0"
		target, rest, ok := strings.Cut(msg[len("(to "):], ") ")
		if !ok {
			return
		}
		user, tty, _ := strings.Cut(rest, " on ")
		ev.Add(FieldEventType, EventSuSuccess)
		addUser(ev, FieldTargetUser, target)
		addUser(ev, FieldUser, user)
		addUser(ev, FieldTty, tty)
	case strings.HasPrefix(msg, "+ "), strings.HasPrefix(msg, "- "):
		// shadow: "+ pts/0 alice:root" (success) or "- pts/0 alice:root" (failure)
		tty, users, ok := strings.Cut(msg[2:], " ")
		if !ok {
			return
		}
		user, target, ok := strings.Cut(users, ":")
		if !ok {
			return
		}
		if msg[0] == '+' {
			ev.Add(FieldEventType, EventSuSuccess)
		} else {
			ev.Add(FieldEventType, EventSuFailed)
		}
		addUser(ev, FieldTty, tty)
		addUser(ev, FieldUser, user)
		addUser(ev, FieldTargetUser, target)
	}
}

func suForBy(ev *event.Event, s string) {
	target, user, _ := strings.Cut(s, " by ")
	addUser(ev, FieldTargetUser, target)
	addUser(ev, FieldUser, user)
}

// userTool reads the shadow-utils messages of useradd, usermod, userdel,
// groupadd, groupdel, groupmod, gpasswd, passwd and chpasswd.
func userTool(ev *event.Event, msg string) {
	switch {
	case strings.HasPrefix(msg, "new user: "):
		// "new user: name=bob, UID=1001, GID=1001, home=/home/bob, shell=/bin/bash, from=/dev/pts/0"
		ev.Add(FieldEventType, EventUserAdded)
		commaKV(ev, msg[len("new user: "):], FieldTargetUser)
	case strings.HasPrefix(msg, "new group: "), strings.HasPrefix(msg, "group added to "):
		// "new group: name=bob, GID=1001" / "group added to /etc/group: name=bob, GID=1001"
		ev.Add(FieldEventType, EventGroupAdded)
		_, kv, _ := strings.Cut(msg, ": ")
		commaKV(ev, kv, FieldGroup)
	case strings.HasPrefix(msg, "delete user '"):
		ev.Add(FieldEventType, EventUserDeleted)
		addUser(ev, FieldTargetUser, quoted(msg[len("delete user "):]))
	case strings.HasPrefix(msg, "removed group '"), strings.HasPrefix(msg, "removed shadow group '"):
		ev.Add(FieldEventType, EventGroupDeleted)
		_, rest, _ := strings.Cut(msg, "group ")
		addUser(ev, FieldGroup, quoted(rest))
	case strings.HasPrefix(msg, "group '") && (strings.HasSuffix(msg, "' removed") || strings.Contains(msg, "' removed from ")):
		ev.Add(FieldEventType, EventGroupDeleted)
		addUser(ev, FieldGroup, quoted(msg[len("group "):]))
	case strings.HasPrefix(msg, "add '"), strings.HasPrefix(msg, "add member '"):
		// usermod -aG: "add 'bob' to group 'sudo'" / "add 'bob' to shadow group 'sudo'"
		// gpasswd -a: "add member 'bob' to group 'sudo'"? Both put the user first.
		ev.Add(FieldEventType, EventUserAddedToGroup)
		_, rest, _ := strings.Cut(msg, "'")
		user, rest, _ := strings.Cut(rest, "'")
		addUser(ev, FieldTargetUser, user)
		if i := strings.Index(rest, "group '"); i >= 0 {
			addUser(ev, FieldGroup, quoted(rest[i+len("group "):]))
		}
	case strings.HasPrefix(msg, "user ") && strings.Contains(msg, " added by "):
		// gpasswd: "user bob added by root to group sudo"
		ev.Add(FieldEventType, EventUserAddedToGroup)
		rest := msg[len("user "):]
		target, rest, _ := strings.Cut(rest, " added by ")
		actor, group, _ := strings.Cut(rest, " to group ")
		addUser(ev, FieldTargetUser, target)
		addUser(ev, FieldUser, actor)
		addUser(ev, FieldGroup, group)
	case strings.HasPrefix(msg, "password for '") && strings.Contains(msg, "' changed by '"):
		// passwd: "password for 'bob' changed by 'root'"
		ev.Add(FieldEventType, EventPasswordChanged)
		rest := msg[len("password for "):]
		addUser(ev, FieldTargetUser, quoted(rest))
		if i := strings.Index(rest, " by "); i >= 0 {
			addUser(ev, FieldUser, quoted(rest[i+len(" by "):]))
		}
	case strings.HasPrefix(msg, "change user '"), strings.HasPrefix(msg, "lock user '"),
		strings.HasPrefix(msg, "unlock user '"), strings.HasPrefix(msg, "change user name '"):
		typ := EventUserModified
		if strings.HasSuffix(msg, "' password") {
			typ = EventPasswordChanged
		}
		ev.Add(FieldEventType, typ)
		_, rest, _ := strings.Cut(msg, "user ")
		rest = strings.TrimPrefix(rest, "name ")
		addUser(ev, FieldTargetUser, quoted(rest))
	case strings.HasPrefix(msg, "group changed in "), strings.HasPrefix(msg, "change group '"):
		ev.Add(FieldEventType, EventGroupModified)
		if _, kv, ok := strings.Cut(msg, ": "); ok && strings.Contains(kv, "=") {
			commaKV(ev, kv, FieldGroup)
		} else {
			_, rest, _ := strings.Cut(msg, "group ")
			addUser(ev, FieldGroup, quoted(rest))
		}
	}
}

// quoted returns the text between the first pair of single quotes of s.
func quoted(s string) string {
	_, rest, ok := strings.Cut(s, "'")
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, "'")
	return v
}

// commaKV reads "name=bob, UID=1001, GID=1001, home=/home/bob, shell=/bin/bash".
// The name= value goes to nameField (TargetUser or Group).
func commaKV(ev *event.Event, s, nameField string) {
	for s != "" {
		var kv string
		kv, s, _ = strings.Cut(s, ", ")
		k, v, ok := strings.Cut(kv, "=")
		if !ok || v == "" {
			continue
		}
		switch k {
		case "name":
			ev.Add(nameField, v)
		case "UID":
			ev.Add(FieldUID, v)
		case "GID":
			ev.Add(FieldGID, v)
		case "home":
			ev.Add(FieldHome, v)
		case "shell":
			ev.Add(FieldShell, v)
		case "from":
			ev.Add(FieldTty, v)
		}
	}
}

// login reads "ROOT LOGIN ON tty2[ FROM host]" and
// "FAILED LOGIN 1 FROM host FOR user, Authentication failure".
func login(ev *event.Event, msg string) {
	switch {
	case strings.HasPrefix(msg, "ROOT LOGIN ON "):
		ev.Add(FieldEventType, EventLoginRoot)
		ev.Add(FieldUser, "root")
		tty, from, _ := strings.Cut(msg[len("ROOT LOGIN ON "):], " FROM ")
		addUser(ev, FieldTty, tty)
		addAddr(ev, from)
	case strings.HasPrefix(msg, "FAILED LOGIN "):
		ev.Add(FieldEventType, EventLoginFailed)
		rest := msg[len("FAILED LOGIN "):]
		if _, r, ok := strings.Cut(rest, " FROM "); ok {
			from, r, _ := strings.Cut(r, " FOR ")
			user, _, _ := strings.Cut(r, ",")
			addAddr(ev, from)
			addUser(ev, FieldUser, user)
		} else if _, r, ok := strings.Cut(rest, " ON "); ok {
			// "FAILED LOGIN 1 ON tty1 FOR bob, Authentication failure"
			tty, r, _ := strings.Cut(r, " FOR ")
			user, _, _ := strings.Cut(r, ",")
			addUser(ev, FieldTty, tty)
			addUser(ev, FieldUser, user)
		}
	}
}

// cron reads "(root) CMD (command)".
func cron(ev *event.Event, msg string) {
	if !strings.HasPrefix(msg, "(") {
		return
	}
	user, rest, ok := strings.Cut(msg[1:], ") CMD (")
	if !ok {
		return
	}
	ev.Add(FieldEventType, EventCronCommand)
	addUser(ev, FieldUser, user)
	ev.Add(FieldCommand, strings.TrimSuffix(rest, ")"))
}

// vsftpd reads `[user] OK LOGIN: Client "1.2.3.4"[, anon password "x"]` and
// the FAIL LOGIN form.
func vsftpd(ev *event.Event, msg string) {
	var user string
	if strings.HasPrefix(msg, "[") {
		var ok bool
		user, msg, ok = strings.Cut(msg[1:], "] ")
		if !ok {
			return
		}
	}
	switch {
	case strings.HasPrefix(msg, "OK LOGIN: "):
		ev.Add(FieldEventType, EventFTPLoginSuccess)
	case strings.HasPrefix(msg, "FAIL LOGIN: "):
		ev.Add(FieldEventType, EventFTPLoginFailed)
	case strings.HasPrefix(msg, "CONNECT: "):
		ev.Add(FieldEventType, EventFTPConnection)
	default:
		return
	}
	addUser(ev, FieldUser, user)
	if _, rest, ok := strings.Cut(msg, `Client "`); ok {
		ip, _, _ := strings.Cut(rest, `"`)
		addAddr(ev, strings.TrimPrefix(ip, "::ffff:"))
	}
}

// ftpd reads the wu-ftpd lines of Red Hat's /var/log/messages:
// "connection from IP (HOST) at DATE" and
// "ANONYMOUS FTP LOGIN FROM IP, (anonymous)".
func ftpd(ev *event.Event, msg string) {
	switch {
	case strings.HasPrefix(msg, "connection from "):
		ev.Add(FieldEventType, EventFTPConnection)
		ip, rest, _ := strings.Cut(msg[len("connection from "):], " (")
		host, _, _ := strings.Cut(rest, ")")
		addAddr(ev, ip)
		addUser(ev, FieldSourceHostname, host)
	case strings.HasPrefix(msg, "ANONYMOUS FTP LOGIN FROM "):
		ev.Add(FieldEventType, EventFTPLoginAnonymous)
		ip, _, _ := strings.Cut(msg[len("ANONYMOUS FTP LOGIN FROM "):], ",")
		addAddr(ev, ip)
		ev.Add(FieldUser, "anonymous")
	}
}
