package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-edr/vigil/internal/audit"
	"github.com/vigil-edr/vigil/internal/authz"
	"github.com/vigil-edr/vigil/internal/hunt"
	"github.com/vigil-edr/vigil/internal/store"
	"github.com/vigil-edr/vigil/internal/store/sqlite"
)

// openData opens the server's database for an admin command; it works while
// the server runs (SQLite serialises the writers).
func openData(ctx context.Context, data string) (*sqlite.DB, error) {
	if _, err := os.Stat(filepath.Join(data, "vigil.db")); err != nil {
		return nil, fmt.Errorf("no Vigil database in %s (start the server once first): %w", data, err)
	}
	return sqlite.Open(ctx, filepath.Join(data, "vigil.db"), sqlite.Options{})
}

// cliActor names the operating-system user running an admin command in the
// audit log.
func cliActor() string {
	if u, err := user.Current(); err == nil {
		return "cli:" + u.Username
	}
	return fmt.Sprintf("cli:uid-%d", os.Getuid())
}

func cliAudit(ctx context.Context, db *sqlite.DB, action, target, detail string) error {
	return audit.New(db, nil).Record(ctx, audit.Entry{Actor: cliActor(), Source: "local", Action: action, Target: target, Detail: detail})
}

// readPassword takes the new password from the first line of stdin when
// fromStdin is set, otherwise generates one and says so.
func readPassword(cmd *cobra.Command, fromStdin bool) (pw string, generated bool, err error) {
	if !fromStdin {
		return authz.NewPassword(), true, nil
	}
	line, err := bufio.NewReader(io.LimitReader(cmd.InOrStdin(), authz.MaxPasswordLen+2)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", false, err
	}
	pw = strings.TrimRight(line, "\r\n")
	return pw, false, authz.CheckPassword(pw)
}

func newUserCmd() *cobra.Command {
	var data string
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Manage console users (works while the server runs)",
		Long: `User manages the web console's local accounts. Passwords are stored as
argon2id hashes. Admins must use a TOTP authenticator app: an admin without one
enrols it at the next login (the console shows the secret and otpauth:// URI).
Every change is written to the audit log.`,
	}
	cmd.PersistentFlags().StringVar(&data, "data", "", "the server's data directory")
	cmd.MarkPersistentFlagRequired("data")

	var role string
	var stdin bool
	add := &cobra.Command{
		Use:   "add NAME [--role admin|analyst|viewer] [--password-stdin]",
		Short: "Add a user; without --password-stdin a password is generated and printed once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := authz.ParseRole(role)
			if err != nil {
				return err
			}
			pw, generated, err := readPassword(cmd, stdin)
			if err != nil {
				return err
			}
			db, err := openData(cmd.Context(), data)
			if err != nil {
				return err
			}
			defer db.Close()
			u, err := authz.NewUser(args[0], r, pw, authz.DefaultArgon2, time.Now())
			if err != nil {
				return err
			}
			if err := db.CreateUser(cmd.Context(), u); err != nil {
				if errors.Is(err, store.ErrConflict) {
					return fmt.Errorf("user %s already exists", u.Name)
				}
				return err
			}
			if err := cliAudit(cmd.Context(), db, "user.add", "user:"+u.Name, "role="+string(u.Role)); err != nil {
				return err
			}
			if generated {
				fmt.Fprintf(cmd.OutOrStdout(), "%s\n", pw)
				fmt.Fprintf(cmd.ErrOrStderr(), "user %s (%s) added; the password above is shown once\n", u.Name, u.Role)
			}
			return nil
		},
	}
	add.Flags().StringVar(&role, "role", "analyst", "admin, analyst or viewer")
	add.Flags().BoolVar(&stdin, "password-stdin", false, "read the password from the first line of standard input")

	var pwStdin bool
	passwd := &cobra.Command{
		Use:   "passwd NAME [--password-stdin]",
		Short: "Set a user's password, clear a lockout and end the user's sessions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, generated, err := readPassword(cmd, pwStdin)
			if err != nil {
				return err
			}
			h, err := authz.HashPassword(pw, authz.DefaultArgon2)
			if err != nil {
				return err
			}
			err = updateUser(cmd, data, args[0], "user.passwd", "password set, lockout cleared", func(u *authz.User) error {
				u.PasswordHash, u.Failed, u.LockedUntil = h, 0, time.Time{}
				return nil
			})
			if err == nil && generated {
				fmt.Fprintf(cmd.OutOrStdout(), "%s\n", pw)
			}
			return err
		},
	}
	passwd.Flags().BoolVar(&pwStdin, "password-stdin", false, "read the password from the first line of standard input")

	totpReset := &cobra.Command{
		Use:   "totp-reset NAME",
		Short: "Remove a user's TOTP authenticator and end the user's sessions; it is enrolled again at the next login",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return updateUser(cmd, data, args[0], "user.totp_reset", "second factor removed", func(u *authz.User) error {
				u.TOTPSecret, u.TOTPLastStep = nil, 0
				return nil
			})
		},
	}

	roleCmd := &cobra.Command{
		Use:   "role NAME admin|analyst|viewer",
		Short: "Change a user's role and end the user's sessions",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := authz.ParseRole(args[1])
			if err != nil {
				return err
			}
			return updateUser(cmd, data, args[0], "user.role", "role="+string(r), func(u *authz.User) error {
				u.Role = r
				return nil
			})
		},
	}

	list := &cobra.Command{
		Use:   "list",
		Short: "List users (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := openData(cmd.Context(), data)
			if err != nil {
				return err
			}
			defer db.Close()
			us, err := db.ListUsers(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tROLE\tTOTP\tLOCKED UNTIL\tCREATED")
			now := time.Now()
			for _, u := range us {
				locked := "-"
				if u.LockedUntil.After(now) {
					locked = u.LockedUntil.Format(time.RFC3339)
				}
				totp := "no"
				if len(u.TOTPSecret) > 0 {
					totp = "yes"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Name, u.Role, totp, locked, u.CreatedAt.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	cmd.AddCommand(add, passwd, totpReset, roleCmd, list)
	return cmd
}

// updateUser changes one user, ends the user's sessions and records action
// in the audit log.
func updateUser(cmd *cobra.Command, data, name, action, detail string, fn func(*authz.User) error) error {
	ctx := cmd.Context()
	db, err := openData(ctx, data)
	if err != nil {
		return err
	}
	defer db.Close()
	err = db.UpdateUser(ctx, name, func(u *authz.User) error {
		u.UpdatedAt = time.Now().UTC()
		return fn(u)
	})
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no user %q", name)
	}
	if err != nil {
		return err
	}
	if err := db.DeleteUserSessions(ctx, name); err != nil {
		return err
	}
	return cliAudit(ctx, db, action, "user:"+name, detail)
}

func newAuditCmd() *cobra.Command {
	var data, pin string
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Read and verify the hash-chained audit log",
	}
	cmd.PersistentFlags().StringVar(&data, "data", "", "the server's data directory")
	cmd.MarkPersistentFlagRequired("data")
	verify := &cobra.Command{
		Use:   "verify [--head SEQ:HASH]",
		Short: "Check that no audit entry was edited, deleted, reordered or cut off; exit status 1 if one was",
		Long: `Verify re-reads the whole audit log, recomputes every entry's hash and checks
the chain, the sequence numbers and the stored head checkpoint. It prints the
verified head (SEQ:HASH). Keep that somewhere else (a ticket, another machine)
and pass it back with --head later: that also catches someone who rewrote the
whole database, chain and checkpoint included.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var want *audit.Head
			if pin != "" {
				h, err := audit.ParseHead(pin)
				if err != nil {
					return err
				}
				want = &h
			}
			db, err := openData(cmd.Context(), data)
			if err != nil {
				return err
			}
			defer db.Close()
			head, err := audit.Verify(cmd.Context(), db, want)
			if errors.Is(err, audit.ErrTampered) {
				fmt.Fprintf(cmd.OutOrStdout(), "FAILED: %v\n", err)
				return exitError{1}
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "audit log OK: %d entries, head %s\n", head.Seq, head)
			return nil
		},
	}
	verify.Flags().StringVar(&pin, "head", "", "a head printed by an earlier verify, which must still be in the log")

	var after int64
	var limit int
	show := &cobra.Command{
		Use:   "show [--after SEQ] [--limit N]",
		Short: "Print audit entries in order",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 || limit > 100000 {
				return fmt.Errorf("--limit must be from 1 to 100000")
			}
			db, err := openData(cmd.Context(), data)
			if err != nil {
				return err
			}
			defer db.Close()
			es, err := db.AuditEntries(cmd.Context(), after, limit)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SEQ\tTIME\tACTOR\tSOURCE\tACTION\tTARGET\tDETAIL")
			for _, e := range es {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.At.Format(time.RFC3339), hunt.SafeText(e.Actor), hunt.SafeText(e.Source),
					hunt.SafeText(e.Action), hunt.SafeText(e.Target), hunt.SafeText(e.Detail))
			}
			return tw.Flush()
		},
	}
	show.Flags().Int64Var(&after, "after", 0, "start after this sequence number")
	show.Flags().IntVar(&limit, "limit", 1000, "at most this many entries")
	cmd.AddCommand(verify, show)
	return cmd
}

// ensureAdminUser creates the console's first user, "admin", when there is
// no user at all (a first start, or the first start after an upgrade), and
// prints its generated password once. The password alone is not enough to
// use the console: an admin has to enrol a TOTP authenticator at the first
// login, which also proves who holds the account from then on. Reset a lost
// password with `vigil user passwd`.
func ensureAdminUser(ctx context.Context, db *sqlite.DB, listen string, out io.Writer) error {
	us, err := db.ListUsers(ctx)
	if err != nil || len(us) > 0 {
		return err
	}
	pw := authz.NewPassword()
	u, err := authz.NewUser("admin", authz.RoleAdmin, pw, authz.DefaultArgon2, time.Now())
	if err != nil {
		return err
	}
	if err := db.CreateUser(ctx, u); err != nil {
		return err
	}
	if err := audit.New(db, nil).Record(ctx, audit.Entry{Actor: "system", Source: "local", Action: "user.add",
		Target: "user:admin", Detail: "first start: role=admin, generated password"}); err != nil {
		return err
	}
	if out != nil {
		fmt.Fprintf(out, "Console: https://%s/ — user admin, password (shown once, stored as argon2id):\n  %s\n", listen, pw)
		fmt.Fprintf(out, "  The first login enrols a TOTP authenticator app (required for admins).\n")
	}
	return nil
}
