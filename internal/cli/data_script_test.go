package cli_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/rogpeppe/go-internal/testscript"
)

// TestDataScripts runs testdata/data/*.txtar against the PostgreSQL server
// of $ENVPLANE_TEST_POSTGRES_URL; it skips without it.
func TestDataScripts(t *testing.T) {
	base := os.Getenv("ENVPLANE_TEST_POSTGRES_URL")
	if base == "" {
		t.Skip("ENVPLANE_TEST_POSTGRES_URL is not set: skipping the data scripts")
	}
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/data",
		RequireExplicitExec: true,
		Cmds: map[string]func(*testscript.TestScript, bool, []string){
			"exits":       cmdExits,
			"startserver": cmdStartServer,
			"stopserver":  cmdStopServer,
			"keygen":      cmdKeygen,
			"subst":       cmdSubst,
			// pgdb VAR [SQLFILE]: a fresh database (dropped after the
			// script) whose URL is $VAR, made from SQLFILE.
			"pgdb": func(ts *testscript.TestScript, neg bool, args []string) {
				ctx := context.Background()
				admin, err := pgx.Connect(ctx, base)
				ts.Check(err)
				b := make([]byte, 6)
				rand.Read(b)
				name := "envplane_cli_" + hex.EncodeToString(b)
				_, err = admin.Exec(ctx, "CREATE DATABASE "+name)
				ts.Check(err)
				ts.Defer(func() {
					admin.Exec(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)")
					admin.Close(context.Background())
				})
				u, _ := url.Parse(base)
				u.Path = "/" + name
				ts.Setenv(args[0], u.String())
				if len(args) > 1 {
					pgExec(ts, u.String(), ts.ReadFile(args[1]))
				}
			},
			// pgq URL SQL: runs SQL and writes its rows to stdout, one a line.
			"pgq": func(ts *testscript.TestScript, neg bool, args []string) {
				ctx := context.Background()
				c, err := pgx.Connect(ctx, args[0])
				ts.Check(err)
				defer c.Close(ctx)
				rows, err := c.Query(ctx, args[1])
				ts.Check(err)
				vals, err := pgx.CollectRows(rows, pgx.RowTo[string])
				ts.Check(err)
				for _, v := range vals {
					ts.Stdout().Write([]byte(v + "\n"))
				}
			},
		},
		Setup: func(env *testscript.Env) error {
			env.Setenv("XDG_CACHE_HOME", env.WorkDir+"/.cache")
			return nil
		},
	})
}

func pgExec(ts *testscript.TestScript, dsn, sql string) {
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dsn)
	ts.Check(err)
	defer c.Close(ctx)
	_, err = c.Exec(ctx, sql)
	ts.Check(err)
}
