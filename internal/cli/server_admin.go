package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	envapp "github.com/envplane/envplane/internal/app"
	"github.com/envplane/envplane/internal/auth"
	"github.com/envplane/envplane/internal/secrets"
	"github.com/envplane/envplane/internal/vault"
)

// serverCommand groups operations on the server's database itself, run
// with the database's credentials rather than through the API.
func (a *app) serverCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Administer the server directly (admin recovery, master key rotation, its age recipient)",
	}
	cmd.AddCommand(a.createTokenCommand(), a.rotateMasterKeyCommand(), a.ageRecipientCommand())
	return cmd
}

// createTokenCommand makes a token straight in the database: how an
// operator who lost every admin token gets one back.
func (a *app) createTokenCommand() *cobra.Command {
	var database, name, role, keyFile string
	var envs, groups []string
	cmd := &cobra.Command{
		Use:   "create-token [--role admin] [--name N] [--env E]... [--group G]... [--database URL]",
		Short: "Create a token directly in the database (admin recovery); it is shown once",
		Long: `Create-token creates a token in the server's database without going through the API:
the way back in when every admin token is lost (ENVPLANE_BOOTSTRAP_TOKEN only applies
to a database without tokens). It needs no running server, only the database: the
same one serve uses (--database, else ENVPLANE_DATABASE, else ./.envplane/envplane.db),
and the master key that signs the audit log (as for serve: --master-key-file,
ENVPLANE_MASTER_KEY, ENVPLANE_MASTER_KEY_FILE, or the generated key beside a SQLite
database). On PostgreSQL a running server accepts the new token at once; a SQLite
database serves one process, so stop its server first.

The token is printed once on stdout; the audit log records its creation by
"envplane server create-token". Revoke it with ` + "`envplane token delete ID`" + ` when done.`,
		Args: argCount(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if v := a.getenv("ENVPLANE_DATABASE"); v != "" && !cmd.Flags().Changed("database") {
				database = v
			}
			return a.createToken(database, a.masterKeySource(cmd, keyFile), envapp.TokenRequest{Name: name, Role: role, Environments: nonNil(envs), Groups: nonNil(groups)})
		},
	}
	cmd.Flags().StringVar(&database, "database", "", "postgres://… URL or SQLite file path (default $ENVPLANE_DATABASE, else ./.envplane/envplane.db)")
	cmd.Flags().StringVar(&name, "name", "recovery", "what the token is for")
	cmd.Flags().StringVar(&role, "role", "admin", "viewer, editor, approver, admin or sdk")
	cmd.Flags().StringArrayVar(&envs, "env", nil, "environment the token is scoped to (repeatable; none = all; sdk: exactly one)")
	cmd.Flags().StringArrayVar(&groups, "group", nil, "approval group (repeatable)")
	cmd.Flags().StringVar(&keyFile, "master-key-file", "", "file holding the master key (default $ENVPLANE_MASTER_KEY_FILE, or the key itself in $ENVPLANE_MASTER_KEY)")
	return cmd
}

// ageRecipientCommand prints the recipient of the server's age identity,
// read from the same settings as serve.
func (a *app) ageRecipientCommand() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "age-recipient [--age-identity-file FILE]",
		Short: "Print the age recipient of the server's identity, to list in a workspace's secrets.recipients",
		Long: `Age-recipient prints the age1… recipient of the server's own age identity, one a line
when the file holds several. List it under secrets.recipients.<env> in envplane.yaml
and rewrite that environment's secrets file (` + "`envplane secrets rotate --env ENV`" + `, or any
` + "`secrets set`" + `), and the server opens the file in the releases it serves: its values
then resolve server-side, under the environment's server-side secrets.

The identity comes from where serve reads it: --age-identity-file, else
ENVPLANE_AGE_IDENTITY_FILE, or the identity itself in ENVPLANE_AGE_IDENTITY. Make one
with ` + "`envplane keys generate --out server-age.txt`" + ` (mode 0600; it prints the recipient too).`,
		Args: argCount(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ids, _, err := a.serverIdentities(cmd, file)
			if err != nil {
				return fmt.Errorf("age-recipient: %w", err)
			}
			if len(ids) == 0 {
				return fmt.Errorf("age-recipient: the server has no age identity: pass --age-identity-file FILE, or set %s or %s (make one with `envplane keys generate --out FILE`)",
					envAgeIdentityFile, envAgeIdentity)
			}
			rs := secrets.Recipients(ids)
			if len(rs) == 0 {
				return errors.New("age-recipient: the server's identities have no age1… recipient")
			}
			for _, r := range rs {
				fmt.Fprintln(a.stdout, r)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "age-identity-file", "", "file of the server's age identities (default $ENVPLANE_AGE_IDENTITY_FILE, or the identity itself in $ENVPLANE_AGE_IDENTITY)")
	return cmd
}

// createTokenActor is who the audit log says created a token offline.
const createTokenActor = "envplane server create-token"

func (a *app) createToken(database string, mk vault.Source, req envapp.TokenRequest) error {
	ctx := a.ctx
	if isSQLite(database) {
		// Opening SQLite creates the file: a typo would make a fresh,
		// empty database and a token nobody's server reads.
		path := database
		if path == "" {
			path = defaultDatabase
		}
		path = strings.TrimPrefix(strings.TrimPrefix(path, "sqlite:"), "//")
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("create-token: no database at %s: pass the server's --database, or run this where `envplane serve` keeps its state (./.envplane)", path)
		}
	}
	st, where, dataDir, err := openStore(ctx, "create-token", database)
	if err != nil {
		return err
	}
	defer st.Close()
	// The audit entry is signed like the server's: with the master key.
	v, _, err := a.openVault(ctx, st, dataDir, mk, "", slog.New(slog.DiscardHandler))
	if err != nil {
		return fmt.Errorf("create-token: %w", err)
	}
	uc, err := envapp.New(envapp.Options{Store: st, Vault: v})
	if err != nil {
		return err
	}
	t, text, err := uc.CreateToken(ctx, auth.System(createTokenActor), req)
	if err != nil {
		return fmt.Errorf("create-token: %w", describe(err))
	}
	fmt.Fprintf(a.stderr, "envplane: token %s (%s, %s) created in %s; it is shown once, store it now\n", t.ID, t.Name, t.Role, where)
	_, err = fmt.Fprintln(a.stdout, text)
	return err
}

func (a *app) rotateMasterKeyCommand() *cobra.Command {
	var database, keyFile, newKeyFile string
	cmd := &cobra.Command{
		Use:   "rotate-master-key [--database URL] [--master-key-file CURRENT] [--new-master-key-file NEW]",
		Short: "Re-wrap every environment's data key under a new master key",
		Long: `Rotate-master-key re-wraps each environment's data key, in one transaction, from the
current master key to a new one. Secret values are not re-encrypted (their data keys
do not change), so it is quick, and it can be repeated safely if interrupted.

The current key comes from --master-key-file, ENVPLANE_MASTER_KEY or
ENVPLANE_MASTER_KEY_FILE, as for serve. The new key is read from --new-master-key-file,
or generated into it (mode 0600) when the file does not exist. On the SQLite default
with its generated key (.envplane/master.key), no flag is needed: a new key is
generated and replaces master.key once the database is rotated.

Without downtime (PostgreSQL replicas):
  1. restart the replicas one by one with
     --master-key-file NEW --previous-master-key-file CURRENT
  2. envplane server rotate-master-key --database URL --master-key-file CURRENT --new-master-key-file NEW
  3. restart them with --master-key-file NEW alone; destroy CURRENT.
A single server can instead be stopped, rotated and started with the new key.

Flags default to ENVPLANE_DATABASE and ENVPLANE_MASTER_KEY_FILE.`,
		Args: argCount(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if v := a.getenv("ENVPLANE_DATABASE"); v != "" && !cmd.Flags().Changed("database") {
				database = v
			}
			return a.rotateMasterKey(a.masterKeySource(cmd, keyFile), database, newKeyFile)
		},
	}
	cmd.Flags().StringVar(&database, "database", "", "postgres://… URL or SQLite file path (default ./.envplane/envplane.db)")
	cmd.Flags().StringVar(&keyFile, "master-key-file", "", "file holding the current master key (default $ENVPLANE_MASTER_KEY_FILE, or the key itself in $ENVPLANE_MASTER_KEY)")
	cmd.Flags().StringVar(&newKeyFile, "new-master-key-file", "", "file holding the new master key; generated when missing")
	return cmd
}

func (a *app) rotateMasterKey(src vault.Source, database, newKeyFile string) error {
	ctx := a.ctx
	st, where, dataDir, err := openStore(ctx, "rotate-master-key", database)
	if err != nil {
		return err
	}
	defer st.Close()

	// The generated key is the only one this command may replace itself.
	generated := ""
	if src.Value == "" && src.File == "" && dataDir != "" {
		generated = filepath.Join(dataDir, vault.KeyFileName)
		if _, err := os.Stat(generated); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("rotate-master-key: no master key: %s does not exist (the server generates it on its first start), and %s", generated, vault.MissingKeyHelp)
		}
		src.File = generated
	}
	current, err := vault.Load(ctx, src)
	if err != nil {
		return fmt.Errorf("rotate-master-key: %w", err)
	}
	if newKeyFile == "" {
		if generated == "" {
			return errors.New("rotate-master-key: --new-master-key-file FILE is required: the new key is read from FILE, or generated into it when it does not exist")
		}
		// Kept next to the old key until the database is rotated, so an
		// interruption never loses the key some rows are wrapped by.
		newKeyFile = generated + pendingKeySuffix
	}
	next, created, err := readOrCreateKey(newKeyFile)
	if err != nil {
		return fmt.Errorf("rotate-master-key: %w", err)
	}
	if created && (generated == "" || newKeyFile != generated+pendingKeySuffix) {
		fmt.Fprintf(a.stderr, "envplane: wrote a new master key to %s (mode 0600)\n", newKeyFile)
	}

	res, err := vault.RotateMaster(ctx, st, current.Key, next, "envplane server rotate-master-key", time.Now())
	if err != nil {
		return fmt.Errorf("rotate-master-key: %w", err)
	}
	if generated != "" && newKeyFile == generated+pendingKeySuffix {
		if err := os.Rename(newKeyFile, generated); err != nil {
			return fmt.Errorf("rotate-master-key: the database is rotated, but replacing %s failed (run the command again to finish): %w", generated, err)
		}
		newKeyFile = generated
	}
	fmt.Fprintf(a.stdout, "re-wrapped the data keys of %d environment%s in %s from master key %s to %s",
		res.Rewrapped, pluralS(res.Rewrapped), where, current.Key.ID(), next.ID())
	if res.Already > 0 {
		fmt.Fprintf(a.stdout, " (%d already under %s)", res.Already, next.ID())
	}
	fmt.Fprintln(a.stdout)
	if newKeyFile == generated {
		fmt.Fprintf(a.stderr, "envplane: %s now holds the new key; start the server as before\n", generated)
	} else {
		fmt.Fprintf(a.stderr, "envplane: start the server with --master-key-file %s (or its content in ENVPLANE_MASTER_KEY); the old key opens nothing any more\n", newKeyFile)
	}
	return nil
}

// readOrCreateKey reads a master key file, or generates one into it when
// it does not exist.
func readOrCreateKey(path string) (k *vault.MasterKey, created bool, err error) {
	k, err = vault.ReadKeyFile(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return k, false, err
	}
	if k, err = vault.GenerateMasterKey(nil); err != nil {
		return nil, false, err
	}
	if err := vault.CreateKeyFile(path, k); err != nil {
		return nil, false, fmt.Errorf("write the new master key: %w", err)
	}
	return k, true, nil
}
