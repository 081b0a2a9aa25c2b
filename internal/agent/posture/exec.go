package posture

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// searchPath is where a command named without a slash is looked for; the
// agent's own PATH is not used, so a policy runs the same under systemd and
// from a shell.
var searchPath = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}

// cmdOutput is what one command produced.
type cmdOutput struct {
	stdout, stderr []byte
	exit           int
	truncated      bool
	err            error // the command could not run or did not finish: the rule is Invalid
}

func (o *cmdOutput) note() string {
	s := fmt.Sprintf(" (exit status %d", o.exit)
	if o.truncated {
		s += ", output truncated"
	}
	return s + ")"
}

// boundedBuffer keeps the first max bytes written to it.
type boundedBuffer struct {
	buf       bytes.Buffer
	max       int
	truncated bool
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room < len(p) {
		b.truncated = true
		if room > 0 {
			b.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return b.buf.Write(p)
}

// run executes a command line without a shell (Wazuh splits it into argv
// and execs it; policies that need a shell say `sh -c "…"` themselves),
// with stdin from /dev/null, a fixed environment (PATH as searchPath,
// LC_ALL=C so messages are in English), a timeout that kills the whole
// process group, and bounded output.
func (e *Evaluator) run(ctx context.Context, line string) *cmdOutput {
	argv, err := splitCommand(line)
	if err != nil {
		return &cmdOutput{err: err}
	}
	path, err := lookPath(argv[0])
	if err != nil {
		return &cmdOutput{err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, e.opts.CommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, argv[1:]...)
	cmd.Args[0] = argv[0]
	cmd.Env = []string{"PATH=" + strings.Join(searchPath, ":"), "LC_ALL=C", "LANG=C", "HOME=/"}
	cmd.Dir = "/"
	stdout := &boundedBuffer{max: e.opts.MaxOutput}
	stderr := &boundedBuffer{max: e.opts.MaxOutput}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	setProcessGroup(cmd)
	cmd.WaitDelay = 2 * time.Second
	start := time.Now()
	err = cmd.Run()
	out := &cmdOutput{stdout: stdout.buf.Bytes(), stderr: stderr.buf.Bytes(), truncated: stdout.truncated || stderr.truncated}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		out.err = fmt.Errorf("command %s did not finish within %s", clip(argv[0], 60), e.opts.CommandTimeout)
		if errors.Is(ctx.Err(), context.Canceled) {
			out.err = fmt.Errorf("command %s: scan cancelled", clip(argv[0], 60))
		}
	case errors.As(err, &ee):
		out.exit = ee.ExitCode()
		if out.exit < 0 {
			out.err = fmt.Errorf("command %s was killed by a signal after %s", clip(argv[0], 60), time.Since(start).Round(time.Millisecond))
		}
	case err != nil:
		out.err = fmt.Errorf("command %s could not run: %v", clip(argv[0], 60), err)
	}
	return out
}

// lookPath finds an executable in searchPath (or takes a path with a slash
// as it is).
func lookPath(name string) (string, error) {
	if strings.Contains(name, "/") {
		if fi, err := os.Stat(name); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return "", fmt.Errorf("command %s not found or not executable", clip(name, 60))
		}
		return name, nil
	}
	for _, d := range searchPath {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("command %s not found in %s", clip(name, 60), strings.Join(searchPath, ":"))
}
